// DequantMirror (opt-in A/B path): decode the AURA rows written this step into a dense
// mirror cache that the dense attention kernels read. One workgroup per (kv head, token t)
// for K or V: x = diag(s) H (gamma c[idx]) / sqrt(d) (+ R_pos mu for centered keys).
// consts: WG, HD
struct Params {
    n_kv_heads: u32,
    capacity: u32,
    bits: u32,
    row_words: u32,
    word_off: u32,
    gamma_off: u32,
    s_off: u32,
    c_off: u32,
    // key centering (K only): add R_pos mu back, mu = consts[mu_off + kvh * HD ..]
    mu_off: u32,
    has_mu: u32,
    halves: u32,
    _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> words: array<u32>;
@group(0) @binding(2) var<storage, read> gammas: array<kv_t>;
@group(0) @binding(3) var<storage, read> consts: array<f32>;
@group(0) @binding(4) var<storage, read_write> dense: array<kv_t>;
@group(0) @binding(5) var<storage, read> cs: array<vec2<f32>>;

var<workgroup> fw: array<vec4<f32>, HD / 4u>;

@compute @workgroup_size(WG)
fn kv_dequant_aura(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let pos = step.pos + wid.y;
    let row = wid.x * p.capacity + pos;
    let g = f32(gammas[p.gamma_off + row]);
    let w0 = p.word_off + row * p.row_words;
    let mask = (1u << p.bits) - 1u;
    for (var i = lid; i < HD; i = i + WG) {
        let bit = i * p.bits;
        let w = w0 + (bit >> 5u);
        let off = bit & 31u;
        var v = words[w] >> off;
        if (off + p.bits > 32u) {
            v = v | (words[w + 1u] << (32u - off));
        }
        fw[i >> 2u][i & 3u] = g * consts[p.c_off + (v & mask)];
    }
    workgroupBarrier();
    fwht_rows(lid, 1u);
    let r = 1.0 / sqrt(f32(HD));
    for (var i = lid; i < HD; i = i + WG) {
        var x = fw[i >> 2u][i & 3u] * r * consts[p.s_off + i];
        if (p.has_mu != 0u) {
            x = x + rope_mean(p.mu_off + wid.x * HD, i, cs[pos * (HD / 2u) + rope_pair(i, p.halves)], p.halves);
        }
        dense[row * HD + i] = kv_t(x);
    }
}
