// Decode feed-forward input with the RMSNorm folded in, one token per grid z:
//   xn = x * rsqrt(mean(x^2) + eps) * nw;  act[r] = silu(Wg_r . xn) * (Wu_r . xn)
// W stacks gate rows [0, ffn) over up rows [ffn, 2 ffn). Each workgroup computes 4
// consecutive gate rows and the 4 matching up rows (grid x/y folded). consts: WG, K, ROW_BYTES
struct Params {
    ffn: u32,
    eps: f32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> wq: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> nw: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> act: array<f32>;
@group(0) @binding(5) var<storage, read> pf: array<u32>;

@compute @workgroup_size(WG)
fn matvec_glu(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row0 = (wid.x + wid.y * nwg.x) * 4u;
    let t = wid.z;
    let last = p.ffn - 1u;
    let g = min(vec4<u32>(row0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last)) * ROW_BYTES;
    let up = g + vec4<u32>(p.ffn * ROW_BYTES);
    var ag = vec4<f32>(prefetch_next(wid, nwg, lid), 0.0, 0.0, 0.0);
    var au = vec4<f32>(0.0);
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
        let na = xa * nw[2u * u];
        let nb = xb * nw[2u * u + 1u];
        ag = ag + dot4rows(g, u, na, nb);
        au = au + dot4rows(up, u, na, nb);
    }
    // The three sums in one exchange.
    let sums = wg_sum4x3(ag, au, vec4<f32>(ss, 0.0, 0.0, 0.0), lid);
    let sg = sums.a;
    let su = sums.b;
    let r = inverseSqrt(sums.c.x / f32(K) + p.eps);
    let row = row0 + lid;
    if (lid < 4u && row < p.ffn) {
        let g = sg[lid] * r;
        act[(step.slot + t) * p.ffn + row] = g / (1.0 + exp(-g)) * (su[lid] * r);
    }
}
