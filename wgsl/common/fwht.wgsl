// In-place, unnormalized Walsh-Hadamard transform (Sylvester order) of `rows`
// consecutive rows of HD values in the kernel's workgroup array `fw` (vec4s: HD / 4 per
// row), all threads sharing the butterflies. The stages h = 1 and 2 stay inside a vec4
// and run on both operands of the first cross-vec4 stage (h = 4), so a row of HD takes
// log2(HD) - 2 barriers, each thread moving two vec4s per stage. Call from uniform control
// flow after `fw` is written and published (barrier); returns after a barrier.
fn fwht4(x: vec4<f32>) -> vec4<f32> {
    let y = vec4<f32>(x.x + x.y, x.x - x.y, x.z + x.w, x.z - x.w);
    return vec4<f32>(y.x + y.z, y.y + y.w, y.x - y.z, y.y - y.w);
}

fn fwht_rows(lid: u32, rows: u32) {
    for (var h = 1u; h < HD / 4u; h = h * 2u) {
        for (var q = lid; q < rows * (HD / 8u); q = q + WG) {
            let i = q % (HD / 8u);
            let j = (q / (HD / 8u)) * (HD / 4u) + (i / h) * 2u * h + (i % h);
            var a = fw[j];
            var b = fw[j + h];
            if (h == 1u) {
                a = fwht4(a);
                b = fwht4(b);
            }
            fw[j] = a + b;
            fw[j + h] = a - b;
        }
        workgroupBarrier();
    }
}

// Key centering happens before RoPE (AURA format): the cache holds R_pos (k - mu) and a
// score adds back q . R_pos mu. rope_mean(mu0, i, c, halves) is element i of R_pos mu,
// with mu at consts[mu0..mu0 + HD] and c = the (cos, sin) of i's RoPE pair at pos
// (pair index rope_pair(i, halves)); adjacent pairs (2j, 2j+1) or halves (j, j + HD/2).
fn rope_pair(i: u32, halves: u32) -> u32 {
    if (halves != 0u) {
        return i % (HD / 2u);
    }
    return i / 2u;
}

fn rope_mean(mu0: u32, i: u32, c: vec2<f32>, halves: u32) -> f32 {
    let j = rope_pair(i, halves);
    var ia = 2u * j;
    var ib = 2u * j + 1u;
    if (halves != 0u) {
        ia = j;
        ib = j + HD / 2u;
    }
    let a = consts[mu0 + ia];
    let b = consts[mu0 + ib];
    if (i == ia) {
        return a * c.x - b * c.y;
    }
    return a * c.y + b * c.x;
}
