// Decode projections with the RMSNorm folded in, for one token per grid z:
//   y = W (x * rsqrt(mean(x^2) + eps) * nw)   (= dot(W_r, x * nw) * rsqrt(...))
// W is one matrix of p.rows rows (e.g. Wq | Wk | Wv stacked); rows [0, n0) go to y0,
// [n0, n1) to y1 and [n1, rows) to y2, each [token][stride_i]. Each workgroup computes
// 4 consecutive rows (grid x/y folded); n0 and n1 are multiples of 4. The norm's sum of
// squares comes from the same x loads as the dot products. consts: WG, K, ROW_BYTES
struct Params {
    rows: u32,
    n0: u32,
    n1: u32,
    eps: f32,
    stride0: u32,
    stride1: u32,
    stride2: u32,
    _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> wq: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> nw: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y0: array<f32>;
@group(0) @binding(5) var<storage, read_write> y1: array<f32>;
@group(0) @binding(6) var<storage, read_write> y2: array<f32>;

@compute @workgroup_size(WG)
fn matvec_norm(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row0 = (wid.x + wid.y * nwg.x) * 4u;
    let t = wid.z;
    let last = p.rows - 1u;
    let b = min(vec4<u32>(row0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last)) * ROW_BYTES;
    var acc = vec4<f32>(0.0);
    var ss = 0.0;
    for (var u = lid; u < K / 8u; u = u + WG) {
        let xo = (step.slot + t) * (K / 4u) + 2u * u;
        let xa = x[xo];
        let xb = x[xo + 1u];
        ss = ss + dot(xa, xa) + dot(xb, xb);
        acc = acc + dot4rows(b, u, xa * nw[2u * u], xb * nw[2u * u + 1u]);
    }
    let s = wg_sum4(acc, lid);
    let r = inverseSqrt(wg_sum(ss, lid) / f32(K) + p.eps);
    let row = row0 + lid;
    if (lid < 4u && row < p.rows) {
        let v = s[lid] * r;
        let tok = step.slot + t;
        if (row < p.n0) {
            y0[tok * p.stride0 + row] = v;
        } else if (row < p.n1) {
            y1[tok * p.stride1 + row - p.n0] = v;
        } else {
            y2[tok * p.stride2 + row - p.n1] = v;
        }
    }
}
