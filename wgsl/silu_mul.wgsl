// SwiGLU activation for token t = gid.y: out[t][i] = silu(gate[t][i]) * up[t][i], i < n.
// consts: WG
struct Params {
    n: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn silu_mul(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x < p.n) {
        let i = gid.y * p.n + gid.x;
        let g = gate[i];
        out[i] = g / (1.0 + exp(-g)) * up[i];
    }
}
