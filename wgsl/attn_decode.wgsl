// Attention decode over a dense KV cache. Grid z = token t of the chunk, which sees
// kv_len(t) = step.kv_len + t cache rows (causal); q/out are [t][n_heads][HD].
// BLOCK == 0: single pass, one workgroup per query head over [0, kv_len), writes out.
// BLOCK > 0: pass 1 of split-K, workgroup (head, block) over its BLOCK tokens, writes
// partial (max, sum) and unnormalized output (common/merge.wgsl's layout); blocks past
// kv_len(t) write an empty partial (sum 0). MERGE = 1: the head's last block to finish
// merges them (no attn_merge dispatch); else attn_merge does. BLOCK may be smaller than
// the WG-token tile (threads past the block idle).
// Tokens are processed in tiles of WG with an online softmax. Cache [n_kv][capacity][HD]:
// capacity is the row stride, kv_len the loop bound. consts: WG (>= HD), HD, BLOCK, MERGE
struct Params {
    n_heads: u32,
    group: u32,
    capacity: u32,
    max_blocks: u32,
    scale: f32,
    // vec4 index of the split-K partial o rows in att
    po_off: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
// Keys are read four elements per load (HD is a multiple of 4).
@group(0) @binding(2) var<storage, read> kc: array<vec4<kv_t>>;
@group(0) @binding(3) var<storage, read> vc: array<vec4<kv_t>>;
// Output rows [t][n_heads][HD] first, then the split-K partial o rows (at po_off).
@group(0) @binding(4) var<storage, read_write> att: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> pml: array<atomic<u32>>;

var<workgroup> qs: array<vec4<f32>, HD / 4u>;
var<workgroup> ps: array<f32, WG>;
var<workgroup> accs: array<vec4<f32>, WG>;

// V accumulation: each thread owns 4 dims (lane) of one of NRG row groups; a tile's rows
// are dealt round-robin to the groups, so each thread loads RPG rows per tile, all issued
// together (a constant, unrolled trip count), and the groups are summed at the end.
const NRG: u32 = WG / (HD / 4u);
const RPG: u32 = WG / NRG;
// V rows per thread loaded at the top of a tile (the rest, large head dims only, after the
// softmax), bounding the registers they take.
const VPRE: u32 = min(RPG, 16u);

@compute @workgroup_size(WG)
fn attn_decode(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
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
    for (var i = lid; i < HD / 4u; i = i + WG) {
        let o = qh * HD + 4u * i;
        qs[i] = vec4<f32>(q[o], q[o + 1u], q[o + 2u], q[o + 3u]) * p.scale;
    }
    workgroupBarrier();
    var m = -3.0e38;
    var l = 0.0;
    var acc = vec4<f32>(0.0);
    let lane = lid % (HD / 4u);
    let rg = lid / (HD / 4u);
    for (var t0 = start; t0 < end; t0 = t0 + WG) {
        let t = t0 + lid;
        // Rows past the tile's end read the last valid row (their scores are masked, their
        // V rows weigh 0), so every load is unconditional. The tile's V rows are loaded
        // with its K rows: they don't wait for the softmax, so the tile costs one memory
        // round trip, not two.
        let n = min(WG, end - t0);
        var vr: array<vec4<kv_t>, VPRE>;
        for (var i = 0u; i < VPRE; i = i + 1u) {
            let row = base + t0 + min(rg + i * NRG, n - 1u);
            vr[i] = vc[row * (HD / 4u) + lane];
        }
        let kb = (base + min(t, end - 1u)) * (HD / 4u);
        var d = 0.0;
        for (var i = 0u; i < HD / 4u; i = i + 1u) {
            d = d + dot(qs[i], vec4<f32>(kc[kb + i]));
        }
        let s = select(-3.0e38, d, t < end);
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
        for (var i = 0u; i < RPG; i = i + 1u) {
            var v = vec4<f32>(0.0);
            if (i < VPRE) {
                v = vec4<f32>(vr[min(i, VPRE - 1u)]);
            } else {
                v = vec4<f32>(vc[(base + t0 + min(rg + i * NRG, n - 1u)) * (HD / 4u) + lane]);
            }
            acc = acc + ps[rg + i * NRG] * v;
        }
        m = mn;
        workgroupBarrier();
    }
    accs[lid] = acc;
    workgroupBarrier();
    if (lid < HD / 4u) {
        var tot = vec4<f32>(0.0);
        for (var g = 0u; g < NRG; g = g + 1u) {
            tot = tot + accs[g * (HD / 4u) + lid];
        }
        if (BLOCK == 0u) {
            att[qh * (HD / 4u) + lid] = tot / l;
        } else {
            let pi = qh * p.max_blocks + wid.y;
            att[p.po_off + pi * (HD / 4u) + lid] = tot;
            if (lid == 0u) {
                ml_store(pi, vec2<f32>(m, l));
            }
        }
    }
    if (BLOCK > 0u && MERGE != 0u) {
        if (last_block(lid, qh, nwg.y)) {
            let r = merge_head(lid, qh, nwg.y);
            if (lid < HD / 4u) {
                att[qh * (HD / 4u) + lid] = r;
            }
        }
    }
}
