// Quantized matrix times a tile of token vectors:
//   y[(slot + t) * out_stride + r] = (acc ? y[...] : 0) + sum_k W[r,k] x[t][k]
// Each workgroup computes 4 consecutive rows (grid x/y, folded) for TT tokens
// (grid z); weights are dequantized once per unit and reused for the TT tokens.
// TT = 1 is the decode matvec, TT > 1 the batched prefill. consts: WG, K, ROW_BYTES, TT
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
@group(0) @binding(4) var<storage, read> pf: array<u32>;

@compute @workgroup_size(WG)
fn matvec(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row0 = (wid.x + wid.y * nwg.x) * 4u;
    let t0 = wid.z * TT;
    let last = p.rows - 1u;
    let last_t = step.n_tokens - 1u;
    // Rows and tokens past the end are clamped for the loads and skipped at the write.
    let b0 = (p.row_base + min(row0, last)) * ROW_BYTES;
    let b1 = (p.row_base + min(row0 + 1u, last)) * ROW_BYTES;
    let b2 = (p.row_base + min(row0 + 2u, last)) * ROW_BYTES;
    let b3 = (p.row_base + min(row0 + 3u, last)) * ROW_BYTES;
    let pfa = prefetch_next(wid, nwg, lid);
    // Decode (TT = 1): the value accumulated onto (the residual) loads before the loop, so
    // its round trip overlaps the weights' instead of following the reduction. The prefill
    // tiles read theirs at the end (TT more registers through the loop cost more there).
    var prev0 = 0.0;
    if (TT == 1u && p.accumulate != 0u && lid < 4u && row0 + lid < p.rows && t0 < step.n_tokens) {
        prev0 = y[(step.slot + t0) * p.out_stride + row0 + lid];
    }
    var acc: array<vec4<f32>, TT>;
    // A constant trip count (units past K clamped and masked) so the compiler can unroll
    // and issue every iteration's loads together: one memory round trip, not one per unit.
    for (var i = 0u; i < UNIT_ITERS; i = i + 1u) {
        let uu = lid + i * WG;
        let u = min(uu, K / 8u - 1u);
        let m = select(0.0, 1.0, uu < K / 8u);
        let w0 = load8(b0, u);
        let w1 = load8(b1, u);
        let w2 = load8(b2, u);
        let w3 = load8(b3, u);
        for (var tt = 0u; tt < TT; tt = tt + 1u) {
            let xo = min(t0 + tt, last_t) * (K / 4u) + 2u * u;
            let xa = x[xo] * m;
            let xb = x[xo + 1u] * m;
            acc[tt] = acc[tt] + vec4<f32>(
                dot(w0.a, xa) + dot(w0.b, xb),
                dot(w1.a, xa) + dot(w1.b, xb),
                dot(w2.a, xa) + dot(w2.b, xb),
                dot(w3.a, xa) + dot(w3.b, xb),
            );
        }
    }
    acc[0].x = acc[0].x + pfa;
    for (var tt = 0u; tt < TT; tt = tt + 1u) {
        // The last token's sum needs no trailing barrier (red4 is not written again).
        let s = wg_sum4_open(acc[tt], lid);
        if (tt + 1u < TT) {
            workgroupBarrier();
        }
        let t = t0 + tt;
        if (lid < 4u && row0 + lid < p.rows && t < step.n_tokens) {
            let o = (step.slot + t) * p.out_stride + row0 + lid;
            var prev = prev0;
            if (TT > 1u && p.accumulate != 0u) {
                prev = y[o];
            }
            y[o] = prev + s[lid];
        }
    }
}
