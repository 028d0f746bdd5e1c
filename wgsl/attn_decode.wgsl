// Attention decode over a dense KV cache. Grid z = token t of the chunk, which sees
// kv_len(t) = step.kv_len + t cache rows (causal); q/out are [t][n_heads][HD].
// BLOCK == 0: single pass, one workgroup per query head over [0, kv_len), writes out.
// BLOCK > 0: pass 1 of split-K, workgroup (head, block) over its BLOCK tokens, writes
// partial (max, sum) and unnormalized output for attn_merge; blocks past kv_len(t)
// write an empty partial (sum 0).
// Tokens are processed in tiles of WG with an online softmax. Cache [n_kv][capacity][HD]:
// capacity is the row stride, kv_len the loop bound. consts: WG (>= HD), HD, BLOCK
struct Params {
    n_heads: u32,
    group: u32,
    capacity: u32,
    max_blocks: u32,
    scale: f32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kc: array<kv_t>;
@group(0) @binding(3) var<storage, read> vc: array<kv_t>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> pml: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read_write> po: array<f32>;

var<workgroup> qs: array<f32, HD>;
var<workgroup> ps: array<f32, WG>;

@compute @workgroup_size(WG)
fn attn_decode(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let t = wid.z;
    let qh = t * p.n_heads + h;
    let kv_len = step.kv_len + t;
    let base = (h / p.group) * p.capacity;
    var start = 0u;
    var end = kv_len;
    if (BLOCK > 0u) {
        start = min(wid.y * BLOCK, kv_len);
        end = min(wid.y * BLOCK + BLOCK, kv_len);
    }
    for (var i = lid; i < HD; i = i + WG) {
        qs[i] = q[qh * HD + i] * p.scale;
    }
    workgroupBarrier();
    var m = -3.0e38;
    var l = 0.0;
    var acc = 0.0;
    for (var t0 = start; t0 < end; t0 = t0 + WG) {
        let t = t0 + lid;
        var s = -3.0e38;
        if (t < end) {
            let kb = (base + t) * HD;
            var d = 0.0;
            for (var i = 0u; i < HD; i = i + 1u) {
                d = d + qs[i] * f32(kc[kb + i]);
            }
            s = d;
        }
        let mn = max(m, wg_max(s, lid));
        var pr = 0.0;
        if (t < end) {
            pr = exp(s - mn);
        }
        ps[lid] = pr;
        // wg_sum's barrier also publishes ps.
        let lt = wg_sum(pr, lid);
        let corr = exp(m - mn);
        l = l * corr + lt;
        acc = acc * corr;
        if (lid < HD) {
            // Eight rows per iteration with the loads first: eight loads in flight instead
            // of one latency round per token.
            let n = min(WG, end - t0);
            let vb = (base + t0) * HD + lid;
            var j = 0u;
            for (; j + 8u <= n; j = j + 8u) {
                let o = vb + j * HD;
                let v0 = f32(vc[o]);
                let v1 = f32(vc[o + HD]);
                let v2 = f32(vc[o + 2u * HD]);
                let v3 = f32(vc[o + 3u * HD]);
                let v4 = f32(vc[o + 4u * HD]);
                let v5 = f32(vc[o + 5u * HD]);
                let v6 = f32(vc[o + 6u * HD]);
                let v7 = f32(vc[o + 7u * HD]);
                acc = acc + ps[j] * v0 + ps[j + 1u] * v1 + ps[j + 2u] * v2 + ps[j + 3u] * v3;
                acc = acc + ps[j + 4u] * v4 + ps[j + 5u] * v5 + ps[j + 6u] * v6 + ps[j + 7u] * v7;
            }
            for (; j < n; j = j + 1u) {
                acc = acc + ps[j] * f32(vc[vb + j * HD]);
            }
        }
        m = mn;
        workgroupBarrier();
    }
    if (lid < HD) {
        if (BLOCK == 0u) {
            out[qh * HD + lid] = acc / l;
        } else {
            let pi = qh * p.max_blocks + wid.y;
            po[pi * HD + lid] = acc;
            if (lid == 0u) {
                pml[pi] = vec2<f32>(m, l);
            }
        }
    }
}
