//! A prebuilt dispatch: pipeline, bind group and a grid that may grow with the
//! number of tokens in the step.
use std::sync::Arc;

use bytemuck::Pod;

use super::registry::Pipeline;
use super::Gpu;
use crate::error::Result;

/// Dispatches recorded by this process (all sessions): benchmarks read the change over a
/// step to report dispatches per token.
pub static DISPATCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Per-dispatch GPU timestamps (a profiling aid for benchmarks): while installed on this
/// thread, every `Dispatch::run_with` writes a timestamp before its dispatch and records
/// its pipeline label, so consecutive stamps bracket each kernel (barrier included).
pub struct KernelTimer {
    pub queries: wgpu::QuerySet,
    pub capacity: u32,
    pub labels: Vec<String>,
}

thread_local! {
    pub static KERNEL_TIMER: std::cell::RefCell<Option<KernelTimer>> = const { std::cell::RefCell::new(None) };
}

/// Write a timestamp labelled `label` if a `KernelTimer` is installed and has room.
pub fn kernel_stamp(pass: &mut wgpu::ComputePass<'_>, label: &str) {
    KERNEL_TIMER.with(|t| {
        if let Some(t) = t.borrow_mut().as_mut() {
            let i = t.labels.len() as u32;
            if i < t.capacity {
                pass.write_timestamp(&t.queries, i);
                t.labels.push(label.to_string());
            }
        }
    });
}

/// Something bound as one storage or uniform binding: a whole buffer or a range of one.
pub trait AsBinding {
    fn binding(&self) -> wgpu::BindingResource<'_>;
}

impl AsBinding for wgpu::Buffer {
    fn binding(&self) -> wgpu::BindingResource<'_> {
        self.as_entire_binding()
    }
}

/// A range of a buffer (offset aligned to `SLICE_ALIGN`), bound on its own: the step's q,
/// k and v rows share one buffer, which the compressed attention binds whole.
#[derive(Clone, Debug)]
pub struct Slice {
    pub buffer: wgpu::Buffer,
    pub offset: u64,
    pub size: u64,
}

/// Storage binding offsets are multiples of this (WebGPU's largest allowed alignment).
pub const SLICE_ALIGN: u64 = 256;

impl AsBinding for Slice {
    fn binding(&self) -> wgpu::BindingResource<'_> {
        range_binding(&self.buffer, self.offset, self.size)
    }
}

/// The binding of `size` bytes of `buffer` from `offset` (a multiple of `SLICE_ALIGN`).
pub fn range_binding(buffer: &wgpu::Buffer, offset: u64, size: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer, offset, size: wgpu::BufferSize::new(size) })
}

/// Consecutive slices of one new buffer, each `sizes[i]` bytes at an aligned offset.
pub fn slices<const N: usize>(gpu: &Gpu, label: &str, sizes: [u64; N]) -> Result<(wgpu::Buffer, [Slice; N])> {
    let mut offs = [0u64; N];
    let mut end = 0;
    for (o, s) in offs.iter_mut().zip(sizes) {
        *o = end;
        end = (end + s).next_multiple_of(SLICE_ALIGN);
    }
    let buffer = gpu.buffer(label, end, wgpu::BufferUsages::STORAGE)?;
    let sl = std::array::from_fn(|i| Slice { buffer: buffer.clone(), offset: offs[i], size: sizes[i] });
    Ok((buffer, sl))
}

/// How a dispatch's grid grows with the number of tokens T in the step.
#[derive(Clone, Copy, Debug)]
pub enum PerToken {
    /// T along this axis.
    Axis(usize),
    /// ceil(T / tile) along this axis.
    Tiles(usize, u32),
}

pub struct Dispatch {
    pub pipeline: Arc<Pipeline>,
    pub bind: wgpu::BindGroup,
    pub groups: [u32; 3],
    pub per_token: PerToken,
    /// Extra workgroups (at least this many, in whole grid columns past `groups[0]`) that
    /// only prefetch weights into L2 (dense or AURA attention, the AURA encoder, the merge:
    /// `common/prefetch.wgsl`'s `prefetch_side`); 0: none.
    pub prefetch_groups: u32,
    /// Grid rows (y) after the kernel's own, added to its y whatever the step sets it to
    /// (AURA attention's new-row encoders, in its last row); 0: none.
    pub extra_rows: u32,
}

impl Dispatch {
    pub fn new(
        gpu: &Gpu,
        pipeline: &Arc<Pipeline>,
        res: &[&dyn AsBinding],
        groups: [u32; 3],
        per_token: PerToken,
    ) -> Dispatch {
        Dispatch::with_resources(gpu, pipeline, res.iter().map(|b| b.binding()).collect(), groups, per_token)
    }

    /// `new` with any binding resources (e.g. a weight matrix's range of a layer buffer).
    pub fn with_resources(
        gpu: &Gpu,
        pipeline: &Arc<Pipeline>,
        res: Vec<wgpu::BindingResource<'_>>,
        groups: [u32; 3],
        per_token: PerToken,
    ) -> Dispatch {
        Dispatch {
            bind: gpu.bind_resources(pipeline, res),
            pipeline: pipeline.clone(),
            groups,
            per_token,
            prefetch_groups: 0,
            extra_rows: 0,
        }
    }

    /// With at least `n` prefetch-only workgroups (see `prefetch_groups`).
    pub fn prefetching(mut self, n: u32) -> Dispatch {
        self.prefetch_groups = n;
        self
    }

    /// With `n` grid rows after the kernel's own (see `extra_rows`).
    pub fn extra_rows(mut self, n: u32) -> Dispatch {
        self.extra_rows = n;
        self
    }

    /// Dispatch for a step of `n_tokens`.
    pub fn run(&self, pass: &mut wgpu::ComputePass<'_>, n_tokens: u32) {
        self.run_with(pass, n_tokens, None);
    }

    /// Same, with grid y replaced (split-K block count).
    pub fn run_with(&self, pass: &mut wgpu::ComputePass<'_>, n_tokens: u32, y: Option<u32>) {
        self.record(pass, n_tokens, y, true);
    }

    /// `run`, with its prefetch-only workgroups or without them (when another dispatch of
    /// the step already loaded those weights).
    pub fn run_prefetching(&self, pass: &mut wgpu::ComputePass<'_>, n_tokens: u32, prefetch: bool) {
        self.record(pass, n_tokens, None, prefetch);
    }

    fn record(&self, pass: &mut wgpu::ComputePass<'_>, n_tokens: u32, y: Option<u32>, prefetch: bool) {
        let mut g = self.groups;
        match self.per_token {
            PerToken::Axis(a) => g[a] = n_tokens,
            PerToken::Tiles(a, tile) => g[a] = n_tokens.div_ceil(tile),
        }
        if let Some(y) = y {
            g[1] = y;
        }
        g[1] += self.extra_rows;
        if prefetch && self.prefetch_groups > 0 {
            // Whole columns: every grid row (y, z) gets them.
            g[0] += self.prefetch_groups.div_ceil(g[1] * g[2]);
        }
        kernel_stamp(pass, &self.pipeline.label);
        pass.set_pipeline(&self.pipeline.pipeline);
        pass.set_bind_group(0, &self.bind, &[]);
        pass.dispatch_workgroups(g[0], g[1], g[2]);
        DISPATCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A small uniform buffer holding one params struct.
pub fn uniform<T: Pod>(gpu: &Gpu, p: T) -> Result<wgpu::Buffer> {
    gpu.buffer_init("params", bytemuck::bytes_of(&p), wgpu::BufferUsages::UNIFORM)
}
