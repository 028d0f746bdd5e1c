// Pass 2 of split-K attention: merge step.n_blocks partials per query head.
// Grid: x = query head (one workgroup per head: a grid that left every workgroup at
// the same id would merge head 0 for all heads), y = token t of the chunk. Empty
// blocks (past kv_len(t)) carry sum 0 and drop out. consts: WG (>= HD), HD
struct Params {
    n_heads: u32,
    max_blocks: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pml: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> po: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn attn_merge(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let qh = wid.y * p.n_heads + h;
    let nb = step.n_blocks;
    let first = qh * p.max_blocks;
    // Four blocks per iteration, loads first (independent loads in flight together).
    var mx = -3.0e38;
    var b = 0u;
    for (; b + 4u <= nb; b = b + 4u) {
        let m0 = max(pml[first + b].x, pml[first + b + 1u].x);
        let m1 = max(pml[first + b + 2u].x, pml[first + b + 3u].x);
        mx = max(mx, max(m0, m1));
    }
    for (; b < nb; b = b + 1u) {
        mx = max(mx, pml[first + b].x);
    }
    let d = min(lid, HD - 1u);
    var l = 0.0;
    var acc = 0.0;
    b = 0u;
    for (; b + 4u <= nb; b = b + 4u) {
        let a0 = pml[first + b];
        let a1 = pml[first + b + 1u];
        let a2 = pml[first + b + 2u];
        let a3 = pml[first + b + 3u];
        let o0 = po[(first + b) * HD + d];
        let o1 = po[(first + b + 1u) * HD + d];
        let o2 = po[(first + b + 2u) * HD + d];
        let o3 = po[(first + b + 3u) * HD + d];
        let w0 = exp(a0.x - mx);
        let w1 = exp(a1.x - mx);
        let w2 = exp(a2.x - mx);
        let w3 = exp(a3.x - mx);
        l = l + a0.y * w0 + a1.y * w1 + a2.y * w2 + a3.y * w3;
        acc = acc + o0 * w0 + o1 * w1 + o2 * w2 + o3 * w3;
    }
    for (; b < nb; b = b + 1u) {
        let ml = pml[first + b];
        let w = exp(ml.x - mx);
        l = l + ml.y * w;
        acc = acc + po[(first + b) * HD + d] * w;
    }
    if (lid < HD) {
        out[qh * HD + lid] = acc / l;
    }
}
