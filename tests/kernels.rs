//! Per-kernel GPU tests against the CPU reference (`aura::reference`) on seeded random
//! shapes, for every variant (backend x f16 x subgroups) of every test backend. Each
//! kernel runs decode steps (1 token) and a few multi-token (prefill chunk) steps.
//!
//! Every failure names the variant, the shape and the case seed. The cases derive from
//! a base seed, `AURA_KERNEL_SEED` (default below), so another run can explore other
//! data. `--nocapture` prints the worst error observed per kernel and weight type.
mod common;

use std::collections::BTreeMap;

use aura::gpu::registry::StepUniform;
use aura::gpu::Gpu;
use aura::kernels::*;
use aura::model::config::RopeStyle;
use aura::model::tensor::WeightType;
use aura::reference::{ops, quant};
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

// The GPU dequantizes exactly as `reference::quant::dequantize`, so a kernel differs
// from its CPU twin only by f32 summation order, FMA contraction and exp/sqrt ulps; any
// indexing or decoding bug gives NMSE >= 1e-4. In brackets: the worst error seen over
// 130 seeds on lavapipe + llvmpipe, every variant (nmse, max abs).
/// Matvec and matmul: [7e-13, 8e-5]; |y| reaches ~40 at K = 1536.
const MATVEC_TOL: Tol = Tol { nmse: 1e-10, abs: 5e-4 };
/// [0, 0] A dequantized copy; tolerance for GPUs that fuse Q4_1's d*q+m.
const EMBED_TOL: Tol = Tol { nmse: 1e-13, abs: 1e-6 };
/// [5e-13, 2e-6] outputs up to ~8; inverseSqrt may be 2 ulp off.
const RMSNORM_TOL: Tol = Tol { nmse: 1e-10, abs: 5e-5 };
/// [0, 0] q and k rotated in f32 with the host table, as the reference does.
const ROPE_TOL: Tol = Tol { nmse: 1e-12, abs: 1e-6 };
/// [0, 0] k/v rounded into an f16 cache. A GPU that fuses the rotation may land on the
/// other side of an f16 rounding boundary: one f16 ulp, 2^-9 for |k| < 2.9.
const ROPE_F16_CACHE_TOL: Tol = Tol { nmse: 1e-9, abs: 2e-3 };
/// [4e-9, 1e-3] matvec_norm's k/v (|y| < 4, f32 error ~1e-6 vs the reference) rounded into
/// an f16 cache: values near a rounding boundary flip by one f16 ulp (2^-9 at |y| < 4);
/// one flip in 8 values of 2^-11 relative error would give ~6e-8.
const NORM_F16_CACHE_TOL: Tol = Tol { nmse: 1e-7, abs: 4e-3 };
/// [4e-12, 4e-7] online softmax vs the reference's two-pass softmax, over the same
/// (f16-rounded when the variant stores f16) cache.
const ATTN_TOL: Tol = Tol { nmse: 1e-10, abs: 1e-5 };
/// [1e-12, 1e-5] the merge with the output projection folded in, against the reference
/// attention rows times Wo: the attention's error times Wo plus the projection's summation
/// order.
const OPROJ_TOL: Tol = Tol { nmse: 1e-10, abs: 1e-4 };
/// matvec_glu: [1e-12, 3.3e-3]; act = silu(g) * u is a product of two projections and
/// reaches ~500 at K = 1536, so the abs error scales with it (relative ~1e-5).
const GLU_TOL: Tol = Tol { nmse: 1e-10, abs: 2e-2 };
/// [2e-13, 2e-6] outputs up to 16; exp() may be ~20 ulp off at |g| = 8.
const SILU_TOL: Tol = Tol { nmse: 1e-10, abs: 1e-4 };

/// Outputs shorter than this are judged on max abs error alone: the NMSE of one value
/// is its squared relative error, which cancellation makes arbitrary (a 1-row matvec
/// whose y lands near 0: seen 2e-7 with an abs error of 5e-6 at |y| = 0.01).
const NMSE_MIN_LEN: usize = 8;

/// Written into memory a kernel must not read (cache rows past kv_len, stale split-K
/// partials) or must overwrite: large enough to dominate any result it leaks into.
const GARBAGE: f32 = 1.0e4;
const DEFAULT_SEED: u64 = 0xA0BA_2025;

// ---------------------------------------------------------------- harness helpers

/// Runs `f` on every variant engine, collecting one report for `kernel`.
fn for_variants(kernel: &'static str, mut f: impl FnMut(&mut Report, &str, &Gpu)) {
    let _serial = common::gpu_lock();
    let mut rep = Report::new(kernel);
    for (label, e) in engines() {
        f(&mut rep, label, &e.gpu);
    }
    rep.finish();
}

/// What the variant's KV cache holds for `v`.
fn kv_round(gpu: &Gpu, v: &[f32]) -> Vec<f32> {
    if gpu.variant.f16 {
        v.iter().map(|x| ops::round_f16(*x)).collect()
    } else {
        v.to_vec()
    }
}

fn seed(kernel: &str, case: usize) -> u64 {
    case_seed(DEFAULT_SEED, kernel, case)
}

/// Collects failures (so one run shows every broken variant/shape) and worst errors.
struct Report {
    kernel: &'static str,
    checks: usize,
    failures: Vec<String>,
    worst: BTreeMap<String, (f64, f64)>,
}

impl Report {
    fn new(kernel: &'static str) -> Report {
        Report { kernel, checks: 0, failures: Vec::new(), worst: BTreeMap::new() }
    }

