#!/usr/bin/env python3
"""Timing-only cuts of the AURA attention kernel, for `AURA_WGSL_DIR` (see README, session 14).

Writes one directory per cut under OUT (default .dev/wgsl), each holding the edited copy of
wgsl/attn_decode_aura.wgsl (or of another wgsl file: OTHER_CUTS, enc2att) that the engine
then reads instead of its built-in source:

    python3 scripts/timing_cuts.py [OUT]
    AURA_WGSL_DIR=OUT/noenc cargo run --release --example bench -- --synthetic smollm2-135m ...

The cuts make the outputs wrong: they only price a piece of the kernel inside a real decode
step (run them against the uncut build in the same device call, alternating). The real
variants (own_pre, own_post, pk_group, split_warps, lastbar_g1, revblk_all: see their
comments) keep them right:
check one with `AURA_WGSL_DIR=OUT/NAME cargo test --release --test aura_kernels attn_`. A cut whose
anchor text is no longer in the kernel fails loudly: update its anchor with the kernel.
"""
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
KERNEL = "attn_decode_aura.wgsl"

# Anchors (exact text of wgsl/attn_decode_aura.wgsl) and what replaces them. `step.zero` is
# 0 at run time but unknown to the compiler, so a guarded block stays compiled but never runs.
NO_ENC = ("            encode_new_row(wid.x, lid);\n", "")
NO_TERM = ("        if (p.has_mu != 0u) {\n            // q . R_tok mu",
           "        if (p.has_mu != 0u && step.zero != 0u) {\n            // q . R_tok mu")
NO_PROLOGUE = ("    let centered = AB > 1u && p.has_mu != 0u;",
               "    let centered = AB > 1u && p.has_mu != 0u && step.zero != 0u;")
NO_ENC_MEAN = ("        if (p.has_mu != 0u) {\n            kx = kx - rope_mean",
               "        if (p.has_mu != 0u && step.zero != 0u) {\n            kx = kx - rope_mean")
NO_TURN = [("            let tb = turn(es, min(start + select(0u, WG / 2u, direct), p.capacity - 1u), i);", "            let tb = es;"),
           ("            if (fit) {", "            if (fit && step.zero != 0u) {")]
# The one turn alone (session 18: since a fitted vec4 is turned straight to the tile's
# centre, the start's then the centre's turn of session 17's nostartturn / nocentreturn are
# one); the fit's coefficient loads and products.
NO_START_TURN = [NO_TURN[0]]
NO_COEF = ("                ab[i] = cs[w] * a + cs[w + 2u] * b;\n                abt[i] = cs[w + 1u] * a + cs[w + 3u] * b;",
           "                ab[i] = a;\n                abt[i] = b;")
NO_MU = ("                let m = vec4<f32>(consts[mu + d], consts[mu + d + 1u], consts[mu + d + 2u], consts[mu + d + 3u]);",
         "                let m = q.yxwz;")
NO_POLY_SUM = ("    if (POLY && centered && lid >= WG - G) {",
               "    if (POLY && centered && lid >= WG - G && step.zero != 0u) {")
# The fused encoders' pieces (session 15): compiled but never run; without their stores;
# without the quantization loop; returning after the row loads and the norms.
ENC_NEVER = ("            encode_new_row(wid.x, lid);\n",
             "            if (step.zero != 0u) {\n                encode_new_row(wid.x, lid);\n            }\n")
ENC_NO_STORE = ("    enc_store(kvh * p.capacity + pos, g, lid);",
                "    if (step.zero != 0u) {\n        enc_store(kvh * p.capacity + pos, g, lid);\n    }")
ENC_NO_QUANT = ("    for (var e = lid; e < HD; e = e + WG) {\n        let c = enc_elem(0u, e, norms.x);",
                "    for (var e = lid; e < HD * step.zero; e = e + WG) {\n        let c = enc_elem(0u, e, norms.x);")
ENC_NO_QUANT_V = ("    for (var e = lid; e < HD; e = e + WG) {\n        let c = enc_elem(1u, e, norms.y);",
                  "    for (var e = lid; e < HD * step.zero; e = e + WG) {\n        let c = enc_elem(1u, e, norms.y);")
ENC_LOAD_ONLY = ("    fwht_rows(lid, 2u);\n    var cc",
                 "    if (step.zero == 0u) {\n        enc_store(kvh * p.capacity + pos, norms, lid);\n        return;\n    }\n"
                 "    fwht_rows(lid, 2u);\n    var cc")
