// Merged attention rows in `fw` (vec4s; rotated V domain, normalized) turned back,
// o = diag(sV) H o~ / sqrt(d) (V signs at consts[HD..]). Needs fw, consts and fwht_rows.

// Vec4 i of the rows in fw turned back, once fwht_rows has run on them.
fn unrotated(i: u32) -> vec4<f32> {
    let d = 4u * (i % (HD / 4u));
    let s = vec4<f32>(consts[HD + d], consts[HD + d + 1u], consts[HD + d + 2u], consts[HD + d + 3u]);
    return fw[i] * (1.0 / sqrt(f32(HD))) * s;
}

// `rows` rows of fw turned back into att rows qh0 .. qh0 + rows (needs att, vec4s).
// Uniform control flow, after fw is published.
fn unrotate_out(lid: u32, qh0: u32, rows: u32) {
    fwht_rows(lid, rows);
    for (var i = lid; i < rows * HD / 4u; i = i + WG) {
        att[qh0 * (HD / 4u) + i] = unrotated(i);
    }
}
