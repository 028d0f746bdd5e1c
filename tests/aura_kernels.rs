//! GPU tests of the AURA compressed-KV kernels against their CPU twin
//! (`reference::aura`) for every variant engine (backend x f16 x subgroups):
//! kv_encode_aura, attn_decode_aura (single pass, which rotates its output back, and
//! split-K + attn_merge with UNROTATE) and kv_dequant_aura (mirror).
//!
//! Buffers follow attention/layer.rs: `words` = K [n_kv][cap][rwk] then V at
//! n_kv*cap*rwk; `gammas` = K [n_kv][cap] then V at n_kv*cap (f16 when the variant
//! stores f16); `consts` = [K signs][V signs][K centroids][K bounds][V centroids][V bounds].
//! Caches have capacity > kv_len with garbage past the valid rows, output/partial buffers
//! start as garbage. Failures name the variant, the case and its seed; cases derive from
//! AURA_KERNEL_SEED (default below). `--nocapture` prints worst errors and timings.
mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use aura::gpu::registry::StepUniform;
use aura::gpu::Gpu;
use aura::kernels::*;
use aura::kv::{codebook, rotate, row_words, signs, Codebook, KvKind, AURA_BITS};
use aura::reference::aura::{attention_packed, decode_row, encode_row, store_gamma, unpack, KeyCentering, PackedCache};
use aura::reference::ops;
use common::gpu::{
    assert_rows_distinct, base_seed, case_seed, engines, oproj_case, partial_ml, prefetch_buf, read, read_kv, run,
    upload, upload_kv,
};
use common::Rng;

/// Accepted error: normalized MSE (||got-want||^2 / ||want||^2) and max abs error.
#[derive(Clone, Copy, Debug)]
struct Tol {
    nmse: f64,
    abs: f64,
}

// In brackets: worst observed over 9 base seeds, lavapipe + llvmpipe, every variant.
// Encode: the kernel computes u = (H (s*x)) / |x|, the reference (H (s*x) / sqrt d) *
// (sqrt d / |x|): they differ by a few f32 ulps, so an index may move to the neighbouring
// cell when u sits on a boundary. Every differing index must be off by exactly one, with
// the reference u within FLIP_U_EPS of the boundary between the two cells, and at most
// MAX_FLIP_FRACTION of all indices (per variant) may differ. [0 flips of 19456 indices
// per variant: the two u differ by ~1 ulp]
const FLIP_U_EPS: f32 = 1e-5;
const MAX_FLIP_FRACTION: f64 = 1e-3;
/// γ in f32: summation order of |x| and |c| only. [1.6e-6]
const GAMMA_REL_F32: f32 = 1e-5;
/// γ stored as f16: one f16 ulp (2^-10 relative) when the f32 values straddle a rounding
/// boundary. [0]
const GAMMA_REL_F16: f32 = 1.0 / 1024.0;
/// Kernel and reference read the same packed rows and γ and do the same f32 math (order
/// of the rotation scale, online vs two-pass softmax, exp ulps). One extra or missing row
/// (kv_len ± 1 out of 1000) gives NMSE >= 1e-7, a dropped 64-row block of 4097 4e-8, a
/// garbage row or a mixed-up head far more. [nmse 1.8e-11, abs 7.2e-6]
/// RoPE base of the attention tests' tables.
const THETA: f32 = 10000.0;
const ATTN_TOL: Tol = Tol { nmse: 1e-9, abs: 5e-5 };
/// [6e-12, 5e-5] the merge dispatch with the output projection folded in, against the
/// reference rows times Wo: the attention's error times Wo plus the projection's summation
/// order.
const OPROJ_TOL: Tol = Tol { nmse: 1e-9, abs: 5e-4 };
/// Dequant: the transform `decode_row` computes, in another addition order (the kernel's
/// FWHT runs in two passes since session 10: f32 ulps); one f16 ulp (|x| < 8) when the
/// mirror is f16. [worst with the f16 mirror on lavapipe 3.5e-11 / 3.1e-5; bit-exact on
/// both before session 10]
const DEQUANT_TOL: Tol = Tol { nmse: 1e-12, abs: 1e-5 };
const DEQUANT_F16_TOL: Tol = Tol { nmse: 1e-7, abs: 8e-3 };

/// Written where a kernel must not read (γ of rows past kv_len, stale partials) or must
/// overwrite; representable in f16.
const GARBAGE: f32 = 1.0e4;
/// Row magnitudes: rows are uniform in ±m.
const MAGS: [f32; 3] = [0.25, 1.0, 4.0];
const HEAD_DIMS: [usize; 3] = [64, 128, 256];
/// (K bits, V bits) presets of KvScheme.
const PRESETS: [(u32, u32); 7] = [(8, 8), (8, 4), (8, 2), (4, 4), (4, 2), (3, 3), (2, 2)];
const GROUPS: [usize; 4] = [1, 3, 4, 8];
/// Group per [path][head dim]. A cold llvmpipe (GL) compile of attn_decode_aura grows
/// with G·HD (measured: G = 8 takes ~50 s at hd 256, ~17 s at hd 64; G <= 4 at hd <= 128
/// and G <= 3 at hd 256 take < 10 s), so G = 8 runs once, at hd 64.
const ATTN_GROUPS: [[usize; 3]; 4] = [[8, 3, 1], [4, 1, 3], [3, 4, 1], [1, 3, 3]];
const KV_LENS: [usize; 6] = [1, 31, 32, 33, 1000, 4097];
/// 0 = single pass; else the split-K block.
const BLOCKS: [u32; 4] = [0, 16, 64, 256];
const DEFAULT_SEED: u64 = 0xA0BA_2025;

// ---------------------------------------------------------------- harness

/// Runs `f` on every variant, one test at a time: wgpu's GL backend panics ("Could not
/// lock adapter context") when a thread waits > 6 s for the context while another holds
/// it for a cold llvmpipe compile (up to ~17 s here).
fn for_variants(kernel: &'static str, mut f: impl FnMut(&mut Report, &str, &Gpu)) {
    let _serial = common::gpu_lock();
    let mut rep = Report { kernel, checks: 0, failures: Vec::new(), worst: BTreeMap::new() };
    for (label, e) in engines() {
        let t0 = Instant::now();
        f(&mut rep, label, &e.gpu);
        println!("{kernel} {label}: {:.2} s", t0.elapsed().as_secs_f64());
    }
    rep.finish();
}

