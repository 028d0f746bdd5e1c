// In-place, unnormalized Walsh-Hadamard transform (Sylvester order) of `rows`
// consecutive rows of HD values in the kernel's workgroup array `fw` (vec4s: HD / 4 per
// row), all threads sharing the work. H_HD = H_FN1 (x) H_FN2 (x) H_4 (vec4 i = i1 * FN2 +
// i2): the transform is separable, so two passes with a barrier each do it, each thread
// holding FN1 or FN2 (4 or 8) vec4s as columns of 4 x 4 matrices: pass 1 takes the FN1
// vec4s at stride FN2 of one i2 (H_4 inside each, H_FN1 across them), pass 2 the FN2
// consecutive vec4s of one i1 (H_FN2 across them). H_4 inside the columns of M is H4 M,
// across them M H4, and H_8 = H_2 (x) H_4 across eight columns (A | B) is (A H4 + B H4 |
// A H4 - B H4): matrix products rather than butterflies on arrays, so no private array is
// indexed (which compilers such as lavapipe's took far longer over). Call from uniform
// control flow after `fw` is written and published (barrier); returns after a barrier.
// HD is 64, 128 or 256 (FN1 and FN2 are 4 or 8; the attention layer admits no other AURA
// head dim on the GPU).
const H4: mat4x4<f32> = mat4x4<f32>(
    vec4<f32>(1.0, 1.0, 1.0, 1.0),
    vec4<f32>(1.0, -1.0, 1.0, -1.0),
    vec4<f32>(1.0, 1.0, -1.0, -1.0),
    vec4<f32>(1.0, -1.0, -1.0, 1.0),
);

const FN: u32 = HD / 4u;
const FN2: u32 = select(8u, 4u, FN <= 32u);
const FN1: u32 = FN / FN2;

// The four vec4s of fw at f0, f0 + st, f0 + 2 st, f0 + 3 st as columns, and back.
fn fw_cols(f0: u32, st: u32) -> mat4x4<f32> {
    return mat4x4<f32>(fw[f0], fw[f0 + st], fw[f0 + 2u * st], fw[f0 + 3u * st]);
}

fn fw_store_cols(f0: u32, st: u32, m: mat4x4<f32>) {
    fw[f0] = m[0];
    fw[f0 + st] = m[1];
    fw[f0 + 2u * st] = m[2];
    fw[f0 + 3u * st] = m[3];
}

// H_n across n = 4 or 8 vec4s of fw from f0 at stride st, in place; inner: H_4 inside
// each too.
fn fw_hadamard(f0: u32, st: u32, n: u32, inner: bool) {
    var a = fw_cols(f0, st);
    if (inner) {
        a = H4 * a;
    }
    a = a * H4;
    if (n == 8u) {
        var b = fw_cols(f0 + 4u * st, st);
        if (inner) {
            b = H4 * b;
        }
        b = b * H4;
        fw_store_cols(f0 + 4u * st, st, a - b);
        a = a + b;
    }
    fw_store_cols(f0, st, a);
}

// Pass 1 of one (row, i2): the FN1 vec4s of a row at i2, i2 + FN2, ... from fw vec4 f0.
fn fwht_pass1(f0: u32) {
    fw_hadamard(f0, FN2, FN1, true);
}

// Pass 2 of one (row, i1): the FN2 consecutive vec4s from fw vec4 f0.
fn fwht_pass2(f0: u32) {
    fw_hadamard(f0, 1u, FN2, false);
}

fn fwht_rows(lid: u32, rows: u32) {
    for (var q = lid; q < rows * FN2; q = q + WG) {
        fwht_pass1((q / FN2) * FN + q % FN2);
    }
    workgroupBarrier();
    for (var q = lid; q < rows * FN1; q = q + WG) {
        fwht_pass2((q / FN1) * FN + (q % FN1) * FN2);
    }
    workgroupBarrier();
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
