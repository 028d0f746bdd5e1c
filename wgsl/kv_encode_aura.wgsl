// AURA encode fused into the KV write: one dispatch for K and V, one workgroup per
// (kind, kv head) (grid x = kind * n_kv_heads + kv head, kind 0 = K from src_k, 1 = V
// from src_v, each with its own params) and token t (grid y). For the head row x (after RoPE for K):
//   norm = |x|;  y = H diag(s) x  (unnormalized Walsh-Hadamard);  u = y / norm
//   (= rotated row * sqrt(d) / |x| for the orthonormal rotation);
//   idx_i = #boundaries < u_i;  gamma = norm / |c[idx]|;  indices bit-packed LE.
// Writes this kind's region of the layer's `words` ([n_kv][capacity][row_words] from
// word_off) and `gammas` ([n_kv][capacity] from gamma_off) at pos = step.pos + t.
// `consts` holds the layer's signs and the codebooks (see kv/layout in session.rs).
// cs: the RoPE (cos, sin) table [capacity][HD/2]. Grid columns x >= 2 n_kv_heads only
// prefetch (`pf`: the weights after attention, so they are in L2 by then). consts: WG
// (power of two), HD
struct Params {
    n_kv_heads: u32,
    capacity: u32,
    bits: u32,
    row_words: u32,
    word_off: u32,
    gamma_off: u32,
    // f32 offsets in `consts`: this kind's signs, centroids, boundaries
    s_off: u32,
    c_off: u32,
    b_off: u32,
    // key centering (K only): encode x - R_pos mu with mu = consts[mu_off + kvh * HD ..]
    // the pre-RoPE mean key; attention adds q . R_pos mu back (exact)
    mu_off: u32,
    has_mu: u32,
    halves: u32,
}

@group(0) @binding(0) var<uniform> pk: array<Params, 2>;
@group(0) @binding(1) var<storage, read> src_k: array<f32>;
@group(0) @binding(2) var<storage, read_write> words: array<u32>;
@group(0) @binding(3) var<storage, read_write> gammas: array<kv_t>;
@group(0) @binding(4) var<storage, read> consts: array<f32>;
@group(0) @binding(5) var<storage, read> cs: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read> src_v: array<f32>;
// The layer's weights that run after attention: grid columns past 2 n_kv_heads prefetch
// them into L2 (common/prefetch.wgsl's prefetch_side); a one-word placeholder when off.
@group(0) @binding(7) var<storage, read> pf: array<u32>;

var<workgroup> fw: array<vec4<f32>, HD / 4u>;
var<workgroup> packed: array<atomic<u32>, HD>;
// This kind's codebook (up to 8 bits): the binary search reads workgroup memory, not a
// chain of dependent memory loads.
var<workgroup> bnd: array<f32, 256>;
var<workgroup> cen: array<f32, 256>;

@compute @workgroup_size(WG)
fn kv_encode_aura(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    if (wid.x >= 2u * pk[0].n_kv_heads) {
        // Never true at run time (step.zero is 0): keeps the prefetch loads live.
        let a = prefetch_side(wid, nwg, lid, 2u * pk[0].n_kv_heads);
        if ((a & step.zero) != 0u) {
            words[0] = a;
        }
        return;
    }
    let kind = wid.x / pk[0].n_kv_heads;
    let p = pk[kind];
    let kvh = wid.x % p.n_kv_heads;
    let t = wid.y;
    let pos = step.pos + t;
    let row = (t * p.n_kv_heads + kvh) * HD;
    var ss = 0.0;
    for (var i = lid; i < HD; i = i + WG) {
        var v = 0.0;
        if (kind == 0u) {
            v = src_k[row + i];
        } else {
            v = src_v[row + i];
        }
        if (p.has_mu != 0u) {
            v = v - rope_mean(p.mu_off + kvh * HD, i, cs[pos * (HD / 2u) + rope_pair(i, p.halves)], p.halves);
        }
        ss = ss + v * v;
        fw[i >> 2u][i & 3u] = v * consts[p.s_off + i];
        atomicStore(&packed[i], 0u);
    }
    for (var i = lid; i < (1u << p.bits); i = i + WG) {
        cen[i] = consts[p.c_off + i];
        if (i + 1u < (1u << p.bits)) {
            bnd[i] = consts[p.b_off + i];
        }
    }
    // wg_sum's barrier also publishes fw and the codebook.
    let norm = sqrt(wg_sum(ss, lid));
    // The Walsh-Hadamard transform in workgroup memory (common/fwht.wgsl).
    fwht_rows(lid, 1u);
    let nb = (1u << p.bits) - 1u;
    var cc = 0.0;
    for (var i = lid; i < HD; i = i + WG) {
        var u = 0.0;
        if (norm > 0.0) {
            u = fw[i >> 2u][i & 3u] / norm;
        }
        // Count boundaries strictly below u (binary search over the sorted boundaries).
        var lo = 0u;
        var hi = nb;
        while (lo < hi) {
            let mid = (lo + hi) / 2u;
            if (bnd[mid] < u) {
                lo = mid + 1u;
            } else {
                hi = mid;
            }
        }
        let c = cen[lo];
        cc = cc + c * c;
        let bit = i * p.bits;
        let w = bit >> 5u;
        let off = bit & 31u;
        atomicOr(&packed[w], lo << off);
        if (off + p.bits > 32u) {
            atomicOr(&packed[w + 1u], lo >> (32u - off));
        }
    }
    let cnorm = sqrt(wg_sum(cc, lid));
    let base = kvh * p.capacity + pos;
    for (var w = lid; w < p.row_words; w = w + WG) {
        words[p.word_off + base * p.row_words + w] = atomicLoad(&packed[w]);
    }
    if (lid == 0u) {
        var g = 0.0;
        if (norm > 0.0 && cnorm > 0.0) {
            g = norm / cnorm;
        }
        gammas[p.gamma_off + base] = kv_t(g);
    }
}
