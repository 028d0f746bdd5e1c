// Attention decode straight from the AURA-packed cache. One workgroup serves the G
// query heads of one KV head (grid x), so packed K/V rows are read once per group;
// grid y = split-K block (BLOCK > 0) and z = token t of the step (kv_len(t) = step.kv_len + t).
// Queries are rotated once: q~ = H diag(sK) q / sqrt(d) * scale; score = gammaK * q~ . cK[idx];
// the output stays in the rotated domain, o~ = sum p * gammaV * cV[idx], and attn_unrotate
// turns it back. BLOCK == 0 writes o~ normalized to dst (the attention output); BLOCK > 0
// writes (max, sum, o~) partials in attn_merge's layout (dst = partial o).
// K rows are at the start of `words`/`gammas`, V rows at v_word_off/v_gamma_off; `consts`
// holds K signs at 0, then V signs, then the codebooks. consts: WG (= TILE = 64), HD (multiple of 64), G, BLOCK, KB, VB,
// RWK, RWV (row words). cs: the RoPE (cos, sin) table [capacity][HD/2] (key centering).
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
    _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> words: array<u32>;
@group(0) @binding(3) var<storage, read> gammas: array<kv_t>;
@group(0) @binding(4) var<storage, read> consts: array<f32>;
@group(0) @binding(5) var<storage, read_write> dst: array<f32>;
@group(0) @binding(6) var<storage, read_write> pml: array<vec2<f32>>;
@group(0) @binding(7) var<storage, read> cs: array<vec2<f32>>;

const NJ: u32 = HD / WG;
var<workgroup> fw: array<f32, G * HD>;
var<workgroup> ps: array<f32, G * WG>;
var<workgroup> cbk: array<f32, 1u << KB>;
var<workgroup> cbv: array<f32, 1u << VB>;
// Key centering: per query head g and RoPE pair j, (qa ma + qb mb, qb ma - qa mb), so a
// token's shift is sum_j cos * ab.x + sin * ab.y. AB = G * HD / 2 when it fits, else 1
// (then the loop reads q and mu from memory).
var<workgroup> ab: array<vec2<f32>, AB>;

fn pair(j: u32) -> vec2<u32> {
    if (p.halves != 0u) {
        return vec2<u32>(j, j + HD / 2u);
    }
    return vec2<u32>(2u * j, 2u * j + 1u);
}

// Index i of a packed row starting at word w0 (bits straddle words when 32 % bits != 0).
fn k_idx(w0: u32, i: u32) -> u32 {
    let bit = i * KB;
    let w = w0 + (bit >> 5u);
    let off = bit & 31u;
    var v = words[w] >> off;
    if (off + KB > 32u) {
        v = v | (words[w + 1u] << (32u - off));
    }
    return v & ((1u << KB) - 1u);
}

fn v_idx(w0: u32, i: u32) -> u32 {
    let bit = i * VB;
    let w = w0 + (bit >> 5u);
    let off = bit & 31u;
    var v = words[w] >> off;
    if (off + VB > 32u) {
        v = v | (words[w + 1u] << (32u - off));
    }
    return v & ((1u << VB) - 1u);
}