    /// `got` vs `want` within `tol`; `what` keys the worst-error summary.
    fn check(&mut self, what: &str, ctx: &str, got: &[f32], want: &[f32], tol: Tol) {
        self.checks += 1;
        let (nmse, abs) = ops::compare(got, want);
        let (finite, judge_nmse) = (got.iter().all(|x| x.is_finite()), want.len() >= NMSE_MIN_LEN);
        let w = self.worst.entry(what.to_string()).or_insert((0.0, 0.0));
        *w = (if judge_nmse { w.0.max(nmse) } else { w.0 }, w.1.max(abs));
        let within = (!judge_nmse || nmse <= tol.nmse) && abs <= tol.abs; // false for NaN
        if got.len() != want.len() || !finite || !within {
            let (nf, (lg, lw)) = (if finite { "" } else { ", NON-FINITE output" }, (got.len(), want.len()));
            let tols = format!("(tol {:.0e}), max abs {abs:.3e} (tol {:.0e}), len {lg}/{lw}{nf}", tol.nmse, tol.abs);
            self.failures.push(format!("{what} [{ctx}]: nmse {nmse:.3e} {tols}"));
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
        for (what, (nmse, abs)) in &self.worst {
            println!("{} {what}: worst nmse {nmse:.2e}, worst max abs {abs:.2e}", self.kernel);
        }
        let (n, shown) = (self.failures.len(), self.failures[..self.failures.len().min(40)].join("\n"));
        let seed = base_seed(DEFAULT_SEED);
        assert!(n == 0, "{n} of {} {} checks failed (AURA_KERNEL_SEED={seed}):\n{shown}", self.checks, self.kernel);
    }
}

/// A step of `n_tokens` tokens, the first at `pos` (attending to pos + 1 rows).
fn step(pos: usize, n_tokens: usize) -> StepUniform {
    StepUniform { pos: pos as u32, kv_len: pos as u32 + 1, n_tokens: n_tokens as u32, ..Default::default() }
}

/// (elements where `keep(i)`, the others), in order.
fn partition(v: &[f32], keep: impl Fn(usize) -> bool) -> (Vec<f32>, Vec<f32>) {
    let (a, b): (Vec<_>, Vec<_>) = v.iter().enumerate().partition(|(i, _)| keep(*i));
    (a.into_iter().map(|(_, x)| *x).collect(), b.into_iter().map(|(_, x)| *x).collect())
}

fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
}

// ---------------------------------------------------------------- grid

#[test]
fn grid_folds_into_y_and_covers_every_workgroup() {
    let maxes = [1u32, 2, 3, 7, 64, 65535];
    let ns = (0..3000u32).chain([65535, 65536, 65537, 1 << 20, 65535 * 65535]);
    for n in ns {
        for &max in &maxes {
            if n as u64 > max as u64 * max as u64 {
                continue; // beyond a 2-D grid
            }
            let [x, y, z] = grid(n, max);
            let ctx = format!("grid({n}, {max}) = {:?}", [x, y, z]);
            assert!(x >= 1 && y >= 1 && z == 1, "{ctx}: empty dimension");
            assert!(x <= max && y <= max, "{ctx}: dimension over the limit");
            assert!(x as u64 * y as u64 >= n as u64, "{ctx}: covers fewer than n workgroups");
            assert!((x as u64 * y as u64) < n.max(1) as u64 + y as u64, "{ctx}: more than one partial row of waste");
            if n <= max {
                assert_eq!([x, y], [n.max(1), 1], "{ctx}: should not fold");
            }
        }
    }
}

// ---------------------------------------------------------------- matvec, matmul

const MV_ROWS: [usize; 4] = [1, 5, 67, 258];
const MV_K: [usize; 4] = [32, 96, 576, 1536];

/// How a projection case is dispatched. Output rows of token t land at
/// y[(slot + t) * out_stride ..][.. rows], out_stride = rows + stride_pad. `fold`:
/// spread the row groups over the 2-D grid of `grid(n, 3)` (matvec) / `grid(n, 2)`
/// (matmul), with spare workgroups, as a small per-dimension limit would.
#[derive(Clone, Copy, Debug)]
struct MvMode {
    acc: bool,
    slot: u32,
    stride_pad: usize,
    n_tokens: usize,
    fold: bool,
}

const MV_MODES: [MvMode; 5] = [
    // One token: plain overwrite; LM-head placement (logits row 2, out_stride = vocab); folded grid.
    MvMode { acc: false, slot: 0, stride_pad: 0, n_tokens: 1, fold: false },
    MvMode { acc: true, slot: 2, stride_pad: 0, n_tokens: 1, fold: false },
    MvMode { acc: false, slot: 1, stride_pad: 5, n_tokens: 1, fold: true },
    // Token chunks: a partial last token tile; fewer tokens than one tile.
    MvMode { acc: true, slot: 1, stride_pad: 3, n_tokens: 11, fold: false },
    MvMode { acc: false, slot: 0, stride_pad: 0, n_tokens: 3, fold: true },
];

/// The projection kernels as the session builds them: the decode matvec (4 rows per
/// workgroup, TT = 1, a token per grid z) and the two prefill kernels: the tiled matvec
/// (TT = PREFILL_TOKEN_TILE tokens per workgroup, GPUs) and the matmul (a row per thread,
/// PREFILL_TOKEN_TILE tokens per thread, CPU adapters).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Proj {
    Matvec,
    /// The matvec with PREFILL_TOKEN_TILE tokens per workgroup: the GPU prefill kernel.
    MatvecTiled,
    Matmul,
}

#[test]
fn matvec() {
    proj_test(Proj::Matvec);
}
#[test]
fn matmul() {
    proj_test(Proj::Matmul);
}
#[test]
fn matvec_tiled() {
    proj_test(Proj::MatvecTiled);
}

fn proj_test(kind: Proj) {
    let name = match kind {
        Proj::Matvec => "matvec",
        Proj::MatvecTiled => "matvec_tiled",
        Proj::Matmul => "matmul",
    };
    for_variants(name, |rep, label, gpu| {
        for (ti, &ty) in WeightType::ALL.iter().enumerate() {
            // Rotating rows against K gives every (rows, K) pair per variant.
            for (ki, &k) in MV_K.iter().enumerate() {
                let rows = MV_ROWS[(ti + ki) % MV_ROWS.len()];
                for (mi, &mode) in MV_MODES.iter().enumerate() {
                    let case = (ti * MV_K.len() + ki) * MV_MODES.len() + mi;
                    proj_case(rep, (label, gpu, kind), ty, rows, k, mode, seed(name, case));
                }
            }
        }
    });
}

