// Attention decode straight from the AURA-packed cache. One workgroup serves G query heads
// of one KV head (grid x = n_heads / G): the whole GQA group (G = p.group: packed K/V rows
// are read once per group) or one head (G = 1: 3x the workgroups, each with a third of
// the serial work);
// grid y = split-K block (BLOCK > 0; with ENC one more row after the blocks, see below) and z =
// token t of the step (kv_len(t) = step.kv_len + t).
// Queries are rotated once: q~ = H diag(sK) q / sqrt(d) * scale; score = gammaK * q~ . cK[idx];
// the output accumulates in the rotated domain, o~ = sum p * gammaV * cV[idx]. BLOCK == 0
// rotates it back (o = diag(sV) H o~ / sqrt(d), common/unrotate.wgsl) and writes
// the normalized attention output to att; BLOCK > 0 writes (max, sum, o~) partials in
// common/merge.wgsl's layout, and either the KV group's last block to finish merges and
// rotates them back (MERGE = 1) or attn_merge (UNROTATE) does. BLOCK may be smaller than
// the 64-token tile (threads past the block idle).
// V rows: each thread owns 4 consecutive dims (one packed word or two) of one of NRG row
// groups; a tile's rows are dealt round-robin to the groups and summed at the end.
// K rows are at the start of `words`/`gammas`, V rows at v_word_off/v_gamma_off; `consts`
// holds K signs at 0, then V signs, then the codebooks (centroids at ck_off / cv_off,
// boundaries at bk_off / bv_off). `qkv`: the step's q rows [T][n_heads][HD] at 0, its k
// and v rows [T][n_kv][HD] at k_off and v_off (own rows; ENC). consts: WG (= TILE = 64), HD (multiple of 64), G, BLOCK, MERGE, KB, VB,
// RWK, RWV (row words), ENC, CX (key centering's exact pairs, see POLY), CZ (its leading
// vec4s of pairs whose mean is zero: the term skips them; CZ <= CX). cs: the RoPE
// (cos, sin) table [capacity][HD/2], then its rows 0..WG - 1 transposed two pairs at a time,
// [HD/4][WG][2], then the centering fit's coefficients, two vec4s per RoPE pair
// (reference::ops::rope_table_gpu; key centering).
// Own row: query t attends to its own row (kv_len(t) - 1, the step's token t) exactly, from
// the scratch k (after RoPE) and v rows in `qkv`, and to every earlier row through the
// packed cache. The workgroup whose block holds it rotates those rows with its queries (one
// FWHT over G + 2 rows; k centered like a cached row, so its score takes the same
// centering term) and substitutes them for the row's packed values: the cache's copy of
// that row is never used (its loads, clamped and unconditional like every row's, are
// discarded), so nothing in the step waits for its encoding.
// ENC (one-token steps; no kv_encode_aura dispatch before it): an extra grid row after the
// blocks' (launched last), whose first n_kv workgroups encode the new row
// pos = step.pos of one KV head each (the rest of that row's attention columns return at
// once; its prefetch columns prefetch), as kv_encode_aura would (the same arithmetic: norm,
// H diag(s) x, boundary count, gamma = norm / |c[idx]|, bits packed), and write it
// (common/aura_enc_store.wgsl, which compose adds with ENC), alongside the attention
// workgroups: none of them uses that row's values in memory (see above).
// Grid columns x >= n_heads / G only prefetch `pf` into L2 (common/prefetch.wgsl).
struct Params {
    n_heads: u32,
    capacity: u32,
    max_blocks: u32,
    scale: f32,
    v_word_off: u32,
    v_gamma_off: u32,
    // f32 offsets of the K and V centroids in `consts`
    ck_off: u32,
    cv_off: u32,
    // key centering: K rows hold R_pos (k - mu); score += scale * q . R_pos mu
    mu_off: u32,
    has_mu: u32,
    halves: u32,
    // vec4 index of the split-K partial o rows in att
    po_off: u32,
    // query heads per KV head (a multiple of G)
    group: u32,
    // f32 offsets of the step's k and v rows in qkv (own rows; ENC)
    k_off: u32,
    v_off: u32,
    // f32 offsets of the K and V boundaries in `consts` (ENC)
    bk_off: u32,
    bv_off: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> words: array<u32>;
@group(0) @binding(3) var<storage, read> gammas: array<kv_t>;
@group(0) @binding(4) var<storage, read> consts: array<f32>;
// Output rows [t][n_heads][HD] first, then the split-K partial o rows (at po_off).
@group(0) @binding(5) var<storage, read_write> att: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> pml: array<atomic<u32>>;
// (vec4s: two RoPE pairs each, see cs_pair)
@group(0) @binding(7) var<storage, read> cs: array<vec4<f32>>;
// The layer's weights that run after attention: grid columns past n_heads / G prefetch them
// into L2 (common/prefetch.wgsl's prefetch_side); a one-word placeholder when off.
@group(0) @binding(8) var<storage, read> pf: array<u32>;

// V: lanes of 4 dims per row, row groups per tile, rows per group per tile.
const VL: u32 = HD / 4u;
const NRG: u32 = max(WG / VL, 1u);
const RPG: u32 = WG / NRG;
// V rows per thread whose packed bits and gamma are loaded at the top of a tile (the rest,
// large head dims only, after the softmax), bounding the registers they take.
const VPRE: u32 = min(RPG, 16u);
// The G query rows (vec4s, HD / 4 per row: the scores read the rotated queries four dims
// per load), then from PS0 on the own K and V rows while the queries are rotated, and a
// tile's softmax weights (ps) in the tile loop, four query heads per vec4:
// [PS0 + (g / 4) * WG + row][g % 4]. (An ENC encoder holds its K and V rows in rows 0, 1.)
const PS0: u32 = G * HD / 4u;
var<workgroup> fw: array<vec4<f32>, G * HD / 4u + max(HD / 2u, ((G + 3u) / 4u) * WG)>;
var<workgroup> cbk: array<f32, 1u << KB>;
var<workgroup> cbv: array<f32, 1u << VB>;
// 4-bit codebooks by index pair (one byte of a packed row: two indices), so four dims take
// two lookups instead of four; one-token steps (ENC) with one query head per workgroup only
// (G = 1: single-pass, the fused merge, and since session 13 the merge dispatch up to
// plan::COMPRESSED_HEAD_MAX_BLOCKS blocks). H200, aura4v4 tok/s: depth 0 1003 against 978,
// 4096 919 against 909; with them, the GQA-group kernel of the merge dispatch at 16k fell
// to 773 against 849 (4 KiB more workgroup memory), and 512-token prefill to 8,596
// against 9,006 (every workgroup builds the tables).
const PK: bool = KB == 4u && G == 1u && ENC != 0u;
const PV: bool = VB == 4u && G == 1u && ENC != 0u;
var<workgroup> cbk2: array<vec2<f32>, select(1u, 256u, PK)>;
var<workgroup> cbv2: array<vec2<f32>, select(1u, 256u, PV)>;
// Key centering: per query head g and RoPE pair j, (qa ma + qb mb, qb ma - qa mb), so a
// token's shift is sum_j cos * ab.x + sin * ab.y; two pairs per vec4 ([g][j / 2]), as the
// table's transposed copy holds their angles. AB = G * HD / 2 (pairs) when it fits, else 1
// (then the loop reads q and mu from memory).
var<workgroup> ab: array<vec4<f32>, max(AB / 2u, 1u)>;
// The same per tile, turned by the tile start's angles: a token then needs only the angles
// of its offset in the tile (rows 0 .. WG - 1 of the table, shared by every tile, workgroup
// and layer, so they stay in cache, read from their transposed copy) instead of its own row.
var<workgroup> abt: array<vec4<f32>, max(AB / 2u, 1u)>;
// Key centering through the fit (kv::centering) where a block is one tile: the RoPE vec4s
// jq >= CX (slow pairs) add their share as one degree-7 polynomial in the row's offset from
// the tile's centre, u = (o - WG / 2) / (WG / 2), its eight coefficients per query head g
// summed in the prologue into ab[g][0..1] (a one-tile block reads ab no further; the fit
// pairs' partial sums go to ab[i] and abt[i] of their own vec4s, which the tile does not
// read either); the vec4s CZ <= jq < CX exact from abt as before (below CZ the mean is
// zero). CX >= 2 (kernels::aura_centering_cx).
const POLY: bool = BLOCK == WG && CX < HD / 4u && AB > 1u;
const CXE: u32 = select(HD / 4u, CX, POLY);
// ENC: the K and V boundaries (V's from 2^KB on) and the new row's packed K then V words.
var<workgroup> ebnd: array<f32, max(ENC * ((1u << KB) + (1u << VB)), 1u)>;
var<workgroup> epk: array<atomic<u32>, max(ENC * (RWK + RWV), 1u)>;
// The (cos, sin) of RoPE pair j at position `row` (table rows are HD / 4 vec4s).
fn cs_pair(row: u32, j: u32) -> vec2<f32> {
    let v = cs[row * (HD / 4u) + j / 2u];
    return select(v.xy, v.zw, (j & 1u) != 0u);
}

// Key centering's coefficients e = ab[i] (two RoPE pairs) turned by the angles of position
// t0: cos((t0 + o) w) A + sin((t0 + o) w) B = cos(o w) A' + sin(o w) B' with
// A' = cos(t0 w) A + sin(t0 w) B and B' = cos(t0 w) B - sin(t0 w) A.
fn turn(e: vec4<f32>, t0: u32, i: u32) -> vec4<f32> {
    return turn_by(e, cs[t0 * (HD / 4u) + i % (HD / 4u)]);
}

// The same by the angles cb of two pairs (cos, sin, cos, sin).
fn turn_by(e: vec4<f32>, cb: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(cb.x * e.x + cb.y * e.y, cb.x * e.y - cb.y * e.x, cb.z * e.z + cb.w * e.w, cb.z * e.w - cb.w * e.z);
}

// Entry i of a 4-bit codebook by index pair (at consts[off]): the centroids of i's low and
// high nibbles.
fn cb_pair(off: u32, i: u32) -> vec2<f32> {
    return vec2<f32>(consts[off + (i & 15u)], consts[off + (i >> 4u)]);
}

fn pair(j: u32) -> vec2<u32> {
    if (p.halves != 0u) {
        return vec2<u32>(j, j + HD / 2u);
    }
    return vec2<u32>(2u * j, 2u * j + 1u);
}

// Indices d .. d + 3 of a packed V row starting at word w0 (4 * VB <= 32 bits, which may
// straddle two words, unless 4 * VB divides 32: then the test folds away)
// (v_bits4 loads the 4 VB bits, idx4 splits them.)
const V_STRADDLES: bool = 32u % (4u * VB) != 0u;

fn v_bits4(w0: u32, d: u32) -> u32 {
    let bit = d * VB;
    let w = w0 + (bit >> 5u);
    let off = bit & 31u;
    var v = words[w] >> off;
    if (V_STRADDLES && off + 4u * VB > 32u) {
        v = v | (words[w + 1u] << (32u - off));
    }
    return v;
}

// Quantize element e of the new row of `kind` (0 K, 1 V; rotated, unnormalized, fw row kind):
// the index (boundaries strictly below u = y / norm) packed into epk; returns its centroid.
fn enc_elem(kind: u32, e: u32, norm: f32) -> f32 {
    var u = 0.0;
    if (norm > 0.0) {
        u = fw[kind * (HD / 4u) + (e >> 2u)][e & 3u] / norm;
    }
    var bits = KB;
    var b0 = 0u;
    var w0 = 0u;
    if (kind == 1u) {
        bits = VB;
        b0 = 1u << KB;
        w0 = RWK;
    }
    var lo = 0u;
    var hi = (1u << bits) - 1u;
    if (bits <= 4u) {
        // Up to 15 boundaries: count those below u, the same index as the search below
        // (sorted boundaries) without its chain of dependent loads (H100, session 15:
        // within noise, +0.2 % at 16k; the 8-bit codebooks keep the search).
        for (var b = 0u; b < 15u; b = b + 1u) {
            if (b < hi) {
                lo = lo + u32(ebnd[b0 + b] < u);
            }
        }
        hi = lo;
    }
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        if (ebnd[b0 + mid] < u) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    let bit = e * bits;
    let w = w0 + (bit >> 5u);
    let off = bit & 31u;
    atomicOr(&epk[w], lo << off);
    if (off + bits > 32u) {
        atomicOr(&epk[w + 1u], lo >> (32u - off));
    }
    if (kind == 1u) {
        return cbv[lo];
    }
    return cbk[lo];
}

fn idx4(v: u32) -> vec4<u32> {
    let m = (1u << VB) - 1u;
    return vec4<u32>(v & m, (v >> VB) & m, (v >> (2u * VB)) & m, (v >> (3u * VB)) & m);
}

// Token row `src` (f32 offset of its KV head's row in the step's k and v scratch rows) of
// KV head kvh at position pos, this thread's dims: k (after RoPE; minus R_pos mu with key
// centering, as the cache holds it) and v, times their signs, into fw from vec4 f0 on (K,
// then V at f0 + HD / 4), ready for the FWHT; returns their sums of squares (|k|^2, |v|^2).
fn load_kv_rows(src: u32, kvh: u32, pos: u32, f0: u32, lid: u32) -> vec4<f32> {
    var ss = vec4<f32>(0.0);
    for (var i = lid; i < HD; i = i + WG) {
        var kx = qkv[p.k_off + src + i];
        if (p.has_mu != 0u) {
            kx = kx - rope_mean(p.mu_off + kvh * HD, i, cs_pair(pos, rope_pair(i, p.halves)), p.halves);
        }
        let vx = qkv[p.v_off + src + i];
        ss = ss + vec4<f32>(kx * kx, vx * vx, 0.0, 0.0);
        fw[f0 + (i >> 2u)][i & 3u] = kx * consts[i];
        fw[f0 + HD / 4u + (i >> 2u)][i & 3u] = vx * consts[HD + i];
    }
    return ss;
}

// ENC side workgroup: encode the new row pos = step.pos of KV head kvh (K: its k after
// RoPE, minus R_pos mu with key centering; V) and write it to the cache; fw rows 0 and 1
// hold the two rows.
fn encode_new_row(kvh: u32, lid: u32) {
    let pos = step.pos;
    let ss = load_kv_rows(kvh * HD, kvh, pos, 0u, lid);
    for (var i = lid; i < RWK + RWV; i = i + WG) {
        atomicStore(&epk[i], 0u);
    }
    for (var i = lid; i + 1u < (1u << KB); i = i + WG) {
        ebnd[i] = consts[p.bk_off + i];
    }
    for (var i = lid; i + 1u < (1u << VB); i = i + WG) {
        ebnd[(1u << KB) + i] = consts[p.bv_off + i];
    }
    for (var i = lid; i < (1u << KB); i = i + WG) {
        cbk[i] = consts[p.ck_off + i];
    }
    for (var i = lid; i < (1u << VB); i = i + WG) {
        cbv[i] = consts[p.cv_off + i];
    }
    // The norms |k|, |v|; the reduction's barriers publish fw, epk, the boundaries and the
    // codebooks.
    let norms = sqrt(wg_sum4_open(ss, lid).xy);
    fwht_rows(lid, 2u);
    var cc = vec4<f32>(0.0);
    for (var e = lid; e < HD; e = e + WG) {
        let c = enc_elem(0u, e, norms.x);
        cc.x = cc.x + c * c;
    }
    for (var e = lid; e < HD; e = e + WG) {
        let c = enc_elem(1u, e, norms.y);
        cc.y = cc.y + c * c;
    }
    // The reduction's barrier publishes epk (no trailing barrier: red4 is not written
    // again; after the first sum fwht_rows' barriers come before this one writes it).
    let cn = sqrt(wg_sum4_open(cc, lid).xy);
    let g = select(vec2<f32>(0.0), norms / cn, (norms > vec2<f32>(0.0)) & (cn > vec2<f32>(0.0)));
    enc_store(kvh * p.capacity + pos, g, lid);
}

// A tile's packed rows for this thread (rows past the block's end read its last row: every
// load unconditional): its V words (row group rg, lane's dims) into vbits, its token's K
// words into kw; returns the token's K and V gammas.
fn load_tile(t0: u32, end: u32, base: u32, lid: u32, vbits: ptr<function, array<u32, VPRE>>, kw: ptr<function, array<u32, RWK + 1u>>) -> vec2<f32> {
    let lane = lid % VL;
    let rg = lid / VL;
    for (var i = 0u; i < VPRE; i = i + 1u) {
        let row = base + min(t0 + rg + i * NRG, end - 1u);
        (*vbits)[i] = v_bits4(p.v_word_off + row * RWV, 4u * lane);
    }
    let kt = base + min(t0 + lid, end - 1u);
    for (var w = 0u; w < RWK; w = w + 1u) {
        (*kw)[w] = words[kt * RWK + w];
    }
    (*kw)[RWK] = 0u;
    return vec2<f32>(f32(gammas[kt]), f32(gammas[p.v_gamma_off + kt]));
}

@compute @workgroup_size(WG)
fn attn_decode_aura(
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
    // ENC: the last grid row holds the new row's encoders, its first n_kv workgroups (one
    // per KV head; the others return); the blocks are rows 0 .. nwg.y - 2. Launched last,
    // not first (H100, aura4v4, session 17: 977 against 967 tok/s at 4096, 872 against 858
    // at 16384, as much as an encoder that never runs): the attention workgroups, on the
    // step's critical path, get the SMs first and the encoders fill in behind them.
    if (ENC != 0u && wid.y == nwg.y - 1u) {
        if (wid.x < p.n_heads / p.group) {
            encode_new_row(wid.x, lid);
        }
        return;
    }
    // Split-K block yb: the one-head kernel (G = 1) takes the grid rows newest block first,
    // so the own row's workgroups (the dispatch's longest: the own K and V rows loaded and
    // rotated with the queries) start first instead of last. H100, aura4v4 tok/s at 4096,
    // session 19, three alternating runs: 979-982 against 968-972 in grid order (f16
    // 981-984); the GQA-group kernel (16k: more workgroups than one wave) measured 862
    // reversed against 866, so it keeps the grid's order.
    let nb = nwg.y - ENC;
    let yb = select(wid.y, nb - 1u - wid.y, G == 1u);
    let kvh = wid.x * G / p.group;
    let t = wid.z;
    let kv_len = step.kv_len + t;
    var start = 0u;
    var end = kv_len;
    if (BLOCK > 0u) {
        start = min(yb * BLOCK, kv_len);
        end = min(yb * BLOCK + BLOCK, kv_len);
    }
    let qh0 = t * p.n_heads + wid.x * G;
    // The first tile's packed rows before anything else: their loads (from memory, not
    // cache) are in flight through the prologue instead of after it. Each later tile's
    // are issued at the end of the one before.
    let base = kvh * p.capacity;
    // The V signs of this thread's vec4 of a turned-back row (single-pass and the fused
    // merge: common/unrotate.wgsl), loaded with the first tile.
    var vsg = vec4<f32>(0.0);
    if (BLOCK == 0u || MERGE != 0u) {
        vsg = vsigns(lid);
    }
    var vbits: array<u32, VPRE>;
    var kw: array<u32, RWK + 1u>;
    var gkv = load_tile(start, end, base, lid, &vbits, &kw);
    // The prologue in two loops (the own row's k and v load between them): the query vec4s
    // with key centering's coefficients (adjacent RoPE pairs from the same loads), and the
    // codebook entries (a constant trip count).
    // Timing-only cuts (H200, aura4v4, session 13): leaving the coefficients out entirely
    // (outputs wrong) gains ~2% at 4096 and 16384; no part of them (the mean's loads, the
    // tile start's turn) alone stands out of the noise, and these two loops measured within
    // noise of the separate ones before them.
    // The queries take the signs, 1 / sqrt(d) and the softmax scale before the rotation.
    let qscale = p.scale / sqrt(f32(HD));
    let centered = AB > 1u && p.has_mu != 0u;
    for (var i = lid; i < G * HD / 4u; i = i + WG) {
        let o = qh0 * HD + 4u * i;
        let d = 4u * (i % (HD / 4u));
        let sg = vec4<f32>(consts[d], consts[d + 1u], consts[d + 2u], consts[d + 3u]);
        let q = vec4<f32>(qkv[o], qkv[o + 1u], qkv[o + 2u], qkv[o + 3u]);
        fw[i] = q * sg * qscale;
        if (centered) {
            // Key centering's coefficients of RoPE pairs 2 * (i % (HD / 4)) and the next
            // (see ab): adjacent pairs are this vec4's dims; halves pairs load theirs.
            let mu = p.mu_off + kvh * HD;
            var e = vec4<f32>(0.0);
            if (p.halves == 0u) {
                let m = vec4<f32>(consts[mu + d], consts[mu + d + 1u], consts[mu + d + 2u], consts[mu + d + 3u]);
                e = vec4<f32>(q.x * m.x + q.y * m.y, q.y * m.x - q.x * m.y, q.z * m.z + q.w * m.w, q.w * m.z - q.z * m.w);
            } else {
                let g = i / (HD / 4u);
                for (var k = 0u; k < 2u; k = k + 1u) {
                    let ii = pair(2u * (i % (HD / 4u)) + k);
                    let qa = qkv[(qh0 + g) * HD + ii.x];
                    let qb = qkv[(qh0 + g) * HD + ii.y];
                    let ma = consts[mu + ii.x];
                    let mb = consts[mu + ii.y];
                    e[2u * k] = qa * ma + qb * mb;
                    e[2u * k + 1u] = qb * ma - qa * mb;
                }
            }
            let es = e * p.scale;
            ab[i] = es;
            // The first tile's turn (abt, see the tile loop) here, published by the barrier
            // below: that tile needs no barrier of its own. A fitted vec4 (see POLY) is
            // turned straight to the tile's centre, row start + WG / 2 of the table: one
            // load and one turn where it took the start's then the offset's (H100,
            // session 18, aura4v4 tok/s at 4096 / 16384: 960-968 / 868 against 965-967 /
            // 866, level within noise). Past the table's last row (the last block of a
            // capacity that WG does not divide) it takes those two turns.
            let jq = i % (HD / 4u);
            let fit = POLY && jq >= CX;
            let direct = fit && start + WG / 2u < p.capacity;
            let tb = turn(es, min(start + select(0u, WG / 2u, direct), p.capacity - 1u), i);
            if (fit) {
                // Its two pairs' shares of the eight coefficients: even ones times A, odd
                // ones times B.
                var tc = tb;
                if (!direct) {
                    tc = turn_by(tb, cs[p.capacity * (HD / 4u) + jq * WG + WG / 2u]);
                }
                let w = p.capacity * (HD / 4u) + (HD / 4u) * WG + 4u * jq;
                let a = tc.xyxy;
                let b = tc.zwzw;
                ab[i] = cs[w] * a + cs[w + 2u] * b;
                abt[i] = cs[w + 1u] * a + cs[w + 3u] * b;
            } else {
                abt[i] = tb;
            }
        }
    }
    // Own row: this workgroup's block holds row kv_len - 1 (workgroup-uniform); its k
    // (centered like a cached row) and v go next to the queries, rotated with them.
    let own = kv_len - 1u;
    let has_own = own >= start && own < end;
    if (has_own) {
        load_kv_rows((t * (p.n_heads / p.group) + kvh) * HD, kvh, own, PS0, lid);
    }
    // Codebooks (at most 256 entries each) and the pair tables.
    for (var r = 0u; r < (256u + WG - 1u) / WG; r = r + 1u) {
        let i = lid + r * WG;
        if (i < (1u << KB)) {
            cbk[i] = consts[p.ck_off + i];
        }
        if (i < (1u << VB)) {
            cbv[i] = consts[p.cv_off + i];
        }
        // (i < 256 always while WG divides 256; kept for any other WG)
        if (PK && i < 256u) {
            cbk2[i] = cb_pair(p.ck_off, i);
        }
        if (PV && i < 256u) {
            cbv2[i] = cb_pair(p.cv_off, i);
        }
    }
    workgroupBarrier();
    // The fit's coefficients per query head g (POLY): the last G threads (the FWHT's
    // first pass runs on the first ones) sum the fitted vec4s' partials into ab[g][0]
    // (from ab) and ab[g][1] (from abt), with no branch in the loop, so its loads issue
    // together (H100, aura4v4, session 15: 855 against 846 tok/s at 16384, the GQA-group
    // kernel, against 2 G threads each branching per vec4 between ab and abt; the one-head
    // kernel at 4096 unchanged); the FWHT's barriers publish them.
    if (POLY && centered && lid >= WG - G) {
        let r = (WG - 1u - lid) * (HD / 4u);
        var s0 = vec4<f32>(0.0);
        var s1 = vec4<f32>(0.0);
        for (var jq = CX; jq < HD / 4u; jq = jq + 1u) {
            s0 = s0 + ab[r + jq];
            s1 = s1 + abt[r + jq];
        }
        ab[r] = s0;
        ab[r + 1u] = s1;
    }
    // Rotate the G queries (and the own K and V rows, right after them).
    fwht_rows(lid, G + 2u * u32(has_own));
    var m: array<f32, G>;
    var l: array<f32, G>;
    var acc: array<vec4<f32>, G>;
    // This thread's V dims 4 * lane .. + 3 in row group rg.
    let lane = lid % VL;
    let rg = lid / VL;
    // The own row's values, read before the tile loop writes ps over them: its scores
    // without the centering term (added with every row's), q~ . H diag(sK) k / sqrt(d), the
    // same in every thread, and rotate(v) = H diag(sV) v / sqrt(d) (this thread's four dims).
    let rsd = inverseSqrt(f32(HD));
    var own_s: array<f32, G>;
    var own_v = vec4<f32>(0.0);
    if (has_own) {
        var d = array<f32, G>();
        for (var i = 0u; i < HD / 4u; i = i + 1u) {
            let k = fw[PS0 + i];
            for (var g = 0u; g < G; g = g + 1u) {
                d[g] = d[g] + dot(fw[g * (HD / 4u) + i], k);
            }
        }
        for (var g = 0u; g < G; g = g + 1u) {
            own_s[g] = d[g] * rsd;
        }
        own_v = fw[PS0 + HD / 4u + lane] * rsd;
    }
    for (var g = 0u; g < G; g = g + 1u) {
        m[g] = -3.0e38;
    }
    let own_slot = base + own;
    for (var t0 = start; t0 < end; t0 = t0 + WG) {
        let tok = t0 + lid;
        // The tile's packed V and K rows came in with load_tile (before the prologue for the
        // first tile, at the end of the one before for the others; rows past the tile's end
        // read the last valid row and weigh 0), so their loads don't wait for the softmax.
        // Each thread's token's V gamma goes into its softmax weights (ps), once per row,
        // not per lane.
        let n = min(WG, end - t0);
        // This thread's packed K row (clamped like V).
        let kt = base + min(tok, end - 1u);
        let gk0 = gkv.x;
        var gv0 = gkv.y;
        // The own row: its values from the prologue, not memory (where ENC's encoder may be
        // writing it).
        let ownk = has_own && kt == own_slot;
        if (ownk) {
            gv0 = 1.0;
        }
        if (AB > 1u && p.has_mu != 0u && t0 != start) {
            for (var i = lid; i < G * HD / 4u; i = i + WG) {
                abt[i] = turn(ab[i], t0, i);
            }
            workgroupBarrier();
        }
        // Scored unconditionally (rows past the tile's end are clamped, then masked), so no
        // branch keeps the centering's loads from issuing early.
        var s: array<f32, G>;
        // Four dims at a time, the indices from registers: HD and KB are constants, so
        // every shift is too. Explicitly zeroed per tile (see attn_decode.wgsl).
        var d = array<f32, G>();
        let km = (1u << KB) - 1u;
        for (var i = 0u; i < HD / 4u; i = i + 1u) {
            let bit = 4u * i * KB;
            let off = bit & 31u;
            var kv = kw[bit >> 5u] >> off;
            if (off + 4u * KB > 32u) {
                kv = kv | (kw[(bit >> 5u) + 1u] << (32u - off));
            }
            var c: vec4<f32>;
            if (PK) {
                c = vec4<f32>(cbk2[kv & 255u], cbk2[(kv >> 8u) & 255u]);
            } else {
                c = vec4<f32>(cbk[kv & km], cbk[(kv >> KB) & km], cbk[(kv >> (2u * KB)) & km], cbk[(kv >> (3u * KB)) & km]);
            }
            for (var g = 0u; g < G; g = g + 1u) {
                d[g] = d[g] + dot(fw[g * (HD / 4u) + i], c);
            }
        }
        for (var g = 0u; g < G; g = g + 1u) {
            s[g] = select(d[g] * gk0, own_s[g], ownk);
        }
        if (p.has_mu != 0u) {
            // q . R_tok mu over the RoPE pairs (a, b): cos (qa ma + qb mb) + sin (qb ma - qa mb).
            let mu0 = p.mu_off + kvh * HD;
            if (AB > 1u) {
                // Offset lid's angles from the transposed copy of rows 0..WG - 1, two
                // pairs per load: the threads read consecutive vec4s (coalesced).
                // (vec4s below CZ: a zero mean, no share)
                for (var jp = CZ; jp < CXE; jp = jp + 1u) {
                    let c = cs[p.capacity * (HD / 4u) + jp * WG + lid];
                    for (var g = 0u; g < G; g = g + 1u) {
                        s[g] = s[g] + dot(c, abt[g * (HD / 4u) + jp]);
                    }
                }
                if (POLY) {
                    // The fitted pairs: Horner in the offset from the tile's centre.
                    let u = (f32(lid) - f32(WG / 2u)) / f32(WG / 2u);
                    for (var g = 0u; g < G; g = g + 1u) {
                        let a = ab[g * (HD / 4u)];
                        let b = ab[g * (HD / 4u) + 1u];
                        s[g] = s[g] + (a.x + u * (a.y + u * (a.z + u * (a.w + u * (b.x + u * (b.y + u * (b.z + u * b.w)))))));
                    }
                }
            } else {
                for (var j = 0u; j < HD / 2u; j = j + 1u) {
                    let c = cs_pair(min(tok, end - 1u), j);
                    let ii = pair(j);
                    let ma = consts[mu0 + ii.x];
                    let mb = consts[mu0 + ii.y];
                    for (var g = 0u; g < G; g = g + 1u) {
                        let qa = qkv[(qh0 + g) * HD + ii.x];
                        let qb = qkv[(qh0 + g) * HD + ii.y];
                        s[g] = s[g] + p.scale * (c.x * (qa * ma + qb * mb) + c.y * (qb * ma - qa * mb));
                    }
                }
            }
        }
        for (var g = 0u; g < G; g = g + 1u) {
            s[g] = select(-3.0e38, s[g], tok < end);
        }
        // Online softmax for up to four query heads per exchange (wg_max_sum4: the tile's max
        // and its sum of exp in one barrier); the softmax weights times the rows' V gammas
        // (ps) are published by the barrier after.
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
                    sv[c] = s[g0 + c];
                }
            }
            let ms = wg_max_sum4(sv, tok < end, lid);
            var pr = vec4<f32>(0.0);
            for (var c = 0u; c < 4u; c = c + 1u) {
                let g = g0 + c;
                if (g < G) {
                    let mn = max(m[g], ms.m[c]);
                    if (tok < end) {
                        pr[c] = exp(s[g] - mn);
                    }
                    let corr = exp(m[g] - mn);
                    l[g] = l[g] * corr + ms.s[c] * exp(ms.m[c] - mn);
                    acc[g] = acc[g] * corr;
                    m[g] = mn;
                }
            }
            fw[PS0 + (g0 / 4u) * WG + lid] = pr * gv0;
        }
        workgroupBarrier();
        for (var i = 0u; i < RPG; i = i + 1u) {
            let j = rg + i * NRG;
            let row = base + t0 + min(j, n - 1u);
            var bits = 0u;
            if (i < VPRE) {
                bits = vbits[min(i, VPRE - 1u)];
            } else {
                bits = v_bits4(p.v_word_off + row * RWV, 4u * lane);
            }
            var cv: vec4<f32>;
            if (PV) {
                cv = vec4<f32>(cbv2[bits & 255u], cbv2[(bits >> 8u) & 255u]);
            } else {
                let ix = idx4(bits);
                cv = vec4<f32>(cbv[ix.x], cbv[ix.y], cbv[ix.z], cbv[ix.w]);
            }
            let val = select(cv, own_v, has_own && row == own_slot);
            for (var g = 0u; g < G; g = g + 1u) {
                acc[g] = acc[g] + fw[PS0 + (g / 4u) * WG + j][g % 4u] * val;
            }
        }
        // The next tile's rows (their loads in flight through this tile's end).
        if (t0 + WG < end) {
            gkv = load_tile(t0 + WG, end, base, lid, &vbits, &kw);
        }
        // No barrier: the next tile writes abt, red4 and ps only after barriers that every
        // thread reaches once done with this tile's.
    }
    // Sum the row groups, one query head at a time through red4 (its last readers passed
    // the last tile's ps barrier): single pass, normalized into fw's query rows (no longer
    // read) for the rotation back; split-K, the partial row straight to att.
    for (var g = 0u; g < G; g = g + 1u) {
        red4[lid] = acc[g];
        workgroupBarrier();
        if (lid < VL) {
            var tot = vec4<f32>(0.0);
            for (var r = 0u; r < NRG; r = r + 1u) {
                tot = tot + red4[r * VL + lid];
            }
            if (BLOCK == 0u) {
                fw[g * VL + lid] = tot / l[g];
            } else {
                att[p.po_off + ((qh0 + g) * p.max_blocks + yb) * VL + lid] = tot;
            }
        }
        workgroupBarrier();
    }
    if (BLOCK == 0u) {
        unrotate_out(lid, qh0, G, vsg);
        return;
    }
    for (var g = 0u; g < G; g = g + 1u) {
        if (lid == g) {
            ml_store((qh0 + g) * p.max_blocks + yb, vec2<f32>(m[g], l[g]));
        }
    }
    if (MERGE != 0u) {
        // Counter per (token, workgroup): qh0 is its first query head.
        if (last_block(lid, qh0, nb)) {
            for (var g = 0u; g < G; g = g + 1u) {
                let r = merge_head(lid, qh0 + g, nb);
                if (lid < VL) {
                    fw[g * (HD / 4u) + lid] = r;
                }
            }
            workgroupBarrier();
            unrotate_out(lid, qh0, G, vsg);
        }
    }
}
