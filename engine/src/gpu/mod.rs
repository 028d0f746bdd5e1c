//! Device, capabilities, buffers and the kernel registry. The only place that
//! creates shader modules.
pub mod dispatch;
pub mod registry;

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::options::{Backend, Options};

/// What the adapter can do, read once.
#[derive(Clone, Debug)]
pub struct Caps {
    pub adapter: String,
    pub backend: String,
    pub driver: String,
    pub has_f16: bool,
    pub has_subgroups: bool,
    pub subgroup_min: u32,
    pub subgroup_max: u32,
    pub has_timestamps: bool,
    pub max_storage_binding: u64,
    pub max_buffer: u64,
    pub max_workgroups_per_dim: u32,
    pub uniform_align: u32,
    /// A software (CPU) adapter such as lavapipe or llvmpipe.
    pub cpu_adapter: bool,
}

/// The variant family chosen for this engine (from Caps and Options).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    /// f16 KV storage (and `enable f16`).
    pub f16: bool,
    /// Subgroup reductions instead of workgroup-memory trees.
    pub subgroups: bool,
}

pub struct GpuInner {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub caps: Caps,
    pub variant: Variant,
    pub options: Options,
    pub registry: registry::Registry,
}

/// Cheap-to-clone handle on the device.
#[derive(Clone)]
pub struct Gpu(pub Arc<GpuInner>);

impl std::ops::Deref for Gpu {
    type Target = GpuInner;
    fn deref(&self) -> &GpuInner {
        &self.0
    }
}

impl Gpu {
    /// Whether decode prefetches weights into L2 (`Options::l2_prefetch`; default: on for
    /// GPUs, off for CPU adapters, where it is only extra loads).
    pub fn l2_prefetch(&self) -> bool {
        self.options.l2_prefetch.unwrap_or(!self.caps.cpu_adapter)
    }

    /// Whether one-token steps fold the output projection into the split-K merge dispatch
    /// (`Options::fused_oproj`), for a model of `n_heads` query heads of `head_dim` and
    /// `hidden` rows; forced on where the head dim does not allow it, an error.
    pub fn fused_oproj(&self, n_heads: usize, head_dim: usize, hidden: usize) -> crate::error::Result<bool> {
        let fits = crate::kernels::merge_oproj_fits(head_dim);
        match self.options.fused_oproj {
            Some(true) if !fits => Err(crate::error::Error::Unsupported(format!(
                "the output projection folds into the merge dispatch only at head dims that are multiples of 64 \
                 up to 256, not {head_dim}"
            ))),
            Some(on) => Ok(on),
            None => Ok(fits && self.caps.backend == "Vulkan" && n_heads * hidden <= FUSED_OPROJ_MAX),
        }
    }

    /// How split-K attention merges (`Options::fused_merge`): forced either way, else per
    /// step on Vulkan and the merge dispatch elsewhere. The fused merge's last block reads
    /// partials other workgroups wrote with plain stores in the same dispatch: naga gives
    /// SPIR-V device-scope barriers for that, but WGSL's `storageBarrier` is
    /// workgroup-scoped and the HLSL, MSL and GLSL it becomes don't promise the visibility.
    pub fn merge_mode(&self) -> crate::attention::plan::MergeMode {
        use crate::attention::plan::MergeMode;
        match self.options.fused_merge {
            Some(true) => MergeMode::Fused,
            Some(false) => MergeMode::Dispatch,
            None if self.caps.backend == "Vulkan" => MergeMode::Auto,
            None => MergeMode::Dispatch,
        }
    }