#[allow(clippy::too_many_arguments)]
fn proj_case(
    rep: &mut Report,
    (label, gpu, kind): (&str, &Gpu, Proj),
    ty: WeightType,
    rows: usize,
    k: usize,
    m: MvMode,
    seed: u64,
) {
    let mut rng = Rng(seed);
    // The matrix sits after `base` other rows of the buffer (stacked matrices: row_base).
    let base = [0, 3, 8][rng.below(3)];
    let wq = quant::quantize(ty, &rng.vec((base + rows) * k, 1.0));
    let w = quant::dequantize(ty, &wq, (base + rows) * k)[base * k..].to_vec();
    let x = rng.vec(m.n_tokens * k, 1.0);
    let stride = rows + m.stride_pad;
    let y0 = rng.vec((m.slot as usize + m.n_tokens) * stride + 3, 4.0);
    let (key, rows_per_group, fold_max, tt) = match kind {
        Proj::Matvec => (matvec_key(gpu.variant, ty, k, wg_rows(rows, seed), 1), MATVEC_ROWS, 3, 1),
        Proj::MatvecTiled => (
            matvec_key(gpu.variant, ty, k, wg_rows(rows, seed), PREFILL_TOKEN_TILE),
            MATVEC_ROWS,
            3,
            PREFILL_TOKEN_TILE,
        ),
        Proj::Matmul => (matmul_key(gpu.variant, ty, k, PREFILL_TOKEN_TILE), WG_ROWS, 2, PREFILL_TOKEN_TILE),
    };
    let n = (rows as u32).div_ceil(rows_per_group);
    let mut groups = grid(n, if m.fold { fold_max } else { gpu.caps.max_workgroups_per_dim });
    groups[2] = (m.n_tokens as u32).div_ceil(tt);
    let ctx = format!(
        "{label} {kind:?} {} rows={rows} row_base={base} k={k} {m:?} groups={groups:?} seed={seed:#x}",
        ty.name()
    );
    let (wb, xb, yb) = (upload(gpu, &wq), upload(gpu, &x), upload(gpu, &y0));
    let params =
        MatvecParams { rows: rows as u32, accumulate: m.acc as u32, out_stride: stride as u32, row_base: base as u32 };
    let st = StepUniform { slot: m.slot, ..step(0, m.n_tokens) };
    let pf = prefetch_buf(gpu, &mut rng);
    let res: &[&wgpu::Buffer] = if kind == Proj::Matmul { &[&wb, &xb, &yb] } else { &[&wb, &xb, &yb, &pf] };
    run(gpu, &ctx, &key, params, res, groups, st);
    let got = read::<f32>(gpu, &yb, y0.len());
    let mut want = y0.clone();
    let mut written = vec![false; y0.len()];
    for t in 0..m.n_tokens {
        let o = (m.slot as usize + t) * stride;
        for (r, v) in ops::matvec(&w, &x[t * k..][..k]).into_iter().enumerate() {
            want[o + r] = if m.acc { y0[o + r] + v } else { v };
            written[o + r] = true;
        }
    }
    let (got_w, got_rest) = partition(&got, |i| written[i]);
    let (want_w, want_rest) = partition(&want, |i| written[i]);
    rep.check(ty.name(), &ctx, &got_w, &want_w, MATVEC_TOL);
    rep.untouched(ty.name(), &format!("{ctx}, y outside the written rows"), &got_rest, &want_rest);
}

/// The row count the decode mat-vec keys choose their workgroup size from
/// (`matvec_wg`): the case's own or, for every other seed, a tall matrix's, so each
/// workgroup size runs on the small test shapes too.
fn wg_rows(rows: usize, seed: u64) -> usize {
    if seed & 1 == 0 {
        rows
    } else {
        1 << 14
    }
}

// ---------------------------------------------------------------- matvec_norm, matvec_glu

/// Stacked row counts of the fused decode projections: (y0, y1, y2) rows for matvec_norm
/// (q | k | v as the engine stacks them; boundaries inside a workgroup's 4 rows; y1 = y2 = 0
/// is the LM head).
const NORM_SPLITS: [(usize, usize, usize); 4] = [(576, 192, 192), (7, 5, 9), (67, 0, 0), (2, 8, 1)];
const GLU_FFN: [usize; 3] = [1, 37, 1536];

/// The norm weight, x rows [slots][k] and the step (slot, token count): the kernels read
/// token t at slot + t; the other slots hold other tokens.
fn fused_inputs(rng: &mut Rng, k: usize) -> (Vec<f32>, Vec<f32>, u32, usize) {
    let (slot, nt) = (rng.below(3) as u32, 1 + rng.below(2));
    let nw: Vec<f32> = (0..k).map(|_| 0.5 + rng.f32()).collect();
    let x = rng.vec((slot as usize + nt + 1) * k, 2.0);
    (nw, x, slot, nt)
}

#[test]
fn matvec_norm() {
    for_variants("matvec_norm", |rep, label, gpu| {
        for (ti, &ty) in WeightType::ALL.iter().enumerate() {
            for (ki, &k) in MV_K.iter().enumerate() {
                let case = ti * MV_K.len() + ki;
                let (n0, n1, n2) = NORM_SPLITS[case % NORM_SPLITS.len()];
                let seed = seed("matvec_norm", case);
                let mut rng = Rng(seed);
                let rows = n0 + n1 + n2;
                let wq = quant::quantize(ty, &rng.vec(rows * k, 1.0));
                let w = quant::dequantize(ty, &wq, rows * k);
                let (nw, x, slot, nt) = fused_inputs(&mut rng, k);
                let eps = 1e-5;
                let strides = [n0 + 1, n1.max(1) + 2, n2.max(1)];
                let ys: Vec<Vec<f32>> =
                    strides.iter().map(|s| rng.vec((slot as usize + nt) * s + 3, GARBAGE)).collect();
                let ctx = format!("{label} {} rows={n0}+{n1}+{n2} k={k} slot={slot} T={nt} seed={seed:#x}", ty.name());
                let bufs: Vec<_> = ys.iter().map(|y| upload(gpu, y)).collect();
                let (wb, xb, nb) = (upload(gpu, &wq), upload(gpu, &x), upload(gpu, &nw));
                let p = MatvecNormParams {
                    rows: rows as u32,
                    n0: n0 as u32,
                    n1: (n0 + n1) as u32,
                    eps,
                    stride0: strides[0] as u32,
                    stride1: strides[1] as u32,
                    stride2: strides[2] as u32,
                    capacity: 0,
                };
                let mut groups =
                    grid((rows as u32).div_ceil(MATVEC_ROWS), if case.is_multiple_of(3) { 3 } else { 65535 });
                groups[2] = nt as u32;
                let st = StepUniform { slot, ..step(0, nt) };
                let key = matvec_norm_key(gpu.variant, ty, k, wg_rows(rows, seed), 0, false);
                // Without RoPE the table is unused: a placeholder.
                let spare = upload(gpu, &[GARBAGE; 2]);
                let pf = prefetch_buf(gpu, &mut rng);
                let res = [&wb, &xb, &nb, &bufs[0], &bufs[1], &bufs[2], &spare, &pf];
                run(gpu, &ctx, &key, p, &res, groups, st);
                let mut want = ys.clone();
                let mut written: Vec<Vec<bool>> = ys.iter().map(|y| vec![false; y.len()]).collect();
                for t in 0..nt {
                    let tok = slot as usize + t;
                    let y = ops::matvec_norm(&w, &x[tok * k..][..k], &nw, eps);
                    for (r, v) in y.into_iter().enumerate() {
                        let (o, r) = if r < n0 {
                            (0, r)
                        } else if r < n0 + n1 {
                            (1, r - n0)
                        } else {
                            (2, r - n0 - n1)
                        };
                        want[o][tok * strides[o] + r] = v;
                        written[o][tok * strides[o] + r] = true;
                    }
                }
                for o in 0..3 {
                    let got = read::<f32>(gpu, &bufs[o], ys[o].len());
                    let (got_w, got_rest) = partition(&got, |i| written[o][i]);
                    let (want_w, want_rest) = partition(&want[o], |i| written[o][i]);
                    rep.check(ty.name(), &format!("{ctx} y{o}"), &got_w, &want_w, MATVEC_TOL);
                    rep.untouched(ty.name(), &format!("{ctx} y{o} outside the written rows"), &got_rest, &want_rest);
                }
            }
        }
    });
}

