// Pass 2 of split-K attention: merge step.n_blocks partials per query head.
// Grid: x = query head (one workgroup per head: a grid that left every workgroup at
// the same id would merge head 0 for all heads), y = token t of the chunk. Empty
// blocks (past kv_len(t)) carry sum 0 and drop out.
// The blocks are spread over the workgroup: every thread takes part in the max, then
// each thread owns 4 dims (lane) of one of NG block groups (blocks dealt round-robin),
// and the groups' sums are added at the end. UNROTATE (AURA caches): the merged row is in
// the rotated V domain and is turned back, o = diag(sV) H o~ / sqrt(d), with the V signs
// at consts[HD..]. consts: WG (a multiple of HD / 4), HD, UNROTATE
struct Params {
    n_heads: u32,
    max_blocks: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pml: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> po: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// The layer's AURA constants (UNROTATE), else a placeholder.
@group(0) @binding(4) var<storage, read> consts: array<f32>;

const NG: u32 = WG / (HD / 4u);
var<workgroup> accs: array<vec4<f32>, WG>;
var<workgroup> ls: array<f32, WG>;
var<workgroup> fw: array<f32, HD>;

@compute @workgroup_size(WG)
fn attn_merge(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let qh = wid.y * p.n_heads + h;
    let nb = step.n_blocks;
    let first = qh * p.max_blocks;
    var mx = -3.0e38;
    for (var b = lid; b < nb; b = b + WG) {
        mx = max(mx, pml[first + b].x);
    }
    mx = wg_max(mx, lid);
    let lane = lid % (HD / 4u);
    let g = lid / (HD / 4u);
    var l = 0.0;
    var acc = vec4<f32>(0.0);
    // Four blocks per iteration, loads first (independent loads in flight together).
    var b = g;
    for (; b + 3u * NG < nb; b = b + 4u * NG) {
        let a0 = pml[first + b];
        let a1 = pml[first + b + NG];
        let a2 = pml[first + b + 2u * NG];
        let a3 = pml[first + b + 3u * NG];
        let o0 = po[(first + b) * (HD / 4u) + lane];
        let o1 = po[(first + b + NG) * (HD / 4u) + lane];
        let o2 = po[(first + b + 2u * NG) * (HD / 4u) + lane];
        let o3 = po[(first + b + 3u * NG) * (HD / 4u) + lane];
        let w0 = exp(a0.x - mx);
        let w1 = exp(a1.x - mx);
        let w2 = exp(a2.x - mx);
        let w3 = exp(a3.x - mx);
        l = l + a0.y * w0 + a1.y * w1 + a2.y * w2 + a3.y * w3;
        acc = acc + o0 * w0 + o1 * w1 + o2 * w2 + o3 * w3;
    }
    for (; b < nb; b = b + NG) {
        let a = pml[first + b];
        let w = exp(a.x - mx);
        l = l + a.y * w;
        acc = acc + po[(first + b) * (HD / 4u) + lane] * w;
    }
    accs[lid] = acc;
    ls[lid] = l;
    workgroupBarrier();
    if (lid < HD / 4u) {
        var tot = vec4<f32>(0.0);
        var lt = 0.0;
        for (var i = 0u; i < NG; i = i + 1u) {
            tot = tot + accs[i * (HD / 4u) + lid];
            lt = lt + ls[i * (HD / 4u)];
        }
        tot = tot / lt;
        for (var c = 0u; c < 4u; c = c + 1u) {
            fw[4u * lid + c] = tot[c];
        }
    }
    workgroupBarrier();
    var r = 1.0;
    if (UNROTATE != 0u) {
        fwht_rows(lid, 1u);
        r = 1.0 / sqrt(f32(HD));
    }
    for (var i = lid; i < HD; i = i + WG) {
        var sign = 1.0;
        if (UNROTATE != 0u) {
            sign = consts[HD + i];
        }
        out[qh * HD + i] = fw[i] * r * sign;
    }
}