    pub async fn new(options: Options) -> Result<Gpu> {
        let backends = match options.backend {
            Some(b) => b.to_wgpu(),
            None => wgpu::Backends::all(),
        };
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| {
                Error::NoAdapter(format!(
                    "{} ({e}); on Linux install mesa-vulkan-drivers and libvulkan1 (lavapipe) or a GPU driver",
                    match options.backend {
                        Some(b) => format!("no {b:?} adapter found"),
                        None => "no adapter found on any backend".to_string(),
                    }
                ))
            })?;
        let info = adapter.get_info();
        let feats = adapter.features();
        let limits = adapter.limits();
        let mut caps = Caps {
            adapter: info.name.clone(),
            backend: format!("{:?}", info.backend),
            driver: format!("{} {}", info.driver, info.driver_info),
            has_f16: feats.contains(wgpu::Features::SHADER_F16),
            has_subgroups: feats.contains(wgpu::Features::SUBGROUP),
            subgroup_min: info.subgroup_min_size,
            subgroup_max: info.subgroup_max_size,
            has_timestamps: feats.contains(wgpu::Features::TIMESTAMP_QUERY),
            max_storage_binding: limits.max_storage_buffer_binding_size as u64,
            max_buffer: limits.max_buffer_size,
            max_workgroups_per_dim: limits.max_compute_workgroups_per_dimension,
            uniform_align: limits.min_uniform_buffer_offset_alignment,
            cpu_adapter: info.device_type == wgpu::DeviceType::Cpu,
        };
        let variant = Variant {
            f16: pick("f16", options.f16, caps.has_f16)?,
            subgroups: pick("subgroups", options.subgroups, caps.has_subgroups)?,
        };
        let mut required_features = wgpu::Features::empty();
        if variant.f16 {
            required_features |= wgpu::Features::SHADER_F16;
        }
        if variant.subgroups {
            required_features |= wgpu::Features::SUBGROUP;
        }
        if options.profile {
            let ts = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
            if !feats.contains(ts) {
                return Err(Error::Unsupported("profiling needs timestamp queries inside compute passes".into()));
            }
            required_features |= ts;
        }
        // Ask for what the adapter offers on the limits a model needs.
        let mut required_limits = wgpu::Limits::downlevel_defaults().using_resolution(limits.clone());
        required_limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size;
        required_limits.max_buffer_size = limits.max_buffer_size;
        required_limits.max_storage_buffers_per_shader_stage = limits.max_storage_buffers_per_shader_stage.min(8);
        required_limits.max_compute_workgroup_size_x = limits.max_compute_workgroup_size_x.min(256);
        required_limits.max_compute_invocations_per_workgroup = limits.max_compute_invocations_per_workgroup.min(256);
        required_limits.max_compute_workgroup_storage_size = limits.max_compute_workgroup_storage_size.min(16384);
        required_limits.max_compute_workgroups_per_dimension = limits.max_compute_workgroups_per_dimension;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("aura"),
                required_features,
                required_limits,
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Gpu { kernel: "request_device".into(), message: e.to_string() })?;
        // Offsets must respect the device's limit, which may be coarser than the adapter's.
        caps.uniform_align = device.limits().min_uniform_buffer_offset_alignment;
        log::info!("aura: adapter {} ({}), variant {variant:?}", caps.adapter, caps.backend);
        Ok(Gpu(Arc::new(GpuInner { device, queue, caps, variant, options, registry: registry::Registry::default() })))
    }

    /// Storage buffer initialised from bytes.
    pub fn buffer_init(&self, label: &str, bytes: &[u8], usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        self.check_size(label, bytes.len() as u64)?;
        // wgpu needs a non-zero, 4-byte multiple size.
        let size = (bytes.len() as u64).max(4).div_ceil(4) * 4;
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: usage | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: true,
        });
        {
            let mut view = buf
                .slice(..)
                .get_mapped_range_mut()
                .map_err(|e| Error::Gpu { kernel: label.to_string(), message: e.to_string() })?;
            view.slice(..bytes.len()).copy_from_slice(bytes);
        }
        buf.unmap();
        Ok(buf)
    }

    /// Zeroed storage buffer.
    pub fn buffer(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        self.check_size(label, size)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(4).div_ceil(4) * 4,
            usage: usage | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        }))
    }

    fn check_size(&self, label: &str, size: u64) -> Result<()> {
        if size > self.caps.max_storage_binding || size > self.caps.max_buffer {
            return Err(Error::Unsupported(format!(
                "buffer `{label}` needs {size} bytes; the adapter binds at most {} bytes",
                self.caps.max_storage_binding.min(self.caps.max_buffer)
            )));
        }
        Ok(())
    }

    /// Copy `size` bytes from `src` at `offset` back to the host.
    pub async fn read(&self, src: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(src, offset, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        self.map_read(&staging).await
    }

    /// Map a MAP_READ buffer after its copy was submitted and return its bytes.
    pub async fn map_read(&self, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
        self.map_read_range(staging, staging.size()).await
    }

    /// Map the first `size` bytes of a MAP_READ buffer and return them.
    pub async fn map_read_range(&self, staging: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
        self.map_read_after(staging, size, None).await
    }

    /// `map_read_range` once submission `after` (the one that filled `staging`) is done,
    /// waiting for nothing submitted later: work queued behind it keeps the GPU busy while
    /// the host reads (and records more). None: wait for every submission so far.
    pub async fn map_read_after(
        &self,
        staging: &wgpu::Buffer,
        size: u64,
        after: Option<wgpu::SubmissionIndex>,
    ) -> Result<Vec<u8>> {
        let (tx, rx) = futures::channel::oneshot::channel();
        staging.slice(..size).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::Wait { submission_index: after, timeout: None })
            .map_err(|e| Error::Gpu { kernel: "readback".into(), message: e.to_string() })?;
        #[cfg(target_arch = "wasm32")]
        let _ = after;
        rx.await
            .map_err(|_| Error::Gpu { kernel: "readback".into(), message: "device lost".into() })?
            .map_err(|e| Error::Gpu { kernel: "readback".into(), message: e.to_string() })?;
        let data = staging
            .slice(..size)
            .get_mapped_range()
            .map_err(|e| Error::Gpu { kernel: "readback".into(), message: e.to_string() })?
            .to_vec();
        staging.unmap();
        Ok(data)
    }

    /// Run `f` and turn any validation error it raised into an `Error::Gpu` naming `kernel`.
    pub async fn checked<T>(&self, kernel: &str, f: impl FnOnce() -> T) -> Result<T> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        match scope.pop().await {
            None => Ok(out),
            Some(e) => Err(Error::Gpu { kernel: kernel.to_string(), message: e.to_string() }),
        }
    }
}

fn pick(what: &str, forced: Option<bool>, available: bool) -> Result<bool> {
    match forced {
        Some(true) if !available => {
            Err(Error::Unsupported(format!("{what} was forced on but the adapter does not support it")))
        }
        Some(v) => Ok(v),
        None => Ok(available),
    }
}

/// Backend names accepted on the command line, for help texts.
pub const BACKEND_NAMES: &str = "vulkan|metal|dx12|gl|webgpu";

#[allow(dead_code)]
fn _assert_send_sync() {
    fn f<T: Send + Sync>() {}
    #[cfg(not(target_arch = "wasm32"))]
    f::<Gpu>();
    let _ = Backend::Vulkan;
}

/// `Options::fused_oproj`'s default bound on n_heads x hidden: the token's last workgroup
/// sums that many floats alone (at Llama-1B's 32 x 2048 the fold lost 2-6 %).
pub const FUSED_OPROJ_MAX: usize = 16384;