#[test]
fn matvec_glu() {
    for_variants("matvec_glu", |rep, label, gpu| {
        for (ti, &ty) in WeightType::ALL.iter().enumerate() {
            for (ki, &k) in MV_K.iter().enumerate() {
                let case = ti * MV_K.len() + ki;
                let ffn = GLU_FFN[case % GLU_FFN.len()];
                let seed = seed("matvec_glu", case);
                let mut rng = Rng(seed);
                let wq = quant::quantize(ty, &rng.vec(2 * ffn * k, 1.0));
                let w = quant::dequantize(ty, &wq, 2 * ffn * k);
                let (nw, x, slot, nt) = fused_inputs(&mut rng, k);
                let eps = 1e-6;
                let y0 = rng.vec((slot as usize + nt) * ffn + 3, GARBAGE);
                let ctx = format!("{label} {} ffn={ffn} k={k} slot={slot} T={nt} seed={seed:#x}", ty.name());
                let (wb, xb, nb, yb) = (upload(gpu, &wq), upload(gpu, &x), upload(gpu, &nw), upload(gpu, &y0));
                let p = MatvecGluParams { ffn: ffn as u32, eps, _pad: [0; 2] };
                let mut groups =
                    grid((ffn as u32).div_ceil(MATVEC_ROWS), if case.is_multiple_of(3) { 3 } else { 65535 });
                groups[2] = nt as u32;
                let st = StepUniform { slot, ..step(0, nt) };
                let pf = prefetch_buf(gpu, &mut rng);
                let key = matvec_glu_key(gpu.variant, ty, k, wg_rows(ffn, seed));
                run(gpu, &ctx, &key, p, &[&wb, &xb, &nb, &yb, &pf], groups, st);
                let got = read::<f32>(gpu, &yb, y0.len());
                let mut want = y0.clone();
                let mut written = vec![false; y0.len()];
                for t in 0..nt {
                    let tok = slot as usize + t;
                    for (r, v) in ops::matvec_glu(&w, &x[tok * k..][..k], &nw, eps).into_iter().enumerate() {
                        want[tok * ffn + r] = v;
                        written[tok * ffn + r] = true;
                    }
                }
                let (got_w, got_rest) = partition(&got, |i| written[i]);
                let (want_w, want_rest) = partition(&want, |i| written[i]);
                rep.check(ty.name(), &ctx, &got_w, &want_w, GLU_TOL);
                rep.untouched(ty.name(), &format!("{ctx}, act outside the written rows"), &got_rest, &want_rest);
            }
        }
    });
}

// ---------------------------------------------------------------- argmax

/// GPU greedy sampling: the last logits row of the step -> tokens[slot] and ids[pos + T - 1],
/// with ties (first index wins), NaNs (never win), an all -inf row (0) and a vocab that is
/// not a multiple of the workgroup; nothing else written.
#[test]
fn argmax() {
    for_variants("argmax", |rep, label, gpu| {
        for (case, vocab) in [1usize, 7, 256, 1000, 49152, 50001].into_iter().enumerate() {
            for kind in 0..4 {
                let seed = seed("argmax", case * 4 + kind);
                let mut rng = Rng(seed);
                let (slot, nt, pos) = (rng.below(3) as u32, 1 + rng.below(3), rng.below(20));
                let rows = slot as usize + nt;
                let mut logits = rng.vec(rows * vocab, 8.0);
                let last = &mut logits[(rows - 1) * vocab..];
                match kind {
                    // A tie for the maximum: the lower index wins.
                    1 if vocab > 2 => {
                        let (a, b) = (rng.below(vocab / 2), vocab / 2 + rng.below(vocab - vocab / 2));
                        last[a] = 100.0;
                        last[b] = 100.0;
                    }
                    // NaNs everywhere but one value.
                    2 => {
                        last.iter_mut().for_each(|x| *x = f32::NAN);
                        last[rng.below(vocab)] = -5.0;
                    }
                    // Nothing above -inf.
                    3 => last.iter_mut().for_each(|x| *x = f32::NEG_INFINITY),
                    _ => {}
                }
                let want_id = ops::argmax(&logits[(rows - 1) * vocab..]);
                let ctx = format!("{label} vocab={vocab} kind={kind} slot={slot} T={nt} pos={pos} seed={seed:#x}");
                let tokens0: Vec<u32> = (0..4).map(|_| rng.next_u64() as u32).collect();
                let ids0: Vec<u32> = (0..pos + nt + 3).map(|_| rng.next_u64() as u32).collect();
                let (lb, tb, ib) = (upload(gpu, &logits), upload(gpu, &tokens0), upload(gpu, &ids0));
                let p = ArgmaxParams { vocab: vocab as u32, _pad: [0; 3] };
                let st = StepUniform { slot, ..step(pos, nt) };
                run(gpu, &ctx, &argmax_key(gpu.variant), p, &[&lb, &tb, &ib], [1, 1, 1], st);
                let (got_t, got_i) = (read::<u32>(gpu, &tb, 4), read::<u32>(gpu, &ib, ids0.len()));
                let (mut want_t, mut want_i) = (tokens0.clone(), ids0.clone());
                want_t[slot as usize] = want_id;
                want_i[pos + nt - 1] = want_id;
                rep.checks += 1;
                if got_t != want_t || got_i != want_i {
                    rep.failures.push(format!(
                        "argmax [{ctx}]: want id {want_id}; tokens {got_t:?} vs {want_t:?}; ids {:?} vs {:?}",
                        &got_i[pos..pos + nt],
                        &want_i[pos..pos + nt]
                    ));
                }
            }
        }
    });
}

