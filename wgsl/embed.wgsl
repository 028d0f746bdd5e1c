// Embedding lookup for token t = wid.y of the chunk: out[t][hidden] = dequant(table[tokens[step.slot + t]]).
// consts: WG, K (hidden), ROW_BYTES
struct Params {
    rows: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> wq: array<u32>;
@group(0) @binding(2) var<storage, read> tokens: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn embed(@builtin(global_invocation_id) gid: vec3<u32>) {
    let u = gid.x;
    let t = gid.y;
    if (u >= K / 8u) {
        return;
    }
    let tok = min(tokens[step.slot + t], p.rows - 1u);
    let w = load8(tok * ROW_BYTES, u);
    let o = t * (K / 4u) + 2u * u;
    out[o] = w.a;
    out[o + 1u] = w.b;
}
