// RMSNorm: out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]. One workgroup. consts: WG, N
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
fn rmsnorm(@builtin(local_invocation_index) lid: u32) {
    var ss = 0.0;
    for (var i = lid; i < N; i = i + WG) {
        let v = x[i];
        ss = ss + v * v;
    }
    let total = wg_sum(ss, lid);
    let r = inverseSqrt(total / f32(N) + p.eps);
    for (var i = lid; i < N; i = i + WG) {
        out[i] = x[i] * r * w[i];
    }
}