// ---------------------------------------------------------------- embed

/// (hidden, step.slot, n_tokens, first token out of range: clamped to the last row).
const EMBED_CASES: [(usize, u32, usize, bool); 4] =
    [(576, 1, 1, false), (64, 0, 1, false), (96, 2, 1, true), (576, 1, 5, false)];

#[test]
fn embed() {
    for_variants("embed", |rep, label, gpu| {
        for (ti, &ty) in WeightType::ALL.iter().enumerate() {
            for (ci, &(hidden, slot, nt, clamp)) in EMBED_CASES.iter().enumerate() {
                let seed = seed("embed", ti * EMBED_CASES.len() + ci);
                let mut rng = Rng(seed);
                let rows = 37;
                let tq = quant::quantize(ty, &rng.vec(rows * hidden, 1.0));
                let table = quant::dequantize(ty, &tq, rows * hidden);
                // Slots around the step's hold other tokens, so reading the wrong slot shows.
                let mut tokens: Vec<u32> = (0..slot as usize + nt + 2).map(|_| rng.below(rows) as u32).collect();
                if clamp {
                    tokens[slot as usize] = rows as u32 + 3;
                }
                let mine = &tokens[slot as usize..][..nt];
                let ctx = format!(
                    "{label} {} hidden={hidden} rows={rows} tokens={mine:?} slot={slot} seed={seed:#x}",
                    ty.name()
                );
                let (tb, kb, ob) = (upload(gpu, &tq), upload(gpu, &tokens), upload(gpu, &vec![GARBAGE; nt * hidden]));
                let groups = [(hidden as u32 / 8).div_ceil(WG_ROWS), nt as u32, 1];
                let params = EmbedParams { rows: rows as u32, _pad: [0; 3] };
                let st = StepUniform { slot, ..step(0, nt) };
                run(gpu, &ctx, &embed_key(gpu.variant, ty, hidden), params, &[&tb, &kb, &ob], groups, st);
                let want: Vec<f32> =
                    mine.iter().flat_map(|&t| ops::embed(&table, hidden, t.min(rows as u32 - 1))).collect();
                rep.check(ty.name(), &ctx, &read::<f32>(gpu, &ob, nt * hidden), &want, EMBED_TOL);
            }
        }
    });
}

// ---------------------------------------------------------------- rmsnorm

#[test]
fn rmsnorm() {
    for_variants("rmsnorm", |rep, label, gpu| {
        for (ci, &(n, nt)) in [(64usize, 1usize), (576, 1), (1000, 1), (576, 5)].iter().enumerate() {
            let seed = seed("rmsnorm", ci);
            let mut rng = Rng(seed);
            let x = rng.vec(nt * n, 3.0);
            let w: Vec<f32> = rng.vec(n, 0.5).iter().map(|v| 1.0 + v).collect();
            let eps = 1e-5;
            let ctx = format!("{label} n={n} n_tokens={nt} seed={seed:#x}");
            let (xb, wb, ob) = (upload(gpu, &x), upload(gpu, &w), upload(gpu, &vec![GARBAGE; nt * n]));
            let params = RmsNormParams { eps, _pad: [0; 3] };
            run(gpu, &ctx, &rmsnorm_key(gpu.variant, n), params, &[&xb, &wb, &ob], [nt as u32, 1, 1], step(0, nt));
            let want: Vec<f32> = x.chunks_exact(n).flat_map(|row| ops::rmsnorm(row, &w, eps)).collect();
            rep.check("out", &ctx, &read::<f32>(gpu, &ob, nt * n), &want, RMSNORM_TOL);
        }
    });
}

// ---------------------------------------------------------------- silu_mul

#[test]
fn silu_mul() {
    for_variants("silu_mul", |rep, label, gpu| {
        for (ci, &(n, nt)) in [(1usize, 1usize), (255, 1), (256, 1), (1537, 1), (255, 3)].iter().enumerate() {
            let seed = seed("silu_mul", ci);
            let mut rng = Rng(seed);
            let len = n * nt;
            let (g, u) = (rng.vec(len, 8.0), rng.vec(len, 2.0));
            // [n_tokens][n], token t = grid y. Five spare elements past the end must
            // survive the extra threads of the last group.
            let out0 = vec![GARBAGE; len + 5];
            let ctx = format!("{label} n={n} n_tokens={nt} seed={seed:#x}");
            let (gb, ub, ob) = (upload(gpu, &g), upload(gpu, &u), upload(gpu, &out0));
            let groups = [(n as u32).div_ceil(WG_WIDE), nt as u32, 1];
            run(
                gpu,
                &ctx,
                &silu_mul_key(gpu.variant),
                SiluMulParams { n: n as u32, _pad: [0; 3] },
                &[&gb, &ub, &ob],
                groups,
                step(0, nt),
            );
            let got = read::<f32>(gpu, &ob, len + 5);
            rep.check("out", &ctx, &got[..len], &ops::silu_mul(&g, &u), SILU_TOL);
            rep.untouched("out", &format!("{ctx}, tail past n * n_tokens"), &got[len..], &out0[len..]);
        }
    });
}

// ---------------------------------------------------------------- rope_kv

