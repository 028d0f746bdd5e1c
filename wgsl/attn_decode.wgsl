// Attention decode over a dense KV cache. Grid z = token t of the chunk, which sees
// kv_len(t) = step.kv_len + t cache rows (causal); q/out are [t][n_heads][HD].
// Each workgroup serves G query heads of one KV head (G divides the GQA group; grid x =
// n_heads / G): one (more workgroups, each with less serial work) or several (the group's
// K and V rows read once for all of them).
// BLOCK == 0: single pass, one workgroup per G query heads over [0, kv_len), writes out.
// BLOCK > 0: pass 1 of split-K, workgroup (heads, block) over its BLOCK tokens, writes
// partial (max, sum) and unnormalized output (common/merge.wgsl's layout); blocks past
// kv_len(t) write an empty partial (sum 0). MERGE = 1: the heads' last block to finish
// merges them (no attn_merge dispatch; the G heads in turn); else attn_merge does. BLOCK
// may be smaller than the WG-token tile (threads past the block idle).
// Tokens are processed in tiles of WG with an online softmax. Cache [n_kv][capacity][HD]:
// capacity is the row stride, kv_len the loop bound. Grid columns x >= n_heads / G only
// prefetch (`pf`). consts: WG (>= HD), HD, G, BLOCK, MERGE
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
// The layer's weights that run after attention: grid columns past n_heads / G prefetch them
// into L2 (common/prefetch.wgsl's prefetch_side); a one-word placeholder when off.
@group(0) @binding(6) var<storage, read> pf: array<u32>;

var<workgroup> qs: array<vec4<f32>, G * HD / 4u>;
var<workgroup> ps: array<f32, G * WG>;
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
    if (wid.x >= p.n_heads / G) {
        // Never true at run time (step.zero is 0): keeps the prefetch loads live.
        if ((prefetch_side(wid, nwg, lid, p.n_heads / G) & step.zero) != 0u) {
            atomicOr(&pml[0], 1u);
        }
        return;
    }
    // Query heads h0 .. h0 + G - 1, all of one KV head (G divides the GQA group).
    let h0 = wid.x * G;
    let t = wid.z;
    let qh0 = t * p.n_heads + h0;
    let kv_len = step.kv_len + t;
    let base = (h0 / p.group) * p.capacity;
    var start = 0u;
    var end = kv_len;
    if (BLOCK > 0u) {
        start = min(wid.y * BLOCK, kv_len);
        end = min(wid.y * BLOCK + BLOCK, kv_len);
    }
    for (var i = lid; i < G * HD / 4u; i = i + WG) {
        let o = qh0 * HD + 4u * i;
        qs[i] = vec4<f32>(q[o], q[o + 1u], q[o + 2u], q[o + 3u]) * p.scale;
    }
    workgroupBarrier();
    var m: array<f32, G>;
    var l: array<f32, G>;
    var acc: array<vec4<f32>, G>;
    for (var g = 0u; g < G; g = g + 1u) {
        m[g] = -3.0e38;
    }
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
        // One K row (this thread's token) scored against the G queries.
        let kb = (base + min(t, end - 1u)) * (HD / 4u);
        // Explicitly zeroed for every tile: with a bare `var` here the page (Chromium's WebGPU
        // on SwiftShader) carried the scores into the second tile (its greedy tokens left the
        // native engine's at the first 65-row step); naga's SPIR-V re-zeroes either way.
        var d = array<f32, G>();
        for (var i = 0u; i < HD / 4u; i = i + 1u) {
            let k = vec4<f32>(kc[kb + i]);
            for (var g = 0u; g < G; g = g + 1u) {
                d[g] = d[g] + dot(qs[g * (HD / 4u) + i], k);
            }
        }
        // Online softmax, up to four query heads per exchange (wg_max_sum4: the tile's max and
        // its sum of exp in one barrier); the weights (ps) are published by the barrier after.
        for (var g0 = 0u; g0 < G; g0 = g0 + 4u) {
            if (g0 > 0u) {
                // red4 is read by the previous exchange's threads.
                workgroupBarrier();
            }
            // (Constant trip counts and indices once unrolled: no private array is indexed
            // by a run-time value.)
            var sv = vec4<f32>(-3.0e38);
            for (var c = 0u; c < 4u; c = c + 1u) {
                if (g0 + c < G) {
                    sv[c] = d[g0 + c];
                }
            }
            let ms = wg_max_sum4(sv, t < end, lid);
            for (var c = 0u; c < 4u; c = c + 1u) {
                let g = g0 + c;
                if (g < G) {
                    let mn = max(m[g], ms.m[c]);
                    var pr = 0.0;
                    if (t < end) {
                        pr = exp(sv[c] - mn);
                    }
                    ps[g * WG + lid] = pr;
                    let corr = exp(m[g] - mn);
                    l[g] = l[g] * corr + ms.s[c] * exp(ms.m[c] - mn);
                    acc[g] = acc[g] * corr;
                    m[g] = mn;
                }
            }
        }
        workgroupBarrier();
        for (var i = 0u; i < RPG; i = i + 1u) {
            var v = vec4<f32>(0.0);
            if (i < VPRE) {
                v = vec4<f32>(vr[min(i, VPRE - 1u)]);
            } else {
                v = vec4<f32>(vc[(base + t0 + min(rg + i * NRG, n - 1u)) * (HD / 4u) + lane]);
            }
            for (var g = 0u; g < G; g = g + 1u) {
                acc[g] = acc[g] + ps[g * WG + rg + i * NRG] * v;
            }
        }
        // No barrier: the next tile writes ps and red4 only after a barrier that every
        // thread reaches once done with this tile's.
    }
    // Sum the row groups, one head at a time through workgroup memory.
    for (var g = 0u; g < G; g = g + 1u) {
        accs[lid] = acc[g];
        workgroupBarrier();
        if (lid < HD / 4u) {
            var tot = vec4<f32>(0.0);
            for (var r = 0u; r < NRG; r = r + 1u) {
                tot = tot + accs[r * (HD / 4u) + lid];
            }
            if (BLOCK == 0u) {
                att[(qh0 + g) * (HD / 4u) + lid] = tot / l[g];
            } else {
                let pi = (qh0 + g) * p.max_blocks + wid.y;
                att[p.po_off + pi * (HD / 4u) + lid] = tot;
            }
        }
        workgroupBarrier();
    }
    if (BLOCK > 0u) {
        for (var g = 0u; g < G; g = g + 1u) {
            if (lid == g) {
                ml_store((qh0 + g) * p.max_blocks + wid.y, vec2<f32>(m[g], l[g]));
            }
        }
    }
    if (BLOCK > 0u && MERGE != 0u) {
        // Counter per (token, workgroup): qh0 is its first query head. The last block
        // merges the G heads one after the other.
        if (last_block(lid, qh0, nwg.y)) {
            for (var g = 0u; g < G; g = g + 1u) {
                let r = merge_head(lid, qh0 + g, nwg.y);
                if (lid < HD / 4u) {
                    att[(qh0 + g) * (HD / 4u) + lid] = r;
                }
            }
        }
    }
}
