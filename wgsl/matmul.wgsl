// Batched prefill projection: y[(slot + t) * out_stride + r] = (acc ? y[..] : 0) + W[r,:] . x[t]
// One thread per weight row (grid x/y folded, WG rows per workgroup), TT tokens per
// thread (grid z): each weight unit is dequantized once and used for TT tokens, with
// no cross-thread reduction. consts: WG, K, ROW_BYTES, TT
struct Params {
    rows: u32,
    accumulate: u32,
    out_stride: u32,
    // first row of this matrix in the weight buffer (stacked matrices)
    row_base: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> wq: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn matmul(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = (wid.x + wid.y * nwg.x) * WG + lid;
    let t0 = wid.z * TT;
    let last_t = step.n_tokens - 1u;
    let rb = (p.row_base + min(row, p.rows - 1u)) * ROW_BYTES;
    var acc: array<f32, TT>;
    for (var u = 0u; u < K / 8u; u = u + 1u) {
        let w = load8(rb, u);
        for (var tt = 0u; tt < TT; tt = tt + 1u) {
            let xo = min(t0 + tt, last_t) * (K / 4u) + 2u * u;
            acc[tt] = acc[tt] + dot(w.a, x[xo]) + dot(w.b, x[xo + 1u]);
        }
    }
    if (row < p.rows) {
        for (var tt = 0u; tt < TT; tt = tt + 1u) {
            let t = t0 + tt;
            if (t < step.n_tokens) {
                let o = (step.slot + t) * p.out_stride + row;
                var prev = 0.0;
                if (p.accumulate != 0u) {
                    prev = y[o];
                }
                y[o] = prev + acc[tt];
            }
        }
    }
}
