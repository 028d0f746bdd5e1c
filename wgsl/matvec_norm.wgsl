// Decode projections with the RMSNorm folded in, for one token per grid z:
//   y = W (x * rsqrt(mean(x^2) + eps) * nw)   (= dot(W_r, x * nw) * rsqrt(...))
// W is one matrix of p.rows rows (e.g. Wq | Wk | Wv stacked); rows [0, n0) go to y0,
// [n0, n1) to y1 and [n1, rows) to y2, each [token][stride_i]. Each workgroup computes
// 4 consecutive rows (grid x/y folded); n0 and n1 are multiples of 4. The norm's sum of
// squares comes from the same x loads as the dot products.
// ROPE_HD > 0 (q | k | v with adjacent RoPE pairs, n0 and n1 multiples of ROPE_HD): rows
// [0, n1) are rotated at position step.pos + t (a pair's two rows sit in one workgroup).
// KV_OUT = 1: y1 and y2 are the K and V caches [n_kv][capacity][ROPE_HD] (kv_t) and the
// rotated k and the v rows are stored at that position, so RoPE and the cache write need
// no dispatch of their own. consts: WG, K, ROW_BYTES, ROPE_HD, KV_OUT (alias y12_t)
struct Params {
    rows: u32,
    n0: u32,
    n1: u32,
    eps: f32,
    stride0: u32,
    stride1: u32,
    stride2: u32,
    capacity: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> wq: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> nw: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y0: array<f32>;
@group(0) @binding(5) var<storage, read_write> y1: array<y12_t>;
@group(0) @binding(6) var<storage, read_write> y2: array<y12_t>;
@group(0) @binding(7) var<storage, read> cs: array<vec2<f32>>;
@group(0) @binding(8) var<storage, read> pf: array<u32>;

const RHD: u32 = max(ROPE_HD, 2u);

// Row j of y1/y2: the token's scratch row, or (KV_OUT) the cache row of j's head at pos.
fn y12_index(j: u32, tok: u32, pos: u32, stride: u32) -> u32 {
    if (KV_OUT != 0u) {
        return ((j / RHD) * p.capacity + pos) * RHD + j % RHD;
    }
    return tok * stride + j;
}

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
    var acc = vec4<f32>(prefetch_next(wid, nwg, lid), 0.0, 0.0, 0.0);
    var ss = 0.0;
    // Constant trip count, units past K clamped and masked: loads issue together.
    for (var i = 0u; i < UNIT_ITERS; i = i + 1u) {
        let uu = lid + i * WG;
        let u = min(uu, K / 8u - 1u);
        let m = select(0.0, 1.0, uu < K / 8u);
        let xo = (step.slot + t) * (K / 4u) + 2u * u;
        let xa = x[xo] * m;
        let xb = x[xo + 1u] * m;
        ss = ss + dot(xa, xa) + dot(xb, xb);
        acc = acc + dot4rows(b, u, xa * nw[2u * u], xb * nw[2u * u + 1u]);
    }
    // Both sums in one exchange.
    let sums = wg_sum4x3(acc, vec4<f32>(ss, 0.0, 0.0, 0.0), vec4<f32>(0.0), lid);
    let s = sums.a;
    let r = inverseSqrt(sums.b.x / f32(K) + p.eps);
    let row = row0 + lid;
    if (lid < 4u && row < p.rows) {
        var v = s[lid] * r;
        let tok = step.slot + t;
        let pos = step.pos + t;
        if (ROPE_HD > 0u && row < p.n1) {
            // Pair (2i, 2i + 1) of a head: rows row0 + (lid & ~1) and its neighbour.
            let pv = s[lid ^ 1u] * r;
            let d = select(row - p.n0, row, row < p.n0) % RHD;
            let c = cs[pos * (RHD / 2u) + d / 2u];
            v = select(pv * c.y + v * c.x, v * c.x - pv * c.y, (lid & 1u) == 0u);
        }
        if (row < p.n0) {
            y0[tok * p.stride0 + row] = v;
        } else if (row < p.n1) {
            y1[y12_index(row - p.n0, tok, pos, p.stride1)] = y12_t(v);
        } else {
            y2[y12_index(row - p.n1, tok, pos, p.stride2)] = y12_t(v);
        }
    }
}