fn seed(test: &str, case: usize) -> u64 {
    case_seed(DEFAULT_SEED, test, case)
}

fn kv_round(gpu: &Gpu, x: f32) -> f32 {
    store_gamma(x, gpu.variant.f16)
}

fn step(pos: usize, kv_len: usize, n_tokens: usize, n_blocks: usize) -> StepUniform {
    StepUniform {
        pos: pos as u32,
        kv_len: kv_len as u32,
        n_tokens: n_tokens as u32,
        n_blocks: n_blocks as u32,
        ..Default::default()
    }
}

fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
}

/// Collects failures (one run shows every broken variant/case) and worst errors.
struct Report {
    kernel: &'static str,
    checks: usize,
    failures: Vec<String>,
    worst: BTreeMap<String, (f64, f64)>,
}

impl Report {
    fn observe(&mut self, what: &str, a: f64, b: f64) {
        let w = self.worst.entry(what.to_string()).or_insert((0.0, 0.0));
        *w = (w.0.max(a), w.1.max(b));
    }

    fn check(&mut self, what: &str, ctx: &str, got: &[f32], want: &[f32], tol: Tol) {
        self.checks += 1;
        let (nmse, abs) = ops::compare(got, want);
        let finite = got.iter().all(|x| x.is_finite());
        self.observe(what, nmse, abs);
        if got.len() != want.len() || !finite || !(nmse <= tol.nmse && abs <= tol.abs) {
            let nf = if finite { "" } else { ", NON-FINITE output" };
            self.failures.push(format!(
                "{what} [{ctx}]: nmse {nmse:.3e} (tol {:.0e}), max abs {abs:.3e} (tol {:.0e}){nf}",
                tol.nmse, tol.abs
            ));
        }
    }

    /// Memory the kernel must leave alone: bitwise equal.
    fn untouched<T: bytemuck::Pod>(&mut self, what: &str, ctx: &str, got: &[T], want: &[T]) {
        self.checks += 1;
        let sz = std::mem::size_of::<T>();
        let (g, w): (&[u8], &[u8]) = (bytemuck::cast_slice(got), bytemuck::cast_slice(want));
        let changed = g.chunks(sz).zip(w.chunks(sz)).filter(|(a, b)| a != b).count();
        if changed > 0 || got.len() != want.len() {
            self.failures
                .push(format!("{what} [{ctx}]: {changed} of {} elements that must stay untouched changed", want.len()));
        }
    }

    fn finish(self) {
        for (what, (a, b)) in &self.worst {
            println!("{} {what}: worst {a:.2e} / {b:.2e}", self.kernel);
        }
        let n = self.failures.len();
        let shown = self.failures[..n.min(40)].join("\n");
        assert!(
            n == 0,
            "{n} of {} {} checks failed (AURA_KERNEL_SEED={}):\n{shown}",
            self.checks,
            self.kernel,
            base_seed(DEFAULT_SEED)
        );
    }
}

// ---------------------------------------------------------------- layer constants

/// One layer's AURA constants, laid out as attention/layer.rs uploads them.
/// `offs`: K centroids, K boundaries, V centroids, V boundaries in `consts`.
struct Layer {
    hd: usize,
    sk: Vec<f32>,
    sv: Vec<f32>,
    cbk: &'static Codebook,
    cbv: &'static Codebook,
    consts: Vec<f32>,
    offs: [u32; 4],
}

/// K or V of a layer, as a kernel addresses it in the shared words/gammas/consts.
struct Side<'a> {
    name: &'static str,
    cb: &'static Codebook,
    signs: &'a [f32],
    rw: usize,
    word_off: usize,
    gamma_off: usize,
    s_off: u32,
    c_off: u32,
    b_off: u32,
}

impl Layer {
    fn new(layer: usize, hd: usize, kb: u32, vb: u32) -> Layer {
        let (sk, sv, cbk, cbv) = (signs(layer, KvKind::K, hd), signs(layer, KvKind::V, hd), codebook(kb), codebook(vb));
        let mut consts = [sk.as_slice(), &sv].concat();
        let mut offs = [0u32; 4];
        for (o, part) in offs.iter_mut().zip([&cbk.centroids, &cbk.boundaries, &cbv.centroids, &cbv.boundaries]) {
            *o = consts.len() as u32;
            consts.extend(part);
        }
        Layer { hd, sk, sv, cbk, cbv, consts, offs }
    }

    fn rw(&self) -> (usize, usize) {
        (row_words(self.hd, self.cbk.bits), row_words(self.hd, self.cbv.bits))
    }

    /// K and V for caches of `rows` = n_kv * capacity rows.
    fn sides(&self, rows: usize) -> [Side<'_>; 2] {
        let (rwk, rwv) = self.rw();
        let [ck, bk, cv, bv] = self.offs;
        [
            Side {
                name: "K",
                cb: self.cbk,
                signs: &self.sk,
                rw: rwk,
                word_off: 0,
                gamma_off: 0,
                s_off: 0,
                c_off: ck,
                b_off: bk,
            },
            Side {
                name: "V",
                cb: self.cbv,
                signs: &self.sv,
                rw: rwv,
                word_off: rows * rwk,
                gamma_off: rows,
                s_off: self.hd as u32,
                c_off: cv,
                b_off: bv,
            },
        ]
    }
}

/// Prefilled words (random) and γ (garbage) for K + V caches of `rows` rows.
fn garbage_cache(gpu: &Gpu, rng: &mut Rng, rows: usize, l: &Layer) -> (Vec<u32>, Vec<f32>) {
    let (rwk, rwv) = l.rw();
    let words = (0..rows * (rwk + rwv)).map(|_| rng.next_u64() as u32).collect();
    let gammas = (0..2 * rows).map(|_| kv_round(gpu, GARBAGE * (1.5 + rng.f32() * 0.5))).collect();
    (words, gammas)
}

// ---------------------------------------------------------------- kv_encode_aura

