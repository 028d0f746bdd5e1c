//! Kernel-test harness shared by tests/kernels.rs and tests/aura_kernels.rs: one set of
//! engines per binary, seeded cases, buffer upload/readback, single dispatches.
#![allow(dead_code)]
use std::sync::OnceLock;

use aura::gpu::registry::{PipelineKey, StepUniform};
use aura::gpu::Gpu;
use aura::Engine;
use half::f16;

/// Every variant engine (see `variant_engines`), created once per test binary.
pub fn engines() -> &'static [(String, Engine)] {
    static ENGINES: OnceLock<Vec<(String, Engine)>> = OnceLock::new();
    ENGINES.get_or_init(super::variant_engines)
}

/// AURA_KERNEL_SEED when set, else `default`.
pub fn base_seed(default: u64) -> u64 {
    std::env::var("AURA_KERNEL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Seed of one case: FNV-1a of (base seed, test name, case index).
pub fn case_seed(default: u64, name: &str, case: usize) -> u64 {
    let base = base_seed(default);
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in base.to_le_bytes().into_iter().chain(name.bytes()).chain(case.to_le_bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

pub const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC);

pub fn upload<T: bytemuck::Pod>(gpu: &Gpu, v: &[T]) -> wgpu::Buffer {
    gpu.buffer_init("test", bytemuck::cast_slice(v), STORAGE).expect("buffer_init")
}

/// KV-typed storage (cache, γ, mirror): f16 elements when the variant has f16, else f32.
pub fn upload_kv(gpu: &Gpu, v: &[f32]) -> wgpu::Buffer {
    if gpu.variant.f16 {
        upload(gpu, &v.iter().map(|x| f16::from_f32(*x)).collect::<Vec<_>>())
    } else {
        upload(gpu, v)
    }
}

/// The first `n` elements of `buf`.
pub fn read<T: bytemuck::Pod>(gpu: &Gpu, buf: &wgpu::Buffer, n: usize) -> Vec<T> {
    let len = n * std::mem::size_of::<T>();
    let mut b = pollster::block_on(gpu.read(buf, 0, len.div_ceil(4) as u64 * 4)).expect("readback");
    b.truncate(len);
    bytemuck::pod_collect_to_vec(&b)
}

/// The first `n` KV-typed elements of `buf`, as f32.
pub fn read_kv(gpu: &Gpu, buf: &wgpu::Buffer, n: usize) -> Vec<f32> {
    if gpu.variant.f16 {
        read::<f16>(gpu, buf, n).iter().map(|x| x.to_f32()).collect()
    } else {
        read(gpu, buf, n)
    }
}

/// One dispatch of `key`; panics with `ctx` on a GPU error.
pub fn run<P: bytemuck::Pod>(
    gpu: &Gpu,
    ctx: &str,
    key: &PipelineKey,
    params: P,
    bufs: &[&wgpu::Buffer],
    groups: [u32; 3],
    step: StepUniform,
) {
    pollster::block_on(gpu.run_once(key, bytemuck::bytes_of(&params), bufs, groups, step))
        .unwrap_or_else(|e| panic!("[{ctx}] dispatch failed: {e}"));
}

/// Every `hd`-long output row of a reference result differs from every other, so a
/// kernel that mixed up heads or tokens could not pass by accident.
pub fn assert_rows_distinct(ctx: &str, want: &[f32], hd: usize) {
    let rows: Vec<&[f32]> = want.chunks_exact(hd).collect();
    for (a, b) in (0..rows.len()).flat_map(|a| (a + 1..rows.len()).map(move |b| (a, b))) {
        let (_, d) = aura::reference::ops::compare(rows[a], rows[b]);
        assert!(d > 1e-2, "{ctx}: reference outputs {a} and {b} coincide; a mix-up would go unseen");
    }
}

/// The split-K (max, sum) buffer as a session lays it out: `n_partials` stale pairs
/// (`garbage`: a merge that reads past its blocks picks them up), then `n_counters`
/// finished-block counters, zero. Returns the buffer and the counters' first index.
pub fn partial_ml(n_partials: usize, n_counters: usize, garbage: f32) -> (Vec<f32>, usize) {
    let mut v = vec![garbage; 2 * n_partials];
    v.resize(2 * n_partials + n_counters, 0.0);
    (v, 2 * n_partials)
}

/// Weights a kernel prefetches into L2 (the next projection's, or a layer's post-attention
/// ones): one word (the engine's placeholder) or a larger buffer of random bits, NaN
/// patterns included; the outputs must not depend on it.
pub fn prefetch_buf(gpu: &Gpu, rng: &mut super::Rng) -> wgpu::Buffer {
    let words = [1, 1000, 40_000][rng.below(3)];
    upload(gpu, &(0..words).map(|_| rng.next_u64() as u32).collect::<Vec<u32>>())
}

/// What `oproj_case` ran and read back: its context, the residual rows it produced and
/// `ops::oproj_heads`' [n_tokens][rows], and its finished-head counters (zero again).
pub struct OprojRun {
    pub ctx: String,
    pub got: Vec<f32>,
    pub want: Vec<f32>,
    pub counters: Vec<u32>,
}

/// The split-K merge with the output projection folded in (`attn_merge_oproj`), on a split
/// attention's partials: `ml` is the (max, sum) buffer read back after it (pairs in the first
/// `n_ml` words), `att` holds the partial o rows at `po_off`, `consts` the AURA constants
/// (`unrotate`) or a placeholder. Wo is random, of a random type and height, in a buffer
/// of other rows before it (row_base); the residual starts random. The reference is
/// `ops::oproj_heads` over `want_att` [n_tokens][n_heads][hd], the attention rows the
/// plain merge must produce.
#[allow(clippy::too_many_arguments)]
pub fn oproj_case(
    gpu: &Gpu,
    ctx: &str,
    rng: &mut super::Rng,
    (ml, n_ml): (&[u32], usize),
    (att, po_off, max_blocks): (&wgpu::Buffer, u32, usize),
    (consts, unrotate): (&wgpu::Buffer, bool),
    (pf, pf_cols): (&wgpu::Buffer, u32),
    (nh, hd, nt): (usize, usize, usize),
    step: StepUniform,
    want_att: &[f32],
) -> OprojRun {
    use aura::kernels::{merge_oproj_key, merge_oproj_split, MergeOprojParams};
    use aura::model::tensor::WeightType;
    use aura::reference::{ops, quant};
    let ty = WeightType::ALL[rng.below(WeightType::ALL.len())];
    let (rows, k, base) = (1 + rng.below(900), nh * hd, rng.below(3));
    let wq = quant::quantize(ty, &rng.vec((base + rows) * k, 1.0));
    let w = quant::dequantize(ty, &wq, (base + rows) * k)[base * k..].to_vec();
    let x0 = rng.vec((step.slot as usize + nt) * rows, 2.0);
    // The partials, then this dispatch's counters (one per token), then the attention's.
    let mut pml = ml[..n_ml].to_vec();
    pml.resize(n_ml + nt + nt * nh, 0);
    let ctr0 = (nt * nh) as u32;
    let (pmlb, wb, xb) = (upload(gpu, &pml), upload(gpu, &wq), upload(gpu, &x0));
    let part = upload(gpu, &vec![1.0e4f32; nt * nh * rows]);
    let ctx = format!("{ctx} oproj {} rows={rows} row_base={base} unrotate={unrotate}", ty.name());
    let p = MergeOprojParams {
        n_heads: nh as u32,
        max_blocks: max_blocks as u32,
        po_off,
        rows: rows as u32,
        row_base: base as u32,
        ctr0,
        _pad: [0; 2],
    };
    let key = merge_oproj_key(gpu.variant, hd, unrotate, ty, nh, rows);
    let bufs = [&pmlb, att, consts, pf, &wb, &xb, &part];
    let x = nh as u32 * merge_oproj_split(rows, hd);
    run(gpu, &ctx, &key, p, &bufs, [x + pf_cols, nt as u32, 1], step);
    let got = read::<f32>(gpu, &xb, x0.len());
    let mut want = x0.clone();
    for t in 0..nt {
        let o = (step.slot as usize + t) * rows;
        ops::oproj_heads(&w, &want_att[t * k..][..k], hd, &mut want[o..o + rows]);
    }
    let counters = read::<u32>(gpu, &pmlb, pml.len())[n_ml..].to_vec();
    OprojRun { ctx, got, want, counters }
}