# The term's exact RoPE pairs left out (what the slow-pairs-only mean saves; with it on,
# the default, the fit kernels' exact loop is already empty: run with --centering-pairs all).
NO_EXACT = ("                for (var jp = CZ; jp < CXE; jp = jp + 1u) {",
            "                for (var jp = CZ; jp < select(CXE, 0u, POLY); jp = jp + 1u) {")

# Real variants (session 16; outputs correct, aura_kernels passes with them): the new row
# encoded by the own row's first attention workgroup of its KV group, before its tile loop
# (own_pre) or after its partials (own_post), the encoder row left idle. (enc_last, the
# encoder row launched last instead of first, won and is the kernel since session 17. H100,
# session 17, aura4v4 tok/s at 4096 / 16384: uncut 967 / 858, enc_last 977 / 872, own_pre
# 912 / 822, own_post 915 / 825, pk_group 969 / 786, encnever 978 / 869.)
# enc_elem takes the rotated value
ENC_ELEM = [
 ("fn enc_elem(kind: u32, e: u32, norm: f32) -> f32 {\n    var u = 0.0;\n    if (norm > 0.0) {\n        u = fw[kind * (HD / 4u) + (e >> 2u)][e & 3u] / norm;\n    }",
  "fn enc_elem(kind: u32, e: u32, y: f32, norm: f32) -> f32 {\n    var u = 0.0;\n    if (norm > 0.0) {\n        u = y / norm;\n    }"),
 ("let c = enc_elem(0u, e, norms.x);", "let c = enc_elem(0u, e, fw[e >> 2u][e & 3u], norms.x);"),
 ("let c = enc_elem(1u, e, norms.y);", "let c = enc_elem(1u, e, fw[HD / 4u + (e >> 2u)][e & 3u], norms.y);"),
]
NO_ROW0 = [("            encode_new_row(wid.x, lid);\n", "")]
OWN_LOAD = [
 ("    if (has_own) {\n        load_kv_rows((t * (p.n_heads / p.group) + kvh) * HD, kvh, own, PS0, lid);\n    }\n",
  "    var own_ss = vec4<f32>(0.0);\n    if (has_own) {\n        own_ss = load_kv_rows((t * (p.n_heads / p.group) + kvh) * HD, kvh, own, PS0, lid);\n    }\n"
  "    // Variant: the own row's first workgroup of the KV group encodes it.\n"
  "    let own_enc = ENC != 0u && has_own && (wid.x * G) % p.group == 0u;\n"
  "    if (own_enc) {\n"
  "        for (var i = lid; i < RWK + RWV; i = i + WG) {\n            atomicStore(&epk[i], 0u);\n        }\n"
  "        for (var i = lid; i + 1u < (1u << KB); i = i + WG) {\n            ebnd[i] = consts[p.bk_off + i];\n        }\n"
  "        for (var i = lid; i + 1u < (1u << VB); i = i + WG) {\n            ebnd[(1u << KB) + i] = consts[p.bv_off + i];\n        }\n"
  "    }\n"),
]
ANCHOR_TILE = "    for (var g = 0u; g < G; g = g + 1u) {\n        m[g] = -3.0e38;\n    }\n"
PRE = [(ANCHOR_TILE,
  "    if (own_enc) {\n"
  "        let norms = sqrt(wg_sum4(own_ss, lid).xy);\n"
  "        var cc = vec4<f32>(0.0);\n"
  "        for (var e = lid; e < HD; e = e + WG) {\n            let c = enc_elem(0u, e, fw[PS0 + (e >> 2u)][e & 3u], norms.x);\n            cc.x = cc.x + c * c;\n        }\n"
  "        for (var e = lid; e < HD; e = e + WG) {\n            let c = enc_elem(1u, e, fw[PS0 + HD / 4u + (e >> 2u)][e & 3u], norms.y);\n            cc.y = cc.y + c * c;\n        }\n"
  "        let cn = sqrt(wg_sum4(cc, lid).xy);\n"
  "        let eg = select(vec2<f32>(0.0), norms / cn, (norms > vec2<f32>(0.0)) & (cn > vec2<f32>(0.0)));\n"
  "        enc_store(base + own, eg, lid);\n"
  "    }\n" + ANCHOR_TILE)]