@compute @workgroup_size(WG)
fn attn_decode_aura(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let kvh = wid.x;
    let t = wid.z;
    let kv_len = step.kv_len + t;
    var start = 0u;
    var end = kv_len;
    if (BLOCK > 0u) {
        start = min(wid.y * BLOCK, kv_len);
        end = min(wid.y * BLOCK + BLOCK, kv_len);
    }
    let qh0 = t * p.n_heads + kvh * G;
    for (var i = lid; i < G * HD; i = i + WG) {
        fw[i] = q[qh0 * HD + i] * consts[i % HD];
    }
    for (var i = lid; i < (1u << KB); i = i + WG) {
        cbk[i] = consts[p.ck_off + i];
    }
    if (AB > 1u && p.has_mu != 0u) {
        for (var i = lid; i < G * HD / 2u; i = i + WG) {
            let g = i / (HD / 2u);
            let ii = pair(i % (HD / 2u));
            let qa = q[(qh0 + g) * HD + ii.x];
            let qb = q[(qh0 + g) * HD + ii.y];
            let ma = consts[p.mu_off + kvh * HD + ii.x];
            let mb = consts[p.mu_off + kvh * HD + ii.y];
            ab[i] = vec2<f32>(qa * ma + qb * mb, qb * ma - qa * mb) * p.scale;
        }
    }
    for (var i = lid; i < (1u << VB); i = i + WG) {
        cbv[i] = consts[p.cv_off + i];
    }
    workgroupBarrier();
    // Rotate the G queries: Walsh-Hadamard butterflies, then 1/sqrt(d) and the softmax scale.
    fwht_rows(lid, G);
    let qscale = p.scale / sqrt(f32(HD));
    var m: array<f32, G>;
    var l: array<f32, G>;
    var acc: array<f32, G * NJ>;
    for (var g = 0u; g < G; g = g + 1u) {
        m[g] = -3.0e38;
    }
    let base = kvh * p.capacity;
    for (var t0 = start; t0 < end; t0 = t0 + WG) {
        let tok = t0 + lid;
        var s: array<f32, G>;
        for (var g = 0u; g < G; g = g + 1u) {
            s[g] = -3.0e38;
        }
        if (tok < end) {
            let w0 = (base + tok) * RWK;
            var d: array<f32, G>;
            for (var i = 0u; i < HD; i = i + 1u) {
                let c = cbk[k_idx(w0, i)];
                for (var g = 0u; g < G; g = g + 1u) {
                    d[g] = d[g] + fw[g * HD + i] * c;
                }
            }
            let gk = f32(gammas[base + tok]) * qscale;
            for (var g = 0u; g < G; g = g + 1u) {
                s[g] = d[g] * gk;
            }
            if (p.has_mu != 0u) {
                // q . R_tok mu over the RoPE pairs (a, b): cos (qa ma + qb mb) + sin (qb ma - qa mb).
                let mu0 = p.mu_off + kvh * HD;
                for (var j = 0u; j < HD / 2u; j = j + 1u) {
                    let c = cs[tok * (HD / 2u) + j];
                    if (AB > 1u) {
                        for (var g = 0u; g < G; g = g + 1u) {
                            let e = ab[g * (HD / 2u) + j];
                            s[g] = s[g] + c.x * e.x + c.y * e.y;
                        }
                    } else {
                        let ii = pair(j);
                        let ma = consts[mu0 + ii.x];
                        let mb = consts[mu0 + ii.y];
                        for (var g = 0u; g < G; g = g + 1u) {
                            let qa = q[(qh0 + g) * HD + ii.x];
                            let qb = q[(qh0 + g) * HD + ii.y];
                            s[g] = s[g] + p.scale * (c.x * (qa * ma + qb * mb) + c.y * (qb * ma - qa * mb));
                        }
                    }
                }
            }
        }
        for (var g = 0u; g < G; g = g + 1u) {
            let mn = max(m[g], wg_max(s[g], lid));
            var pr = 0.0;
            if (tok < end) {
                pr = exp(s[g] - mn);
            }
            ps[g * WG + lid] = pr;
            let corr = exp(m[g] - mn);
            l[g] = l[g] * corr + wg_sum(pr, lid);
            for (var jj = 0u; jj < NJ; jj = jj + 1u) {
                acc[g * NJ + jj] = acc[g * NJ + jj] * corr;
            }
            m[g] = mn;
        }
        // V: thread owns output dims lid + jj * WG; the wg_sum barriers published ps.
        // Four rows per iteration with their loads first, then the tail row by row.
        let n = min(WG, end - t0);
        var tt = 0u;
        for (; tt + 4u <= n; tt = tt + 4u) {
            var vals: array<f32, 4 * NJ>;
            for (var u = 0u; u < 4u; u = u + 1u) {
                let row = base + t0 + tt + u;
                let gv = f32(gammas[p.v_gamma_off + row]);
                let w0 = p.v_word_off + row * RWV;
                for (var jj = 0u; jj < NJ; jj = jj + 1u) {
                    vals[u * NJ + jj] = gv * cbv[v_idx(w0, lid + jj * WG)];
                }
            }
            for (var u = 0u; u < 4u; u = u + 1u) {
                for (var jj = 0u; jj < NJ; jj = jj + 1u) {
                    for (var g = 0u; g < G; g = g + 1u) {
                        acc[g * NJ + jj] = acc[g * NJ + jj] + ps[g * WG + tt + u] * vals[u * NJ + jj];
                    }
                }
            }
        }
        for (; tt < n; tt = tt + 1u) {
            let row = base + t0 + tt;
            let gv = f32(gammas[p.v_gamma_off + row]);
            let w0 = p.v_word_off + row * RWV;
            for (var jj = 0u; jj < NJ; jj = jj + 1u) {
                let val = gv * cbv[v_idx(w0, lid + jj * WG)];
                for (var g = 0u; g < G; g = g + 1u) {
                    acc[g * NJ + jj] = acc[g * NJ + jj] + ps[g * WG + tt] * val;
                }
            }
        }
        workgroupBarrier();
    }
    for (var g = 0u; g < G; g = g + 1u) {
        let qh = qh0 + g;
        for (var jj = 0u; jj < NJ; jj = jj + 1u) {
            let j = lid + jj * WG;
            if (BLOCK == 0u) {
                dst[qh * HD + j] = acc[g * NJ + jj] / l[g];
            } else {
                dst[(qh * p.max_blocks + wid.y) * HD + j] = acc[g * NJ + jj];
            }
        }
        if (BLOCK > 0u && lid == 0u) {
            pml[qh * p.max_blocks + wid.y] = vec2<f32>(m[g], l[g]);
        }
    }
}
