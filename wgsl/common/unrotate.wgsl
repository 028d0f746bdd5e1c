// Merged attention rows in `fw` (vec4s; rotated V domain, normalized) turned back,
// o = diag(sV) H o~ / sqrt(d) (V signs at consts[HD..]). Needs fw, consts and fwht_rows.

// Vec4 x at index i of a transformed row, scaled and signed: turned back.
fn unrotate4(x: vec4<f32>, i: u32) -> vec4<f32> {
    let d = 4u * (i % (HD / 4u));
    let s = vec4<f32>(consts[HD + d], consts[HD + d + 1u], consts[HD + d + 2u], consts[HD + d + 3u]);
    return x * (1.0 / sqrt(f32(HD))) * s;
}

// Vec4 i of the rows in fw turned back, once fwht_rows has run on them.
fn unrotated(i: u32) -> vec4<f32> {
    return unrotate4(fw[i], i);
}

// `rows` rows of fw turned back into att rows qh0 .. qh0 + rows (needs att, vec4s): the
// FWHT's two passes (common/fwht.wgsl), the second's threads writing the vec4s they
// transformed, so no barrier follows it. Uniform control flow, after fw is published.
fn unrotate_out(lid: u32, qh0: u32, rows: u32) {
    for (var q = lid; q < rows * FN2; q = q + WG) {
        fwht_pass1((q / FN2) * FN + q % FN2);
    }
    workgroupBarrier();
    for (var q = lid; q < rows * FN1; q = q + WG) {
        let f0 = (q / FN1) * FN + (q % FN1) * FN2;
        fwht_pass2(f0);
        for (var k = 0u; k < FN2; k = k + 1u) {
            att[qh0 * FN + f0 + k] = unrotate4(fw[f0 + k], f0 + k);
        }
    }
}