POST = [
 (ANCHOR_TILE,
  "    var own_y: array<vec2<f32>, HD / WG>;\n"
  "    if (own_enc) {\n"
  "        for (var j = 0u; j < HD / WG; j = j + 1u) {\n            let e = lid + j * WG;\n"
  "            own_y[j] = vec2<f32>(fw[PS0 + (e >> 2u)][e & 3u], fw[PS0 + HD / 4u + (e >> 2u)][e & 3u]);\n        }\n"
  "    }\n" + ANCHOR_TILE),
 ("    if (BLOCK == 0u) {\n        unrotate_out(lid, qh0, G, vsg);\n        return;\n    }\n",
  "    if (own_enc) {\n"
  "        let norms = sqrt(wg_sum4(own_ss, lid).xy);\n"
  "        var cc = vec4<f32>(0.0);\n"
  "        for (var j = 0u; j < HD / WG; j = j + 1u) {\n            let e = lid + j * WG;\n"
  "            let ck = enc_elem(0u, e, own_y[j].x, norms.x);\n"
  "            let cv = enc_elem(1u, e, own_y[j].y, norms.y);\n"
  "            cc = cc + vec4<f32>(ck * ck, cv * cv, 0.0, 0.0);\n        }\n"
  "        let cn = sqrt(wg_sum4(cc, lid).xy);\n"
  "        let eg = select(vec2<f32>(0.0), norms / cn, (norms > vec2<f32>(0.0)) & (cn > vec2<f32>(0.0)));\n"
  "        enc_store(base + own, eg, lid);\n"
  "    }\n"
  "    if (BLOCK == 0u) {\n        unrotate_out(lid, qh0, G, vsg);\n        return;\n    }\n"),
]

# Real variant (session 18; outputs correct): key centering's prologue on the second warp
# (threads WG / 2 on take vec4 0 on) while the first forms the scaled queries, instead of
# the same threads doing both one after the other. H100, session 18, aura4v4 tok/s at
# 4096 / 16384: 966-969 / 862-864 against the kernel's 960-968 / 868 (nothing; the cut
# nocoef 972-973 / 881).
SPLIT_WARPS = [("        fw[i] = q * sg * qscale;\n        if (centered) {",
                "        fw[i] = q * sg * qscale;\n    }\n"
                "    for (var i = (lid + WG / 2u) % WG; i < G * HD / 4u; i = i + WG) {\n"
                "        let o = qh0 * HD + 4u * i;\n        let d = 4u * (i % (HD / 4u));\n"
                "        let q = vec4<f32>(qkv[o], qkv[o + 1u], qkv[o + 2u], qkv[o + 3u]);\n"
                "        if (centered) {")]
# 4-bit codebooks by index pair in the GQA-group kernel too (one-token steps; session 11
# measured it past one wave at 16k, before the merge dispatch's changes).
PK_GROUP = [("const PK: bool = KB == 4u && G == 1u && ENC != 0u;", "const PK: bool = KB == 4u && ENC != 0u;"),
            ("const PV: bool = VB == 4u && G == 1u && ENC != 0u;", "const PV: bool = VB == 4u && ENC != 0u;")]

# Session 19 (H100, aura4v4 tok/s at 0 / 4096 / 16384, alternating runs in one call). Real
# variants: the one-head split-K kernel without the barrier after its row-group sum
# (nothing reads red4 after it there): 1009-1016 / 965 / 678 against 1011-1014 / 965 /
# 865-867 (lost: 16k falls although only G = 1 changes); the blocks launched newest first
# for every G (revblk_all): 1012-1016 / 976 / 862 (the kernel since session 19 for G = 1
# only). The encoders' two-row rotation left out (noencrot; one barrier kept: red4's reuse)
# and the merge dispatch's rotation back left out (nounrot, attn_merge_oproj.wgsl): with
# the session's landing kernel 1026-1030 / 972-984 / 872-877 (noisy; the kernel 1021-1028 /
# 973-976 / 871-872 there, in a build with the transforms through subgroup shuffles, which
# lost and did not land: see the README).
NO_ENC_ROT = ("    fwht_rows(lid, 2u);\n    var cc", "    workgroupBarrier();\n    var cc")
MERGE = "attn_merge_oproj.wgsl"
NO_UNROT = [("    if (UNROTATE != 0u) {\n        return mg_acc[k];\n    }\n    return fw[k];", "    return fw[k];"),
            ("    if (UNROTATE != 0u) {\n        if (lid < HD / 4u) {",
             "    if (UNROTATE != 0u && step.zero != 0u) {\n        if (lid < HD / 4u) {")]
LASTBAR_G1 = [("""            }
        }
        workgroupBarrier();
    }
    if (BLOCK == 0u) {""", """            }
        }
        if (G > 1u || BLOCK == 0u || MERGE != 0u) {
            workgroupBarrier();
        }
    }
    if (BLOCK == 0u) {""")]
REVBLK_ALL = [("    let yb = select(wid.y, nb - 1u - wid.y, G == 1u);", "    let yb = nb - 1u - wid.y;")]