#[test]
fn rope_kv() {
    for_variants("rope_kv", |rep, label, gpu| {
        let mut case = 0;
        for hd in [64usize, 128, 256] {
            for (nh, nkv) in [(9usize, 3usize), (4, 4), (8, 1)] {
                for style in [RopeStyle::Adjacent, RopeStyle::Halves] {
                    // Every third case is a 5-token chunk; every fourth leaves the cache alone.
                    let (nt, write) = (if case % 3 == 2 { 5 } else { 1 }, case % 4 != 3);
                    rope_case(rep, (label, gpu), (hd, nh, nkv, nt), (style, write), seed("rope_kv", case));
                    case += 1;
                }
            }
        }
    });
}

/// shape = (head_dim, n_heads, n_kv_heads, n_tokens); `write`: params.write_cache.
fn rope_case(
    rep: &mut Report,
    (label, gpu): (&str, &Gpu),
    shape: (usize, usize, usize, usize),
    (style, write): (RopeStyle, bool),
    seed: u64,
) {
    let (hd, nh, nkv, nt) = shape;
    let mut rng = Rng(seed);
    let cap = nt + 8 + rng.below(300);
    let pos = rng.below(cap - nt); // capacity > pos + n_tokens: rows after the chunk exist
    let theta = [10_000.0, 100_000.0][rng.below(2)];
    let (q, k, v) = (rng.vec(nt * nh * hd, 2.0), rng.vec(nt * nkv * hd, 2.0), rng.vec(nt * nkv * hd, 2.0));
    let kc0 = kv_round(gpu, &rng.vec(nkv * cap * hd, GARBAGE));
    let vc0 = kv_round(gpu, &rng.vec(nkv * cap * hd, GARBAGE));
    let table = ops::rope_table(cap, hd, theta);
    let ctx = format!("{label} hd={hd} heads={nh}/{nkv} {style:?} pos={pos} n_tokens={nt} cap={cap} theta={theta} write_cache={write} seed={seed:#x}");
    let (qb, kb, vb) = (upload(gpu, &q), upload(gpu, &k), upload(gpu, &v));
    let (kcb, vcb, tb) = (upload_kv(gpu, &kc0), upload_kv(gpu, &vc0), upload(gpu, &table));
    let params = RopeKvParams {
        n_heads: nh as u32,
        n_kv_heads: nkv as u32,
        capacity: cap as u32,
        halves: (style == RopeStyle::Halves) as u32,
        write_cache: write as u32,
        _pad: [0; 3],
    };
    let groups = [(nh + nkv) as u32, nt as u32, 1];
    run(gpu, &ctx, &rope_kv_key(gpu.variant, hd), params, &[&qb, &kb, &vb, &kcb, &vcb, &tb], groups, step(pos, nt));
    // Activations are [token][heads][hd]; token t sits at pos + t.
    let rotate = |x: &[f32], heads: usize| -> Vec<f32> {
        let mut x = x.to_vec();
        x.chunks_exact_mut(hd).enumerate().for_each(|(i, h)| ops::rope(h, pos + i / heads, theta, style));
        x
    };
    let (q_want, k_want) = (rotate(&q, nh), rotate(&k, nkv));
    rep.check("q", &ctx, &read::<f32>(gpu, &qb, q.len()), &q_want, ROPE_TOL);
    rep.check("k", &ctx, &read::<f32>(gpu, &kb, k.len()), &k_want, ROPE_TOL);
    // Cache [kv head][cap][hd]: rows pos..pos+nt of each kv head get token rows (none
    // without write_cache: kv_encode_aura writes an AURA-compressed cache instead).
    let in_chunk = |i: usize| write && (pos..pos + nt).contains(&(i / hd % cap));
    let to_cache = |x: &[f32]| -> Vec<f32> {
        let row = |kvh: usize, t: usize| &x[(t * nkv + kvh) * hd..][..hd];
        kv_round(gpu, &(0..nkv).flat_map(|kvh| (0..nt).flat_map(move |t| row(kvh, t))).copied().collect::<Vec<f32>>())
    };
    let cache_tol = if gpu.variant.f16 { ROPE_F16_CACHE_TOL } else { ROPE_TOL };
    for (what, buf, c0, src) in [("k_cache", &kcb, &kc0, &k_want), ("v_cache", &vcb, &vc0, &v)] {
        let (got_at, got_rest) = partition(&read_kv(gpu, buf, c0.len()), in_chunk);
        if write {
            rep.check(what, &ctx, &got_at, &to_cache(src), cache_tol);
        }
        rep.untouched(what, &format!("{ctx}, rows outside the chunk"), &got_rest, &partition(c0, in_chunk).1);
    }
}

// ---------------------------------------------------------------- attention

const ATTN_BLOCKS: [u32; 6] = [0, 16, 32, 64, 128, 256]; // 0: single pass
const ATTN_HEAD_DIMS: [usize; 3] = [64, 128, 256];
const ATTN_GROUPS: [usize; 4] = [1, 3, 4, 8];
const ATTN_KV_LENS: [usize; 10] = [1, 31, 32, 33, 63, 64, 65, 257, 1000, 2000];

/// One attention case. Token t of the step (n_tokens of them) attends to kv_len + t rows.
#[derive(Clone, Copy, Debug)]
struct AttnShape {
    block: u32,
    /// Query heads per workgroup (1, or `dense_heads_per_workgroup(group, hd)`).
    heads: usize,
    /// Split-K: the last block merges (MERGE), else an attn_merge dispatch follows.
    merge: bool,
    hd: usize,
    group: usize,
    n_kv: usize,
    kv_len: usize,
    n_tokens: usize,
    cap: usize,
}

/// A seeded sample of blocks x head dims x groups x kv_lens: each path (single, each
/// split block) runs every kv_len once, every head dim 3 times, every group at least
/// twice and two multi-token chunks; kv_len pairs with head dims differently per path.
/// Split cases take the fused merge, every fourth the merge dispatch.
fn attn_shapes() -> Vec<AttnShape> {
    let mut rng = Rng(seed("attention-shapes", 0));
    let mut out = Vec::new();
    for (pi, &block) in ATTN_BLOCKS.iter().enumerate() {
        let mut lens = ATTN_KV_LENS;
        shuffle(&mut lens, &mut rng);
        for (i, &kv_len) in lens.iter().enumerate() {
            let n_tokens = if i % 4 == 3 { 2 + rng.below(7) } else { 1 };
            let cap = kv_len + n_tokens + 37 + rng.below(200);
            let (hd, group, n_kv) = (ATTN_HEAD_DIMS[i % 3], ATTN_GROUPS[(i + pi) % 4], 1 + rng.below(2));
            // Multi-token chunks (i % 4 == 3) merge in the last block; i % 4 == 1 dispatches.
            // Every other case serves a GQA group per workgroup.
            let heads = if (i + pi) % 2 == 1 { dense_heads_per_workgroup(group, hd) } else { 1 };
            out.push(AttnShape { block, heads, merge: i % 4 != 1, hd, group, n_kv, kv_len, n_tokens, cap });
        }
    }
    out
}

