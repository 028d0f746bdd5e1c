// RoPE on q (all heads, in place) and k, then write k and v into the KV cache at
// step.pos. One workgroup per head: [0, n_heads) are query heads, then kv heads.
// Cache layout [n_kv_heads][capacity][HD]. cos/sin come from a host-built table
// [capacity][HD/2] (f64-accurate; GPU sin/cos are imprecise at large angles).
// consts: WG, HD
struct Params {
    n_heads: u32,
    n_kv_heads: u32,
    capacity: u32,
    halves: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> q: array<f32>;
@group(0) @binding(2) var<storage, read_write> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> kc: array<kv_t>;
@group(0) @binding(5) var<storage, read_write> vc: array<kv_t>;
@group(0) @binding(6) var<storage, read> cs: array<vec2<f32>>;

@compute @workgroup_size(WG)
fn rope_kv(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let pos = step.pos;
    for (var i = lid; i < HD / 2u; i = i + WG) {
        let t = cs[pos * (HD / 2u) + i];
        var i0 = 2u * i;
        var i1 = 2u * i + 1u;
        if (p.halves != 0u) {
            i0 = i;
            i1 = i + HD / 2u;
        }
        if (h < p.n_heads) {
            let b = h * HD;
            let a0 = q[b + i0];
            let a1 = q[b + i1];
            q[b + i0] = a0 * t.x - a1 * t.y;
            q[b + i1] = a0 * t.y + a1 * t.x;
        } else {
            let kh = h - p.n_heads;
            let b = kh * HD;
            let a0 = k[b + i0];
            let a1 = k[b + i1];
            let r0 = a0 * t.x - a1 * t.y;
            let r1 = a0 * t.y + a1 * t.x;
            k[b + i0] = r0;
            k[b + i1] = r1;
            let c = (kh * p.capacity + pos) * HD;
            kc[c + i0] = kv_t(r0);
            kc[c + i1] = kv_t(r1);
            vc[c + i0] = kv_t(v[b + i0]);
            vc[c + i1] = kv_t(v[b + i1]);
        }
    }
}