#[derive(Default)]
struct Flips {
    indices: usize,
    flips: usize,
    worst_dist: f32,
}

/// (K bits, V bits, head dim) of the encode and dequant tests: every K bits x head dim;
/// V bits differ from K bits and also take every value per head dim.
fn bit_cases() -> Vec<(u32, u32, usize)> {
    let ab = |i: usize| AURA_BITS[i % 4] as u32;
    HEAD_DIMS.iter().enumerate().flat_map(|(hi, &hd)| (0..4).map(move |bi| (ab(bi), ab(bi + hi + 1), hd))).collect()
}

#[test]
fn kv_encode() {
    for_variants("kv_encode_aura", |rep, label, gpu| {
        let mut fl = Flips::default();
        for (i, c) in bit_cases().into_iter().enumerate() {
            encode_case(rep, &mut fl, label, gpu, c, seed("encode", i));
        }
        let frac = fl.flips as f64 / fl.indices as f64;
        println!(
            "kv_encode_aura {label}: {} of {} indices differ (max {MAX_FLIP_FRACTION:e}), worst |u - boundary| {:.1e}",
            fl.flips, fl.indices, fl.worst_dist
        );
        rep.observe("index flip fraction / |u - boundary|", frac, fl.worst_dist as f64);
        if frac > MAX_FLIP_FRACTION {
            rep.failures
                .push(format!("{label}: {frac:.2e} of indices differ from the reference (max {MAX_FLIP_FRACTION:e})"));
        }
    });
}

fn encode_case(rep: &mut Report, fl: &mut Flips, label: &str, gpu: &Gpu, (kb, vb, hd): (u32, u32, usize), seed: u64) {
    let mut rng = Rng(seed);
    let l = Layer::new(rng.below(32), hd, kb, vb);
    let (n_kv, nt, pos) = (1 + rng.below(3), 2 + rng.below(3), rng.below(50));
    let cap = pos + nt + 1 + rng.below(20);
    let rows = n_kv * cap;
    let ctx = format!("{label} encode K{kb}/V{vb} hd={hd} n_kv={n_kv} T={nt} pos={pos} cap={cap} seed={seed:#x}");
    // Sources [T][n_kv][hd] per kind: row magnitudes from MAGS, one zero row.
    let src = |rng: &mut Rng| -> Vec<f32> {
        let zero = rng.below(nt * n_kv);
        (0..nt * n_kv)
            .flat_map(|r| {
                let m = MAGS[rng.below(3)];
                rng.vec(hd, if r == zero { 0.0 } else { m })
            })
            .collect()
    };
    let xs = [src(&mut rng), src(&mut rng)];
    // Odd seeds exercise key centering: K rows are encoded as x - R_pos mu[head] (pre-RoPE
    // mean, RoPE pairs adjacent or halves by seed).
    let center = seed & 1 == 1;
    let halves = seed & 2 == 2;
    let mu = if center { rng.vec(n_kv * hd, 1.0) } else { Vec::new() };
    let mu_off = l.consts.len() as u32;
    let consts = [l.consts.as_slice(), &mu].concat();
    let centered = |name: &str| center && name == "K";
    let table = ops::rope_table(cap, hd, 10000.0);
    let tb = upload(gpu, &table.concat());
    let (words0, gam0) = garbage_cache(gpu, &mut rng, rows, &l);
    let (wb, gb, cb) = (upload(gpu, &words0), upload_kv(gpu, &gam0), upload(gpu, &consts));
    let sides = l.sides(rows);
    // One dispatch encodes both: K rows (grid x < n_kv) from xs[0], V rows from xs[1].
    let params = sides.each_ref().map(|s| KvEncodeParams {
        n_kv_heads: n_kv as u32,
        capacity: cap as u32,
        bits: s.cb.bits,
        row_words: s.rw as u32,
        word_off: s.word_off as u32,
        gamma_off: s.gamma_off as u32,
        s_off: s.s_off,
        c_off: s.c_off,
        b_off: s.b_off,
        mu_off,
        has_mu: centered(s.name) as u32,
        halves: halves as u32,
    });
    let (srck, srcv) = (upload(gpu, &xs[0]), upload(gpu, &xs[1]));
    // The layer weights the encoder prefetches into L2, by 0 to 2 grid columns of
    // prefetch-only workgroups past its own: the outputs must not depend on them.
    let (pf, pf_cols) = (prefetch_buf(gpu, &mut rng), (seed % 3) as u32);
    let ctx = format!("{ctx} prefetch_cols={pf_cols}");
    run(
        gpu,
        &ctx,
        &kv_encode_key(gpu.variant, hd),
        params,
        &[&srck, &wb, &gb, &cb, &tb, &srcv, &pf],
        [2 * n_kv as u32 + pf_cols, nt as u32, 1],
        step(pos, pos + 1, nt, 0),
    );
    let (got_w, got_g): (Vec<u32>, Vec<f32>) = (read(gpu, &wb, words0.len()), read_kv(gpu, &gb, gam0.len()));
    let (mut want_w, mut want_g) = (words0, gam0);
    for (s, x) in sides.iter().zip(&xs) {
        for (t, h) in (0..nt).flat_map(|t| (0..n_kv).map(move |h| (t, h))) {
            let slot = h * cap + pos + t;
            let (w, g) = (s.word_off + slot * s.rw, s.gamma_off + slot);
            let rctx = format!("{ctx} {} token={t} head={h} centered={}", s.name, centered(s.name));
            let row = &x[(t * n_kv + h) * hd..][..hd];
            let row: Vec<f32> = if centered(s.name) {
                let kc = KeyCentering { mu: &mu[h * hd..][..hd], table: &table, halves };
                row.iter().zip(kc.rotated(pos + t)).map(|(a, b)| a - b).collect()
            } else {
                row.to_vec()
            };
            check_encoded(rep, fl, &rctx, &row, s, &got_w[w..w + s.rw], got_g[g], gpu.variant.f16);
            want_w[w..w + s.rw].copy_from_slice(&got_w[w..w + s.rw]);
            want_g[g] = got_g[g];
        }
    }
    // Everything but the written rows (of the right region) keeps its garbage.
    rep.untouched("encode words", &ctx, &got_w, &want_w);
    rep.untouched("encode gammas", &ctx, &got_g, &want_g);
}