# Session 20 (timing only): the 4-bit pair tables never built (the tile loop reads stale,
# or with shader checks zeroed, workgroup memory); the queries' (and own rows') rotation
# left out (one barrier kept, for the prologue's writes); the attention workgroups
# returning before their work: their cost in the step (the launch, the encoder row and the
# prefetch columns remain).
NO_PK_BUILD = [("        if (PK && i < 256u) {", "        if (PK && i < 256u && step.zero != 0u) {"),
               ("        if (PV && i < 256u) {", "        if (PV && i < 256u && step.zero != 0u) {")]
NO_QROT = [("    fwht_rows(lid, G + 2u * u32(has_own));",
            "    if (step.zero != 0u) {\n        fwht_rows(lid, G + 2u * u32(has_own));\n    }\n    workgroupBarrier();")]
ATTN_NOOP = [("    let kvh = wid.x * G / p.group;", "    if (step.zero == 0u) {\n        return;\n    }\n    let kvh = wid.x * G / p.group;")]

CUTS = {
    # The fused encode's workgroups return at once (the new row is never written).
    "noenc": [NO_ENC],
    # Key centering's score term in the tile loop.
    "noterm": [NO_TERM],
    # The term and the prologue's centering coefficients.
    "noprol_noterm": [NO_TERM, NO_PROLOGUE],
    # The new row's mean subtraction (encoders and own row).
    "noencmu": [NO_ENC_MEAN],
    "noenc_noterm": [NO_ENC, NO_TERM],
    # The prologue's turn to the tile start and the fit's per-vec4 coefficients.
    "noturn": NO_TURN,
    "nostartturn": NO_START_TURN,
    "nocoef": [NO_COEF],
    # The prologue's loads of the mean.
    "nomu": [NO_MU],
    # The fit's per-head sum (G threads before the FWHT).
    "nopolysum": [NO_POLY_SUM],
    # The prologue's centering coefficients alone.
    "noprol": [NO_PROLOGUE],
    "encnever": [ENC_NEVER],
    "enc_nostore": [ENC_NO_STORE],
    "enc_noquant": [ENC_NO_QUANT, ENC_NO_QUANT_V],
    "enc_loadonly": [ENC_LOAD_ONLY],
    "noexact": [NO_EXACT],
    "own_pre": ENC_ELEM + NO_ROW0 + OWN_LOAD + PRE,
    "own_post": ENC_ELEM + NO_ROW0 + OWN_LOAD + POST,
    "pk_group": PK_GROUP,
    "split_warps": SPLIT_WARPS,
    "noencrot": [NO_ENC_ROT],
    "lastbar_g1": LASTBAR_G1,
    "revblk_all": REVBLK_ALL,
    "nopk": NO_PK_BUILD,
    "noqrot": NO_QROT,
    "attn_noop": ATTN_NOOP,
}
# Cuts of other files: name -> (file, edits).
OTHER_CUTS = {
    "nounrot": (MERGE, NO_UNROT),
}

# The encoders' stores go to `att` instead of the cache: every load of `words` and `gammas`
# in the dispatch then sees no store to them (a read_write binding with none).
ENC_TO_ATT = """// Timing cut (scripts/timing_cuts.py): the fused encode's stores go to att, not the cache.
fn enc_store(row: u32, g: vec2<f32>, lid: u32) {
    for (var w = lid; w < RWK + RWV; w = w + WG) {
        att[w] = vec4<f32>(bitcast<f32>(atomicLoad(&epk[w])));
    }
    if (lid == 0u) {
        att[RWK + RWV] = vec4<f32>(g, f32(row), 0.0);
    }
}
"""


def write_cut(out, name, file, edits):
    """wgsl/FILE with each (old, new) edit applied (every anchor exactly once) into OUT/NAME/FILE."""
    s = open(os.path.join(ROOT, "wgsl", file)).read()
    for old, new in edits:
        n = s.count(old)
        if n != 1:
            sys.exit(f"cut {name}: anchor found {n} times in wgsl/{file} (want 1): {old.strip()!r}")
        s = s.replace(old, new)
    path = os.path.join(out, name, file)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write(s)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".dev", "wgsl")
    for name, edits in CUTS.items():
        write_cut(out, name, KERNEL, edits)
    for name, (file, edits) in OTHER_CUTS.items():
        write_cut(out, name, file, edits)
    os.makedirs(os.path.join(out, "enc2att", "common"), exist_ok=True)
    open(os.path.join(out, "enc2att", "common", "aura_enc_store.wgsl"), "w").write(ENC_TO_ATT)
    names = list(CUTS) + list(OTHER_CUTS) + ["enc2att"]
    print(f"{len(names)} cuts under {out}: {', '.join(names)}")


if __name__ == "__main__":
    main()
