// Merged attention rows in `fw` (vec4s; rotated V domain, normalized) turned back,
// o = diag(sV) H o~ / sqrt(d) (V signs at consts[HD..]). Needs fw, consts, WG and FN
// (common/fwht.wgsl's HD / 4 and H4).
// H_HD = H_FN (x) H_4 on vec4 i, component c (element 4 i + c): vec4 i of H x is
// H_4 (sum_j (-1)^popcount(i & j) x_j), so each output vec4 is read straight off the
// published row (FN loads) by one thread: no pass of its own, no barrier after it, where
// the two-pass FWHT (common/fwht.wgsl) took a barrier between its passes.

// The V signs times 1 / sqrt(d) of vec4 i of a row: load them early (before the merge or
// the tile loop), so their latency is not added after the transform.
fn vsigns(i: u32) -> vec4<f32> {
    let d = HD + 4u * (i % FN);
    return vec4<f32>(consts[d], consts[d + 1u], consts[d + 2u], consts[d + 3u]) * inverseSqrt(f32(HD));
}

// Vec4 i of H x for the row x in fw from vec4 f0 (unnormalized, unsigned).
fn hadamard4(f0: u32, i: u32) -> vec4<f32> {
    var o = vec4<f32>(0.0);
    for (var j = 0u; j < FN; j = j + 1u) {
        let f = fw[f0 + j];
        o = select(o + f, o - f, (countOneBits(i & j) & 1u) != 0u);
    }
    return H4 * o;
}

// `rows` rows of fw turned back into att rows qh0 .. qh0 + rows (vec4s). sg: vsigns(lid)
// (thread lid only writes vec4s i = lid mod FN while FN divides WG; otherwise it loads
// each vec4's own). Uniform control flow, after fw is published; no barrier follows.
fn unrotate_out(lid: u32, qh0: u32, rows: u32, sg: vec4<f32>) {
    for (var q = lid; q < rows * FN; q = q + WG) {
        var s = sg;
        if (WG % FN != 0u) {
            s = vsigns(q);
        }
        att[qh0 * FN + q] = hadamard4((q / FN) * FN, q % FN) * s;
    }
}