/// One encoded row vs `encode_row`: indices (up to boundary flips) and γ.
fn check_encoded(
    rep: &mut Report,
    fl: &mut Flips,
    ctx: &str,
    x: &[f32],
    s: &Side,
    words: &[u32],
    gamma: f32,
    f16: bool,
) {
    let (cb, d) = (s.cb, x.len());
    let enc = encode_row(x, s.signs, cb, false);
    let (want, got) = (unpack(&enc.words, cb.bits, d), unpack(words, cb.bits, d));
    let norm = x.iter().fold(0f32, |a, v| a + v * v).sqrt();
    let scale = if norm > 0.0 { (d as f32).sqrt() / norm } else { 0.0 };
    let u: Vec<f32> = rotate(x, s.signs).iter().map(|y| y * scale).collect();
    fl.indices += d;
    let mut bad = Vec::new();
    for i in (0..d).filter(|&i| got[i] != want[i]) {
        let lo = got[i].min(want[i]) as usize;
        let dist = cb.boundaries.get(lo).map_or(f32::INFINITY, |b| (u[i] - b).abs());
        fl.flips += 1;
        fl.worst_dist = fl.worst_dist.max(dist);
        if got[i].abs_diff(want[i]) != 1 || !(dist <= FLIP_U_EPS) {
            bad.push(format!(
                "index {i} is {}, reference {} (u = {}, {dist:.2e} from the boundary)",
                got[i], want[i], u[i]
            ));
        }
    }
    rep.checks += 2;
    if !bad.is_empty() {
        rep.failures.push(format!("encode [{ctx}]: {} of {d} indices wrong, first: {}", bad.len(), bad[0]));
    }
    // γ of the indices the kernel chose (= the reference γ when no index flipped).
    let cnorm = got.iter().fold(0f32, |a, &i| a + cb.centroids[i as usize].powi(2)).sqrt();
    let g32 = if norm == 0.0 {
        0.0
    } else if got == want {
        enc.gamma
    } else {
        norm / cnorm
    };
    let want_g = store_gamma(g32, f16);
    let rel = (gamma - want_g).abs() / want_g.max(f32::MIN_POSITIVE);
    let (tol, what) =
        if f16 { (GAMMA_REL_F16, "gamma rel error (f16)") } else { (GAMMA_REL_F32, "gamma rel error (f32)") };
    rep.observe(what, rel as f64, 0.0);
    if !(rel <= tol) {
        rep.failures
            .push(format!("encode [{ctx}]: gamma {gamma:e}, reference {want_g:e} (rel {rel:.2e}, tol {tol:.0e})"));
    }
}

// ---------------------------------------------------------------- attn_decode_aura

/// One compressed-attention case; token t of the T-token step sees kv_len + t rows.
#[derive(Clone, Copy, Debug)]
struct AttnCase {
    kb: u32,
    vb: u32,
    block: u32,
    /// Split-K: the last block merges (MERGE), else an attn_merge dispatch follows.
    merge: bool,
    /// One query head per workgroup (else the whole GQA group).
    per_head: bool,
    /// The dispatch also encodes the new row (pos = kv_len - 1) from the raw k and v rows
    /// (ENC: an extra grid row of encoders; one-token steps only).
    encode: bool,
    hd: usize,
    group: usize,
    n_kv: usize,
    kv_len: usize,
    nt: usize,
    cap: usize,
    /// Key centering's score term through the fit where a block is one tile
    /// (`Options::aura_centering_fit`, `kernels::aura_centering_cx`); else every pair exact.
    fit: bool,
    /// Key centering's mean zero on the pairs the fit leaves exact, which the term then
    /// skips (`Options::aura_centering_slow_pairs`, `kernels::aura_centering_cz`).
    slow: bool,
}

/// A seeded sample: each path (single, each block) runs every kv_len once and compiles
/// one pipeline per head dim (two kv_lens each, one with T = 3 on two of them); the 12
/// pipelines take the 7 presets in a seeded order and the groups of ATTN_GROUPS. Split
/// cases alternate between the fused merge and the merge dispatch; every other pipeline
/// runs one query head per workgroup.
fn attn_cases() -> Vec<AttnCase> {
    let mut rng = Rng(seed("attn-shapes", 0));
    let mut presets = PRESETS;
    shuffle(&mut presets, &mut rng);
    let mut out = Vec::new();
    for (pi, &block) in BLOCKS.iter().enumerate() {
        let mut lens = KV_LENS;
        shuffle(&mut lens, &mut rng);
        let mut centered_n = 0;
        for (i, &kv_len) in lens.iter().enumerate() {
            let j = i / 2;
            let (kb, vb) = presets[(pi * 3 + j) % 7];
            let (hd, group, nt) = (HEAD_DIMS[j], ATTN_GROUPS[pi][j], if i % 3 == 0 { 3 } else { 1 });
            let (n_kv, cap) = (1 + rng.below(2), kv_len + nt + rng.below(100));
            let per_head = (j + pi) % 2 == 1;
            let merge = i % 2 == 0;
            // Key centering (odd seeds, as attn_decode draws them): the block's centered
            // cases alternate between the mean on every pair (the default) and on the slow
            // pairs only (opt-in; the uncentered cases take it too: no mean, no effect).
            let centered = seed("attn", out.len()) & 1 == 1;
            centered_n += centered as usize;
            let slow = !centered || centered_n % 2 == 0;
            out.push(AttnCase {
                kb,
                vb,
                block,
                merge,
                per_head,
                encode: false,
                hd,
                group,
                n_kv,
                kv_len,
                nt,
                cap,
                fit: true,
                slow,
            });
        }
    }
    out
}

