// RoPE on q (all heads, in place) and k, then write k and v into the KV cache.
// Grid: x = head ([0, n_heads) query heads, then kv heads), y = token t of the chunk
// at position step.pos + t. Activations are [t][heads][HD].
// Cache layout [n_kv_heads][capacity][HD]. cos/sin come from a host-built table
// [capacity][HD/2] (f64-accurate; GPU sin/cos are imprecise at large angles).
// consts: WG, HD
struct Params {
    n_heads: u32,
    n_kv_heads: u32,
    capacity: u32,
    halves: u32,
    // 0 when the cache is AURA-compressed (kv_encode_aura writes it)
    write_cache: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> q: array<f32>;
@group(0) @binding(2) var<storage, read_write> k: array<f32>;
// read_write although only read: q, k and v are ranges of one buffer, and WebGPU forbids a
// buffer bound both read-only and writable in one dispatch.
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> kc: array<kv_t>;
@group(0) @binding(5) var<storage, read_write> vc: array<kv_t>;
@group(0) @binding(6) var<storage, read> cs: array<vec2<f32>>;

@compute @workgroup_size(WG)
fn rope_kv(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let t = wid.y;
    let pos = step.pos + t;
    for (var i = lid; i < HD / 2u; i = i + WG) {
        let c = cs[pos * (HD / 2u) + i];
        var i0 = 2u * i;
        var i1 = 2u * i + 1u;
        if (p.halves != 0u) {
            i0 = i;
            i1 = i + HD / 2u;
        }
        if (h < p.n_heads) {
            let b = (t * p.n_heads + h) * HD;
            let a0 = q[b + i0];
            let a1 = q[b + i1];
            q[b + i0] = a0 * c.x - a1 * c.y;
            q[b + i1] = a0 * c.y + a1 * c.x;
        } else {
            let kh = h - p.n_heads;
            let b = (t * p.n_kv_heads + kh) * HD;
            let a0 = k[b + i0];
            let a1 = k[b + i1];
            let r0 = a0 * c.x - a1 * c.y;
            let r1 = a0 * c.y + a1 * c.x;
            k[b + i0] = r0;
            k[b + i1] = r1;
            if (p.write_cache == 0u) {
                continue;
            }
            let o = (kh * p.capacity + pos) * HD;
            kc[o + i0] = kv_t(r0);
            kc[o + i1] = kv_t(r1);
            vc[o + i0] = kv_t(v[b + i0]);
            vc[o + i1] = kv_t(v[b + i1]);
        }
    }
}
