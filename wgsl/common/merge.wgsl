// Split-K merge of one query head's partials, shared by attn_merge (a dispatch of its own)
// and by the split-K attention kernels, whose last workgroup per head merges (MERGE = 1).
// Partials of head qh, block b: (max, sum) as f32 bits at pml[2 (qh max_blocks + b)]
// (atomics: the last workgroup reads what the others wrote in the same dispatch), and the
// unnormalized o at att[p.po_off + (qh max_blocks + b) HD/4 ..] (vec4s). The last
// arrayLength(&pml) words count finished blocks, one per (token, head or KV group): see
// `last_block`. Empty blocks (past kv_len) carry sum 0 and o = 0 (max -3e38) and drop
// out. Blocks are dealt to MG_NG groups of HD/4 threads (4 dims each), MG_U per iteration
// so loads issue together.
// Needs WG (a multiple of HD / 4), HD, p.max_blocks, p.po_off, pml, att, and the reductions'
// red4.
const MG_NG: u32 = WG / (HD / 4u);
const MG_U: u32 = 8u;
var<workgroup> mg_acc: array<vec4<f32>, WG>;
var<workgroup> mg_ticket: u32;

fn ml_load(i: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(atomicLoad(&pml[2u * i])), bitcast<f32>(atomicLoad(&pml[2u * i + 1u])));
}

fn ml_store(i: u32, v: vec2<f32>) {
    atomicStore(&pml[2u * i], bitcast<u32>(v.x));
    atomicStore(&pml[2u * i + 1u], bitcast<u32>(v.y));
}

// Dims 4 lid .. 4 lid + 3 of head qh's merged, normalized row (lid < HD / 4; zero for the
// other threads) over nb blocks, in one pass over them: each group keeps a running max
// (rescaling its sums when it grows), and the groups combine against the largest. Call
// from uniform control flow.
fn merge_head(lid: u32, qh: u32, nb: u32) -> vec4<f32> {
    let first = qh * p.max_blocks;
    let lane = lid % (HD / 4u);
    let o0 = p.po_off + first * (HD / 4u) + lane;
    var mx = -3.0e38;
    var l = 0.0;
    var acc = vec4<f32>(0.0);
    var b = lid / (HD / 4u);
    // MG_U blocks per iteration: all their loads first, so they are in flight together.
    for (; b + (MG_U - 1u) * MG_NG < nb; b = b + MG_U * MG_NG) {
        var a: array<vec2<f32>, MG_U>;
        var v: array<vec4<f32>, MG_U>;
        for (var u = 0u; u < MG_U; u = u + 1u) {
            a[u] = ml_load(first + b + u * MG_NG);
            v[u] = att[o0 + (b + u * MG_NG) * (HD / 4u)];
        }
        var mn = mx;
        for (var u = 0u; u < MG_U; u = u + 1u) {
            mn = max(mn, a[u].x);
        }
        let c = exp(mx - mn);
        l = l * c;
        acc = acc * c;
        mx = mn;
        for (var u = 0u; u < MG_U; u = u + 1u) {
            let w = exp(a[u].x - mx);
            l = l + a[u].y * w;
            acc = acc + v[u] * w;
        }
    }
    for (; b < nb; b = b + MG_NG) {
        let a = ml_load(first + b);
        let v = att[o0 + b * (HD / 4u)];
        let mn = max(mx, a.x);
        let c = exp(mx - mn);
        let w = exp(a.x - mn);
        l = l * c + a.y * w;
        acc = acc * c + v * w;
        mx = mn;
    }
    // Each group's (sum, max) goes through the reductions' red4 (free between them).
    mg_acc[lid] = acc;
    red4[lid] = vec4<f32>(l, mx, 0.0, 0.0);
    workgroupBarrier();
    var tot = vec4<f32>(0.0);
    if (lid < HD / 4u) {
        var m = -3.0e38;
        for (var i = 0u; i < MG_NG; i = i + 1u) {
            m = max(m, red4[i * (HD / 4u)].y);
        }
        var lt = 0.0;
        for (var i = 0u; i < MG_NG; i = i + 1u) {
            let lm = red4[i * (HD / 4u)];
            let w = exp(lm.y - m);
            tot = tot + mg_acc[i * (HD / 4u) + lid] * w;
            lt = lt + lm.x * w;
        }
        tot = tot / lt;
    }
    workgroupBarrier();
    return tot;
}

// Split-K (MERGE): after this workgroup's partials are written, count it as one of the
// nb blocks of counter c (the grid's block rows); true (uniform) for the last one to finish, which then
// merges. The device-scope barriers order the partial writes before the count and the
// merge's reads after it; the last workgroup resets the counter for the next dispatch.
fn last_block(lid: u32, c: u32, nb: u32) -> bool {
    storageBarrier();
    let ci = arrayLength(&pml) - 1u - c;
    if (lid == 0u) {
        mg_ticket = atomicAdd(&pml[ci], 1u);
    }
    let last = workgroupUniformLoad(&mg_ticket) + 1u == nb;
    if (last) {
        storageBarrier();
        if (lid == 0u) {
            atomicStore(&pml[ci], 0u);
        }
    }
    return last;
}