#[test]
fn attn_cases_cover_every_axis() {
    let c = attn_cases();
    assert!(PRESETS.iter().all(|p| c.iter().any(|c| (c.kb, c.vb) == *p)), "presets");
    assert!(GROUPS.iter().all(|&g| c.iter().any(|c| c.group == g)), "groups");
    assert!([1, 3].iter().all(|&t| c.iter().any(|c| c.nt == t)), "token counts");
    for &b in &BLOCKS {
        assert!(HEAD_DIMS.iter().all(|&hd| c.iter().any(|c| c.block == b && c.hd == hd)), "block {b} x head dims");
        assert!(KV_LENS.iter().all(|&n| c.iter().any(|c| c.block == b && c.kv_len == n)), "block {b} x kv_lens");
        // Key centering (odd seeds, as attn_decode draws them) with the mean on the slow
        // pairs only and on every pair.
        for slow in [false, true] {
            let hit = c.iter().enumerate().any(|(i, c)| c.block == b && c.slow == slow && seed("attn", i) & 1 == 1);
            assert!(hit, "block {b}: no centered case with slow = {slow}");
        }
    }
}

#[test]
fn attn_decode() {
    for_variants("attn_decode_aura", |rep, label, gpu| {
        for (i, c) in attn_cases().iter().enumerate() {
            attn_case(rep, label, gpu, c, seed("attn", i));
        }
    });
}

/// Every query head and token gets its own output, so a merge/unrotate grid that leaves
/// workgroups on one head, or a wrong kv-head mapping, shows.
#[test]
fn attn_heads_are_distinct() {
    for_variants("attn_decode_aura-heads", |rep, label, gpu| {
        let cases = [(0u32, false, false), (64, false, false), (256, true, false), (32, true, true), (0, false, true)];
        for (i, (block, merge, per_head)) in cases.into_iter().enumerate() {
            let (hd, group, n_kv, kv_len, nt, cap) = (64, 4, 3, 300, 2, 700);
            let c = AttnCase {
                kb: 4,
                vb: 2,
                block,
                merge,
                per_head,
                encode: false,
                hd,
                group,
                n_kv,
                kv_len,
                nt,
                cap,
                fit: true,
                slow: false,
            };
            let want = attn_case(rep, label, gpu, &c, seed("attn-heads", i));
            assert_rows_distinct(&format!("{label} {c:?}"), &want, c.hd);
        }
    });
}

/// The fused encode (one-token steps): one extra workgroup per KV head encodes row
/// kv_len - 1 from the raw k and v rows and writes it, while attention takes it exact;
/// every path, both workgroup shapes, bit widths whose indices straddle words, the first
/// row of a cache, a row opening a new tile or block, key centering on and off; the fused
/// merge over enough blocks (40 with a group, 94 with one head per workgroup) for
/// merge_head's unrolled loop and its tail; 4-bit K and/or V rows with one head per
/// workgroup (decoded through the codebooks by index pair).
#[test]
fn attn_fused_encode() {
    // (block, merge, per_head, hd, group, n_kv, kb, vb, kv_len, centered, halves)
    let cases = [
        (0u32, false, true, 64, 3, 3, 4u32, 4u32, 1, true, false),
        (0, false, false, 64, 3, 2, 3, 2, 65, false, false),
        (64, true, false, 64, 3, 3, 4, 4, 2500, true, true),
        (16, true, true, 128, 4, 2, 8, 3, 1500, true, false),
        (16, false, true, 128, 4, 2, 8, 3, 33, true, false),
        (256, true, false, 64, 1, 2, 2, 8, 4097, false, false),
        (64, false, false, 256, 2, 2, 4, 4, 129, true, false),
        // One head per workgroup with 4-bit rows: the codebooks by index pair (K and V, V
        // only, K only), the fused merge (aura4v4's path at 4096) and single-pass.
        (64, true, true, 64, 3, 3, 4, 4, 2500, true, true),
        (16, true, true, 128, 4, 2, 8, 4, 700, true, false),
        (0, false, true, 64, 3, 2, 4, 2, 100, false, false),
        // ... and over several tiles (the later tiles' centering turn), key centering on.
        (0, false, true, 64, 3, 3, 4, 4, 200, true, false),
        (256, true, true, 64, 3, 3, 4, 4, 1100, true, true),
    ];
    // (The workgroup shape each case compiles: one head, or the GQA group.)
    assert!(cases.iter().all(|c| aura_encode_fits(c.3, if c.2 { 1 } else { c.4 }, c.6, c.7)));
    for_variants("attn_decode_aura-encode", |rep, label, gpu| {
        for (i, c) in cases.into_iter().enumerate() {
            let (block, merge, per_head, hd, group, n_kv, kb, vb, kv_len, centered, halves) = c;
            let sd = (seed("attn-encode", i) & !3) | centered as u64 | (halves as u64) << 1;
            let cap = kv_len + 1 + i * 7;
            let c = AttnCase {
                kb,
                vb,
                block,
                merge,
                per_head,
                encode: true,
                hd,
                group,
                n_kv,
                kv_len,
                nt: 1,
                cap,
                fit: true,
                slow: false,
            };
            attn_case(rep, label, gpu, &c, sd);
        }
    });
}

/// Key centering's fit (one-tile split-K blocks: the slow RoPE pairs through one polynomial
/// per query head) forced on and off, both against the exact reference: one head per
/// workgroup with the fused encode (aura4v4's path at 4096), the GQA group with and without
/// it (16384), both RoPE conventions, T = 2, blocks holding the own row and not; the fit
/// must take pairs at these head dims (CX < head_dim / 4).
#[test]
fn attn_centering_fit_on_and_off() {
    // (per_head, encode, hd, group, kb, vb, kv_len, nt, halves)
    let cases = [
        (true, true, 64, 3, 4u32, 4u32, 1100, 1, false),
        (false, true, 64, 3, 4, 4, 700, 1, true),
        (false, false, 128, 4, 8, 4, 300, 2, false),
        (true, false, 64, 3, 4, 2, 129, 2, true),
    ];
    for &(_, _, hd, ..) in &cases {
        assert!(aura_centering_cx(64, hd, THETA, true, true) < (hd / 4) as u32, "hd {hd}: the fit must take pairs");
    }
    assert_eq!(aura_centering_cx(64, 64, THETA, true, false), 16, "off: every pair exact");
    assert_eq!(aura_centering_cx(256, 64, THETA, true, true), 16, "blocks of several tiles: exact");
    // The slow-pairs-only mean: the pairs the fit leaves exact, none where it takes none.
    assert_eq!(aura_centering_cz(64, 100000.0, true, true), 5, "SmolLM2: pairs 0 .. 9");
    assert_eq!(aura_centering_cz(64, 100000.0, true, false), 0, "the mean on every pair");
    assert_eq!(aura_centering_cz(64, 1.0, true, true), 0, "no pair fits: the mean stays whole");
    for_variants("attn_decode_aura-centering-fit", |rep, label, gpu| {
        for (i, &(per_head, encode, hd, group, kb, vb, kv_len, nt, halves)) in cases.iter().enumerate() {
            let sd = (seed("attn-fit", i) & !3) | 1 | (halves as u64) << 1;
            let cap = kv_len + nt + 13 * i;
            for (fit, slow) in [(true, true), (true, false), (false, true), (false, false)] {
                let (block, merge, n_kv) = (64, false, 2);
                let c =
                    AttnCase { kb, vb, block, merge, per_head, encode, hd, group, n_kv, kv_len, nt, cap, fit, slow };
                attn_case(rep, label, gpu, &c, sd);
            }
        }
    });
}

