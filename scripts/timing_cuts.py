#!/usr/bin/env python3
"""Timing-only cuts of the AURA attention kernel, for `AURA_WGSL_DIR` (see README, session 14).

Writes one directory per cut under OUT (default .dev/wgsl), each holding the edited copy of
wgsl/attn_decode_aura.wgsl (or of a common/ file) that the engine then reads instead of its
built-in source:

    python3 scripts/timing_cuts.py [OUT]
    AURA_WGSL_DIR=OUT/noenc cargo run --release --example bench -- --synthetic smollm2-135m ...

The cuts make the outputs wrong: they only price a piece of the kernel inside a real decode
step (run them against the uncut build in the same device call, alternating). A cut whose
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
NO_TURN = [("            let tb = turn(es, min(start, p.capacity - 1u), i);", "            let tb = es;"),
           ("            if (POLY && jq >= CX) {", "            if (POLY && jq >= CX && step.zero != 0u) {")]
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


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".dev", "wgsl")
    src = open(os.path.join(ROOT, "wgsl", KERNEL)).read()
    for name, edits in CUTS.items():
        s = src
        for old, new in edits:
            n = s.count(old)
            if n != 1:
                sys.exit(f"cut {name}: anchor found {n} times in wgsl/{KERNEL} (want 1): {old.strip()!r}")
            s = s.replace(old, new)
        os.makedirs(os.path.join(out, name), exist_ok=True)
        open(os.path.join(out, name, KERNEL), "w").write(s)
    os.makedirs(os.path.join(out, "enc2att", "common"), exist_ok=True)
    open(os.path.join(out, "enc2att", "common", "aura_enc_store.wgsl"), "w").write(ENC_TO_ATT)
    print(f"{len(CUTS) + 1} cuts under {out}: {', '.join(list(CUTS) + ['enc2att'])}")


if __name__ == "__main__":
    main()