#[test]
fn attention() {
    for_variants("attention", |rep, label, gpu| {
        for (i, s) in attn_shapes().iter().enumerate() {
            attn_case(rep, label, gpu, s, seed("attention", i));
        }
    });
}

/// Every query head (and token) gets its own output: a split or merge grid that mixes
/// up heads or tokens, or a wrong kv-head mapping, shows, since all outputs differ.
#[test]
fn attention_heads_are_distinct() {
    for_variants("attention-heads", |rep, label, gpu| {
        let cases = [
            (0u32, 1, false, 1usize),
            (64, 1, false, 1),
            (256, 1, true, 1),
            (64, 1, false, 4),
            (32, 1, true, 4),
            (0, 3, false, 2),
            (64, 3, false, 1),
            (32, 3, true, 4),
        ];
        for (i, (block, heads, merge, n_tokens)) in cases.into_iter().enumerate() {
            let s = AttnShape { block, heads, merge, hd: 64, group: 3, n_kv: 3, kv_len: 300, n_tokens, cap: 700 };
            let want = attn_case(rep, label, gpu, &s, seed("attention-heads", i));
            assert_rows_distinct(&format!("{label} {s:?}"), &want, s.hd);
        }
    });
}

/// Runs one attention shape (single pass, or split + merge) and checks every token and
/// query head; returns the reference output [n_tokens][n_heads][hd].
fn attn_case(rep: &mut Report, label: &str, gpu: &Gpu, s: &AttnShape, seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    let AttnShape { block, heads, merge, hd, group, n_kv, kv_len, n_tokens: nt, cap } = *s;
    let (nh, last_len) = (group * n_kv, kv_len + nt - 1);
    let q = rng.vec(nt * nh * hd, 3.0);
    // Rows past the last token's kv_len are garbage: reading them, or striding the
    // cache by kv_len instead of capacity, swamps the result.
    let mut cache = || -> Vec<f32> {
        let rows: Vec<f32> =
            (0..n_kv * cap).flat_map(|r| rng.vec(hd, if r % cap < last_len { 1.0 } else { GARBAGE })).collect();
        kv_round(gpu, &rows)
    };
    let (kc, vc) = (cache(), cache());
    let scale = 1.0 / (hd as f32).sqrt();
    let (max_blocks, n_blocks) =
        if block == 0 { (1, 0) } else { (cap.div_ceil(block as usize), last_len.div_ceil(block as usize)) };
    let path = match (block, merge) {
        (0, _) => format!("single heads/wg={heads}"),
        (b, true) => format!("split{b}+merge heads/wg={heads} n_blocks={n_blocks}/{max_blocks}"),
        (b, false) => format!("split{b} heads/wg={heads} n_blocks={n_blocks}/{max_blocks}"),
    };
    let ctx =
        format!("{label} {path} hd={hd} heads={nh}/{n_kv} kv_len={kv_len} n_tokens={nt} cap={cap} seed={seed:#x}");
    let (qb, kcb, vcb) = (upload(gpu, &q), upload_kv(gpu, &kc), upload_kv(gpu, &vc));
    // Output rows, then stale partials (a merge reading past n_blocks picks these up).
    let out = upload(gpu, &vec![GARBAGE; nt * nh * hd * (1 + max_blocks)]);
    let (pml_host, n_ml) = partial_ml(nt * nh * max_blocks, nt * nh, GARBAGE);
    let pml = upload(gpu, &pml_host);
    let po_off = (nt * nh * hd / 4) as u32;
    let params = AttnParams {
        n_heads: nh as u32,
        group: group as u32,
        capacity: cap as u32,
        max_blocks: max_blocks as u32,
        scale,
        po_off,
        _pad: [0; 2],
    };
    let st = StepUniform { n_blocks: n_blocks as u32, ..step(kv_len - 1, nt) };
    // The layer weights the attention dispatch prefetches into L2, by 0 to 2 grid columns of
    // prefetch-only workgroups past the heads: the outputs must not depend on them.
    let (pf, pf_cols) = (prefetch_buf(gpu, &mut rng), (seed % 3) as u32);
    let bufs = [&qb, &kcb, &vcb, &out, &pml, &pf];
    run(
        gpu,
        &format!("{ctx} prefetch_cols={pf_cols}"),
        &attn_key(gpu.variant, hd, heads, block, merge),
        params,
        &bufs,
        [(nh / heads) as u32 + pf_cols, (n_blocks as u32).max(1), nt as u32],
        st,
    );
    if block > 0 && !merge {
        let mp = MergeParams { n_heads: nh as u32, max_blocks: max_blocks as u32, po_off, _pad: 0 };
        let no_consts = upload(gpu, &[0.0f32]);
        run(
            gpu,
            &ctx,
            &merge_key(gpu.variant, hd, false),
            mp,
            &[&pml, &out, &no_consts, &pf],
            [nh as u32 + pf_cols, nt as u32, 1],
            st,
        );
    }
    // The fused merge's counters are back at zero for the next dispatch.
    let counters = read::<u32>(gpu, &pml, pml_host.len());
    rep.untouched("merge counters", &ctx, &counters[n_ml..], &vec![0u32; nt * nh]);
    let got = read::<f32>(gpu, &out, nt * nh * hd);
    let kv = |c: &[f32], h: usize| -> Vec<f32> { c[(h / group) * cap * hd..][..cap * hd].to_vec() };
    let want: Vec<f32> = (0..nt * nh)
        .flat_map(|qh| {
            ops::attention(&q[qh * hd..][..hd], &kv(&kc, qh % nh), &kv(&vc, qh % nh), hd, kv_len + qh / nh, scale)
        })
        .collect();
    let what = format!("{} hd={hd}", if block == 0 { "single" } else { "split" });
    for qh in 0..nt * nh {
        let r = qh * hd..(qh + 1) * hd;
        rep.check(&what, &format!("{ctx} token={} head={}", qh / nh, qh % nh), &got[r.clone()], &want[r], ATTN_TOL);
    }
    if block > 0 && !merge {
        // The same partials through the merge with the output projection folded in.
        let no_consts = upload(gpu, &[0.0f32]);
        let r = oproj_case(
            gpu,
            &ctx,
            &mut rng,
            (&counters, n_ml),
            (&out, po_off, max_blocks),
            (&no_consts, false),
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

/// RoPE folded into the fused q|k|v projection (adjacent pairs): q and k rotated at the
/// step's position; with `KV_OUT` the rotated k and the v rows go straight into the caches
/// at that position (nothing else touched), else into the f32 scratch rows.
#[test]
fn matvec_norm_rope() {
    // (head_dim, query heads, kv heads)
    const SHAPES: [(usize, usize, usize); 3] = [(64, 9, 3), (128, 4, 2), (32, 3, 1)];
    for_variants("matvec_norm_rope", |rep, label, gpu| {
        for case in 0..6 {
            let (hd, nh, nkv) = SHAPES[case % SHAPES.len()];
            let ty = WeightType::ALL[case % WeightType::ALL.len()];
            let k = MV_K[1 + case % 3];
            let kv_out = case % 2 == 0;
            let seed = seed("matvec_norm_rope", case);
            let mut rng = Rng(seed);
            let (n0, n1) = (nh * hd, nkv * hd);
            let rows = n0 + 2 * n1;
            let wq = quant::quantize(ty, &rng.vec(rows * k, 0.1));
            let w = quant::dequantize(ty, &wq, rows * k);
            let (nw, x, slot, _) = fused_inputs(&mut rng, k);
            let pos = rng.below(40);
            let cap = pos + 1 + rng.below(5);
            let theta = 10000.0;
            let table = ops::rope_table(cap, hd, theta);
            let eps = 1e-5;
            let tok = slot as usize;
            let ctx = format!(
                "{label} {} hd={hd} heads={nh}/{nkv} k={k} pos={pos} cap={cap} slot={slot} kv_out={kv_out} seed={seed:#x}",
                ty.name()
            );
            let q0 = rng.vec((tok + 1) * n0, GARBAGE);
            // y1/y2: the caches [n_kv][cap][hd] (kv_t) or scratch rows [slot + 1][n1] (f32).
            let y12: Vec<Vec<f32>> = (0..2)
                .map(|_| if kv_out { rng.vec(nkv * cap * hd, 1.0) } else { rng.vec((tok + 1) * n1, GARBAGE) })
                .collect();
            let qb = upload(gpu, &q0);
            let yb: Vec<_> = y12.iter().map(|y| if kv_out { upload_kv(gpu, y) } else { upload(gpu, y) }).collect();
            let (wb, xb, nb, tb) = (upload(gpu, &wq), upload(gpu, &x), upload(gpu, &nw), upload(gpu, &table));
            let p = MatvecNormParams {
                rows: rows as u32,
                n0: n0 as u32,
                n1: (n0 + n1) as u32,
                eps,
                stride0: n0 as u32,
                stride1: n1 as u32,
                stride2: n1 as u32,
                capacity: cap as u32,
            };
            let groups = grid((rows as u32).div_ceil(MATVEC_ROWS), 65535);
            let st = StepUniform { slot, ..step(pos, 1) };
            let key = matvec_norm_key(gpu.variant, ty, k, wg_rows(rows, seed), hd, kv_out);
            let pf = prefetch_buf(gpu, &mut rng);
            run(gpu, &ctx, &key, p, &[&wb, &xb, &nb, &qb, &yb[0], &yb[1], &tb, &pf], groups, st);
            let mut y = ops::matvec_norm(&w, &x[tok * k..][..k], &nw, eps);
            for h in 0..nh + nkv {
                ops::rope(&mut y[h * hd..][..hd], pos, theta, RopeStyle::Adjacent);
            }
            // q: the token's row rotated, other slots untouched.
            let in_tok = |i: usize| i >= tok * n0 && i < (tok + 1) * n0;
            let (got_w, got_rest) = partition(&read::<f32>(gpu, &qb, q0.len()), in_tok);
            let (_, want_rest) = partition(&q0, in_tok);
            rep.check(ty.name(), &format!("{ctx} q"), &got_w, &y[..n0], MATVEC_TOL);
            rep.untouched(ty.name(), &format!("{ctx} q other slots"), &got_rest, &want_rest);
            for c in 0..2 {
                let want_rows = &y[n0 + c * n1..][..n1];
                if kv_out {
                    // The cache rows at pos hold k (rotated) / v, rounded to kv_t; the rest is untouched.
                    let got = read_kv(gpu, &yb[c], y12[c].len());
                    let at = |i: usize| (i / hd) % cap == pos;
                    let mut want = y12[c].clone();
                    for kh in 0..nkv {
                        want[(kh * cap + pos) * hd..][..hd].copy_from_slice(&want_rows[kh * hd..][..hd]);
                    }
                    if gpu.variant.f16 {
                        want.iter_mut().for_each(|e| *e = ops::round_f16(*e));
                    }
                    let (got_at, got_rest) = partition(&got, at);
                    let (want_at, want_rest) = partition(&want, at);
                    let tol = if gpu.variant.f16 { NORM_F16_CACHE_TOL } else { MATVEC_TOL };
                    rep.check("cache", &format!("{ctx} cache {c} at pos"), &got_at, &want_at, tol);
                    rep.untouched("cache", &format!("{ctx} cache {c} other rows"), &got_rest, &want_rest);
                } else {
                    let in_tok = |i: usize| i >= tok * n1 && i < (tok + 1) * n1;
                    let (got_w, got_rest) = partition(&read::<f32>(gpu, &yb[c], y12[c].len()), in_tok);
                    let (_, want_rest) = partition(&y12[c], in_tok);
                    rep.check(ty.name(), &format!("{ctx} y{}", c + 1), &got_w, want_rows, MATVEC_TOL);
                    rep.untouched(ty.name(), &format!("{ctx} y{} other slots", c + 1), &got_rest, &want_rest);
                }
            }
        }
    });
}