/// G = 8 at head dim 256 leaves no room for the centering coefficients in workgroup memory
/// (`aura_ab_len` = 1): the kernel reads q and mu from memory instead. Centered seeds only,
/// the mean on every pair and on the slow pairs only.
#[test]
fn attn_centering_without_workgroup_coefficients() {
    assert_eq!(aura_ab_len(256, 8, 8, 8, false), 1, "the case must exercise the fallback");
    assert!(aura_ab_len(64, 3, 4, 4, true) > 1, "SmolLM2's shape keeps the coefficients in workgroup memory");
    for_variants("attn_decode_aura-ab-fallback", |rep, label, gpu| {
        let seeds: Vec<u64> = (0..8).map(|i| seed("attn-ab", i)).filter(|s| s & 1 == 1).take(2).collect();
        assert!(!seeds.is_empty());
        for (i, &sd) in seeds.iter().enumerate() {
            let block = [0u32, 64][i % 2];
            let (hd, group, n_kv, kv_len, nt, cap) = (256, 8, 1, 70, 1, 100);
            let (merge, per_head, encode) = (true, false, false);
            let c = AttnCase {
                kb: 8,
                vb: 4,
                block,
                merge,
                per_head,
                encode,
                hd,
                group,
                n_kv,
                kv_len,
                nt,
                cap,
                fit: true,
                slow: false,
            };
            // The mean on every pair (the default) and on the slow pairs only (opt-in).
            for slow in [false, true] {
                attn_case(rep, label, gpu, &AttnCase { slow, ..c }, sd);
            }
        }
    });
}

