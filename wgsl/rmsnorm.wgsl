// RMSNorm of row t = wid.x: out[t][i] = x[t][i] / sqrt(mean(x[t]^2) + eps) * w[i].
// One workgroup per token row. consts: WG, N
struct Params {
    eps: f32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn rmsnorm(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let b = wid.x * N;
    var ss = 0.0;
    for (var i = lid; i < N; i = i + WG) {
        let v = x[b + i];
        ss = ss + v * v;
    }
    let total = wg_sum(ss, lid);
    let r = inverseSqrt(total / f32(N) + p.eps);
    for (var i = lid; i < N; i = i + WG) {
        out[b + i] = x[b + i] * r * w[i];
    }
}
