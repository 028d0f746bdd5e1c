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
    var mx = -3.0e38;
    for (var b = 0u; b < nb; b = b + 1u) {
        mx = max(mx, pml[first + b].x);
    }
    var l = 0.0;
    var acc = 0.0;
    for (var b = 0u; b < nb; b = b + 1u) {
        let ml = pml[first + b];
        let w = exp(ml.x - mx);
        l = l + ml.y * w;
        if (lid < HD) {
            acc = acc + po[(first + b) * HD + lid] * w;
        }
    }
    if (lid < HD) {
        out[qh * HD + lid] = acc / l;
    }
}