/// Encodes random rows with `encode_row` into packed caches (garbage past the last valid
/// row), runs attention (which rotates back) on the GPU and compares every (token, head) with
/// `attention_packed` on the same packed data, each token's own row exact from its raw k
/// and v rows (the cache's copy of it, a different random row or garbage, must not be
/// read). Returns the reference [T][n_heads][hd].
fn attn_case(rep: &mut Report, label: &str, gpu: &Gpu, c: &AttnCase, seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    let AttnCase { kb, vb, block, merge, per_head, encode, hd, group, n_kv, kv_len, nt, cap, fit, slow } = *c;
    assert!(!encode || nt == 1, "the fused encode runs one-token steps");
    let l = Layer::new(rng.below(32), hd, kb, vb);
    let (nh, rows) = (group * n_kv, n_kv * cap);
    // Rows the last token sees; the cache holds them all before the kernel runs, but for
    // the new one (kv_len - 1) when the kernel encodes it.
    let seen = kv_len + nt - 1;
    let filled = seen - encode as usize;
    let (words0, gam0) = garbage_cache(gpu, &mut rng, rows, &l);
    let (rwk, _) = l.rw();
    let mut caches = l.sides(rows).map(|s| {
        let mut pc = PackedCache::new(s.cb.bits, hd, cap, n_kv);
        pc.words.copy_from_slice(&words0[s.word_off..][..rows * s.rw]);
        pc.gamma.copy_from_slice(&gam0[s.gamma_off..][..rows]);
        (pc, s.signs, s.cb)
    });
    for (pc, signs, cb) in caches.iter_mut() {
        for (h, p) in (0..n_kv).flat_map(|h| (0..filled).map(move |p| (h, p))) {
            let m = MAGS[rng.below(3)];
            pc.write(h, p, &encode_row(&rng.vec(hd, m), signs, cb, gpu.variant.f16));
        }
    }
    let q = rng.vec(nt * nh * hd, 2.0);
    let scale = 1.0 / (hd as f32).sqrt();
    let (max_blocks, n_blocks) =
        if block == 0 { (1, 0) } else { (cap.div_ceil(block as usize), seen.div_ceil(block as usize)) };
    let path = match (block, merge) {
        (0, _) => "single".to_string(),
        (b, true) => format!("split{b}+merge"),
        (b, false) => format!("split{b}"),
    };
    let ctx = format!("{label} {path} n_blocks={n_blocks}/{max_blocks} K{kb}/V{vb} hd={hd} heads={nh}/{n_kv} kv_len={kv_len} T={nt} cap={cap} per_head={per_head} encode={encode} seed={seed:#x} centered={}", seed & 1 == 1);
    let words0 = [caches[0].0.words.as_slice(), &caches[1].0.words].concat();
    let mut gammas0 = [caches[0].0.gamma.as_slice(), &caches[1].0.gamma].concat();
    // No query reads the last token's own row through the cache: an infinite gamma there
    // turns any use of it that is not a select (a weight times zero) into NaN.
    for h in 0..n_kv {
        for side in [0, rows] {
            gammas0[side + h * cap + seen - 1] = f32::INFINITY;
        }
    }
    // Odd seeds: key centering (pre-RoPE means per KV head; RoPE pairs by seed).
    let (center, halves) = (seed & 1 == 1, seed & 2 == 2);
    let mut mu = if center { rng.vec(n_kv * hd, 2.0) } else { Vec::new() };
    // The slow-pairs-only mean: zero on the fastest pairs, which the kernel (CZ) skips.
    let cz = aura_centering_cz(hd, THETA, center, slow);
    aura::kv::centering::keep_slow_pairs(&mut mu, hd, cz as usize, halves);
    let mu_off = l.consts.len() as u32;
    let consts = [l.consts.as_slice(), &mu].concat();
    let table = ops::rope_table(cap, hd, THETA);
    // As a session binds it: the transposed offset rows and the centering fit after the table.
    let tb = upload(gpu, &ops::rope_table_gpu(cap, hd, THETA, WG_AURA as usize).concat());
    // q rows, then the step's raw k (after RoPE) and v rows [T][n_kv][hd] at odd offsets:
    // each token's own row, which attention takes exact (and the fused encode encodes).
    let kv_rows = [0, 1].map(|_| {
        (0..nt * n_kv)
            .flat_map(|_| {
                let m = MAGS[rng.below(3)];
                rng.vec(hd, m)
            })
            .collect::<Vec<f32>>()
    });
    let (k_off, v_off) = (q.len() + 3, q.len() + 3 + nt * n_kv * hd + 5);
    let mut qkv = q.clone();
    qkv.extend([0.0; 3].iter().chain(&kv_rows[0]).chain(&[0.0; 5]).chain(&kv_rows[1]));
    let (qb, wb, gb, cb) = (upload(gpu, &qkv), upload(gpu, &words0), upload_kv(gpu, &gammas0), upload(gpu, &consts));
    // The layer weights attention prefetches into L2, by 0 to 2 grid columns of
    // prefetch-only workgroups: the outputs must not depend on them.
    let (pf, pf_cols) = (prefetch_buf(gpu, &mut rng), (seed % 3) as u32);
    let ctx = format!("{ctx} prefetch_cols={pf_cols} fit={fit} cz={cz}");
    // Output rows, then stale partials (a merge reading past n_blocks picks these up).
    let att = upload(gpu, &vec![GARBAGE; nt * nh * hd * (1 + max_blocks)]);
    let (pml_host, n_ml) = partial_ml(nt * nh * max_blocks, nt * nh, GARBAGE);
    let pml = upload(gpu, &pml_host);
    let po_off = (nt * nh * hd / 4) as u32;
    let [ck, _, cv, _] = l.offs;
    let p = AttnAuraParams {
        n_heads: nh as u32,
        capacity: cap as u32,
        max_blocks: max_blocks as u32,
        scale,
        v_word_off: (rows * rwk) as u32,
        v_gamma_off: rows as u32,
        ck_off: ck,
        cv_off: cv,
        mu_off,
        has_mu: center as u32,
        halves: halves as u32,
        po_off,
        group: group as u32,
        k_off: k_off as u32,
        v_off: v_off as u32,
        bk_off: l.offs[1],
        bv_off: l.offs[3],
        _pad: [0; 3],
    };
    let st = step(kv_len - 1, kv_len, nt, n_blocks);
    let (v, (nh32, nt32)) = (gpu.variant, (nh as u32, nt as u32));
    let gw = if per_head { 1 } else { group };
    let cx = aura_centering_cx(block, hd, THETA, center, fit);
    let key = attn_aura_key(v, hd, gw, block, merge, kb, vb, encode, cx, cz);
    let bufs = [&qb, &wb, &gb, &cb, &att, &pml, &tb, &pf];
    // The fused encode's encoders (one per KV head) take a grid row after the blocks'.
    let grid_y = (n_blocks as u32).max(1) + encode as u32;
    run(gpu, &ctx, &key, p, &bufs, [(nh / gw) as u32 + pf_cols, grid_y, nt32], st);
    if block > 0 && !merge {
        let mp = MergeParams { n_heads: nh32, max_blocks: max_blocks as u32, po_off, _pad: 0 };
        // With the same prefetch columns (the merge carries the prefetch in deep contexts).
        run(gpu, &ctx, &merge_key(v, hd, true), mp, &[&pml, &att, &cb, &pf], [nh32 + pf_cols, nt32, 1], st);
    }
    // The fused merge's counters are back at zero for the next dispatch.
    let counters = read::<u32>(gpu, &pml, pml_host.len());
    rep.untouched("merge counters", &ctx, &counters[n_ml..], &vec![0u32; nt * nh]);
    // The cache: unchanged, but for the new row when the kernel encodes, which must match
    // encode_row (up to boundary flips, see check_encoded).
    let (got_w, got_g): (Vec<u32>, Vec<f32>) = (read(gpu, &wb, words0.len()), read_kv(gpu, &gb, gammas0.len()));
    let (mut want_w, mut want_g) = (words0.clone(), gammas0.clone());
    if encode {
        let mut fl = Flips::default();
        let pos = kv_len - 1;
        for (si, s) in l.sides(rows).iter().enumerate() {
            for h in 0..n_kv {
                let slot = h * cap + pos;
                let (w, g) = (s.word_off + slot * s.rw, s.gamma_off + slot);
                let row = &kv_rows[si][h * hd..][..hd]; // (T = 1)
                let row: Vec<f32> = if center && si == 0 {
                    let kcent = KeyCentering { mu: &mu[h * hd..][..hd], table: &table, halves };
                    row.iter().zip(kcent.rotated(pos)).map(|(a, b)| a - b).collect()
                } else {
                    row.to_vec()
                };
                let rctx = format!("{ctx} new {} row head={h}", s.name);
                check_encoded(rep, &mut fl, &rctx, &row, s, &got_w[w..w + s.rw], got_g[g], gpu.variant.f16);
                want_w[w..w + s.rw].copy_from_slice(&got_w[w..w + s.rw]);
                want_g[g] = got_g[g];
            }
        }
        if fl.flips as f64 > MAX_FLIP_FRACTION * fl.indices as f64 + 1.0 {
            rep.failures
                .push(format!("{ctx}: {} of {} new-row indices differ from the reference", fl.flips, fl.indices));
        }
    }
    rep.untouched("attention's cache words", &ctx, &got_w, &want_w);
    rep.untouched("attention's cache gammas", &ctx, &got_g, &want_g);
    let [(kc, ..), (vc, ..)] = &caches;
    let got: Vec<f32> = read(gpu, &att, nt * nh * hd);
    let want: Vec<f32> = (0..nt * nh)
        .flat_map(|r| {
            let kvh = (r % nh) / group;
            let kcent = center.then(|| KeyCentering { mu: &mu[kvh * hd..][..hd], table: &table, halves });
            let own_row = |kind: usize| &kv_rows[kind][((r / nh) * n_kv + kvh) * hd..][..hd];
            attention_packed(
                &q[r * hd..][..hd],
                kc,
                vc,
                (r % nh) / group,
                kv_len + r / nh,
                &l.sk,
                &l.sv,
                l.cbk,
                l.cbv,
                scale,
                kcent.as_ref(),
                Some((own_row(0), own_row(1))),
            )
        })
        .collect();
    for r in 0..nt * nh {
        let rg = r * hd..(r + 1) * hd;
        rep.check(
            &format!("{path} hd={hd}"),
            &format!("{ctx} token={} head={}", r / nh, r % nh),
            &got[rg.clone()],
            &want[rg],
            ATTN_TOL,
        );
    }
    if block > 0 && !merge {
        // The same partials through the merge with the output projection folded in (which
        // rotates each head's row back before the projection).
        let r = oproj_case(
            gpu,
            &ctx,
            &mut rng,
            (&counters, n_ml),
            (&att, po_off, max_blocks),
            (&cb, true),
            (&pf, pf_cols),
            (nh, hd, nt),
            st,
            &want,
        );
        rep.check("split+oproj", &r.ctx, &r.got, &r.want, OPROJ_TOL);
        rep.untouched("oproj counters", &r.ctx, &r.counters, &vec![0u32; r.counters.len()]);
    }
    want
}

// ---------------------------------------------------------------- kv_dequant_aura

#[test]
fn kv_dequant() {
    for_variants("kv_dequant_aura", |rep, label, gpu| {
        for (i, c) in bit_cases().into_iter().enumerate() {
            dequant_case(rep, label, gpu, c, seed("dequant", i));
        }
    });
}

/// Random packed rows (any u32 is a valid row: d·b is a multiple of 32) and γ; the mirror
/// rows pos..pos+T of both kinds vs `decode_row`, the rest of the mirror untouched.
fn dequant_case(rep: &mut Report, label: &str, gpu: &Gpu, (kb, vb, hd): (u32, u32, usize), seed: u64) {
    let mut rng = Rng(seed);
    let l = Layer::new(rng.below(32), hd, kb, vb);
    let (n_kv, nt, pos) = (1 + rng.below(3), 1 + rng.below(3), rng.below(50));
    let cap = pos + nt + 1 + rng.below(20);
    let rows = n_kv * cap;
    let ctx = format!(
        "{label} dequant K{kb}/V{vb} hd={hd} n_kv={n_kv} T={nt} pos={pos} cap={cap} seed={seed:#x} centered={}",
        seed & 1 == 1
    );
    let (words, _) = garbage_cache(gpu, &mut rng, rows, &l);
    let gam: Vec<f32> = (0..2 * rows).map(|_| kv_round(gpu, 0.3 + 0.25 * rng.f32())).collect();
    // Odd seeds: K rows get R_pos mu added back (key centering; RoPE pairs by seed).
    let (center, halves) = (seed & 1 == 1, seed & 2 == 2);
    let mu = if center { rng.vec(n_kv * hd, 1.0) } else { Vec::new() };
    let mu_off = l.consts.len() as u32;
    let consts = [l.consts.as_slice(), &mu].concat();
    let table = ops::rope_table(cap, hd, 10000.0);
    let (wb, gb, cb, tb) =
        (upload(gpu, &words), upload_kv(gpu, &gam), upload(gpu, &consts), upload(gpu, &table.concat()));
    let tol = if gpu.variant.f16 { DEQUANT_F16_TOL } else { DEQUANT_TOL };
    for s in l.sides(rows) {
        let dense0: Vec<f32> = (0..rows * hd).map(|_| kv_round(gpu, GARBAGE * rng.f32())).collect();
        let db = upload_kv(gpu, &dense0);
        let (n_kv_heads, capacity, bits, row_words) = (n_kv as u32, cap as u32, s.cb.bits, s.rw as u32);
        let (word_off, gamma_off, s_off, c_off) = (s.word_off as u32, s.gamma_off as u32, s.s_off, s.c_off);
        let has_mu = (center && s.name == "K") as u32;
        let halves = halves as u32;
        let p = KvDequantParams {
            n_kv_heads,
            capacity,
            bits,
            row_words,
            word_off,
            gamma_off,
            s_off,
            c_off,
            mu_off,
            has_mu,
            halves,
            _pad: 0,
        };
        run(
            gpu,
            &ctx,
            &kv_dequant_key(gpu.variant, hd),
            p,
            &[&wb, &gb, &cb, &db, &tb],
            [n_kv as u32, nt as u32, 1],
            step(pos, pos + 1, nt, 0),
        );
        let got = read_kv(gpu, &db, rows * hd);
        let mut rest = dense0.clone();
        for (t, h) in (0..nt).flat_map(|t| (0..n_kv).map(move |h| (t, h))) {
            let slot = h * cap + pos + t;
            let w = &words[s.word_off + slot * s.rw..][..s.rw];
            let mut row = decode_row(w, gam[s.gamma_off + slot], s.signs, s.cb, hd);
            if has_mu == 1 {
                let kc = KeyCentering { mu: &mu[h * hd..][..hd], table: &table, halves: halves == 1 };
                row.iter_mut().zip(kc.rotated(pos + t)).for_each(|(x, m)| *x += m);
            }
            let want: Vec<f32> = row.iter().map(|&x| kv_round(gpu, x)).collect();
            let r = slot * hd..(slot + 1) * hd;
            rep.check(
                &format!("{} hd={hd}", s.name),
                &format!("{ctx} {} token={t} head={h}", s.name),
                &got[r.clone()],
                &want,
                tol,
            );
            rest[r.clone()].copy_from_slice(&got[r]);
        }
        rep.untouched("dequant mirror", &format!("{ctx} {}", s.name), &got, &rest);
    }
}
