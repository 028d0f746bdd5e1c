//! Kernel registry: composes WGSL sources (header + shared snippets + kernel) and
//! caches compute pipelines keyed by kernel, weight type, variant and constants.
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::{Gpu, Variant};
use crate::error::{Error, Result};
use crate::model::tensor::WeightType;

/// One entry per kernel family; the stem names the WGSL file, entry point and label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Embed,
    RmsNorm,
    Matvec,
    Matmul,
    RopeKv,
    AttnDecode,
    AttnMerge,
    AttnMergeOproj,
    SiluMul,
    KvEncodeAura,
    KvDequantAura,
    AttnDecodeAura,
    MatvecNorm,
    MatvecGlu,
    Argmax,
}

/// Binding kinds of group 0, in binding order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    Uniform,
    Read,
    ReadWrite,
}

use Bind::*;

/// A kernel source file (path under `wgsl/`): the copy built in, or, on native builds with
/// the environment variable `AURA_WGSL_DIR` set, that directory's file of the same path
/// where it has one (kernel experiments, timing cuts, without a rebuild; read when a
/// pipeline is composed). Unset (always on wasm32): the built-in copy.
macro_rules! wgsl {
    ($path:literal) => {
        wgsl_source($path, include_str!(concat!("../../../wgsl/", $path)))
    };
}

#[cfg_attr(target_arch = "wasm32", allow(unused_variables))]
fn wgsl_source(path: &str, builtin: &'static str) -> Cow<'static, str> {
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(dir) = std::env::var_os("AURA_WGSL_DIR") {
        let dir = std::path::Path::new(&dir);
        // A mistyped directory would run the built-in kernels under an experiment's name.
        assert!(dir.is_dir(), "AURA_WGSL_DIR={} is not a directory", dir.display());
        return wgsl_source_in(dir, path, builtin);
    }
    Cow::Borrowed(builtin)
}

/// `dir`'s file at `path` where it has one (logged, as every composed pipeline then runs
/// code that is not the built-in kernel), else the built-in copy.
#[cfg(not(target_arch = "wasm32"))]
fn wgsl_source_in(dir: &std::path::Path, path: &str, builtin: &'static str) -> Cow<'static, str> {
    let file = dir.join(path);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            log::warn!("AURA_WGSL_DIR: {} instead of the built-in wgsl/{path}", file.display());
            Cow::Owned(text)
        }
        Err(_) => Cow::Borrowed(builtin),
    }
}

impl Kernel {
    pub const ALL: [Kernel; 15] = [
        Kernel::Argmax,
        Kernel::MatvecNorm,
        Kernel::MatvecGlu,
        Kernel::KvEncodeAura,
        Kernel::KvDequantAura,
        Kernel::AttnDecodeAura,
        Kernel::Embed,
        Kernel::RmsNorm,
        Kernel::Matvec,
        Kernel::Matmul,
        Kernel::RopeKv,
        Kernel::AttnDecode,
        Kernel::AttnMerge,
        Kernel::AttnMergeOproj,
        Kernel::SiluMul,
    ];

    pub fn stem(self) -> &'static str {
        match self {
            Kernel::Embed => "embed",
            Kernel::RmsNorm => "rmsnorm",
            Kernel::Matvec => "matvec",
            Kernel::Matmul => "matmul",
            Kernel::RopeKv => "rope_kv",
            Kernel::AttnDecode => "attn_decode",
            Kernel::AttnMerge => "attn_merge",
            Kernel::AttnMergeOproj => "attn_merge_oproj",
            Kernel::SiluMul => "silu_mul",
            Kernel::KvEncodeAura => "kv_encode_aura",
            Kernel::KvDequantAura => "kv_dequant_aura",
            Kernel::AttnDecodeAura => "attn_decode_aura",
            Kernel::MatvecNorm => "matvec_norm",
            Kernel::MatvecGlu => "matvec_glu",
            Kernel::Argmax => "argmax",
        }
    }

    fn body(self) -> Cow<'static, str> {
        match self {
            Kernel::Embed => wgsl!("embed.wgsl"),
            Kernel::RmsNorm => wgsl!("rmsnorm.wgsl"),
            Kernel::Matvec => wgsl!("matvec.wgsl"),
            Kernel::Matmul => wgsl!("matmul.wgsl"),
            Kernel::RopeKv => wgsl!("rope_kv.wgsl"),
            Kernel::AttnDecode => wgsl!("attn_decode.wgsl"),
            Kernel::AttnMerge => wgsl!("attn_merge.wgsl"),
            Kernel::AttnMergeOproj => wgsl!("attn_merge_oproj.wgsl"),
            Kernel::SiluMul => wgsl!("silu_mul.wgsl"),
            Kernel::KvEncodeAura => wgsl!("kv_encode_aura.wgsl"),
            Kernel::KvDequantAura => wgsl!("kv_dequant_aura.wgsl"),
            Kernel::AttnDecodeAura => wgsl!("attn_decode_aura.wgsl"),
            Kernel::MatvecNorm => wgsl!("matvec_norm.wgsl"),
            Kernel::MatvecGlu => wgsl!("matvec_glu.wgsl"),
            Kernel::Argmax => wgsl!("argmax.wgsl"),
        }
    }

    /// Group-0 bindings, matching the `@binding` order in the WGSL file.
    pub fn bindings(self) -> &'static [Bind] {
        match self {
            // params, weights, tokens, out
            Kernel::Embed => &[Uniform, Read, Read, ReadWrite],
            // params, x, weight, out
            Kernel::RmsNorm => &[Uniform, Read, Read, ReadWrite],
            // params, weights, x, y, next kernel's weights (L2 prefetch)
            Kernel::Matvec => &[Uniform, Read, Read, ReadWrite, Read],
            // params, weights, x, y
            Kernel::Matmul => &[Uniform, Read, Read, ReadWrite],
            // params, q, k, v (read only, but writable: a range of q's buffer), k_cache, v_cache,
            // cos/sin table
            Kernel::RopeKv => &[Uniform, ReadWrite, ReadWrite, ReadWrite, ReadWrite, ReadWrite, Read],
            // params, q, k_cache, v_cache, att (out, then partial o), partial_ml + counters,
            // the layer's post-attention weights (L2 prefetch)
            Kernel::AttnDecode => &[Uniform, Read, Read, Read, ReadWrite, ReadWrite, Read],
            // params, partial_ml + counters, att (out, then partial o), AURA consts (V signs),
            // the layer's post-attention weights (L2 prefetch)
            Kernel::AttnMerge => &[Uniform, ReadWrite, ReadWrite, Read, Read],
            // the same, then Wo, the residual x (accumulated onto), the per-head slices
            Kernel::AttnMergeOproj => &[Uniform, ReadWrite, ReadWrite, Read, Read, Read, ReadWrite, ReadWrite],
            // params, gate, up, out
            Kernel::SiluMul => &[Uniform, Read, Read, ReadWrite],
            // params [K, V], k, words, gammas, consts (signs + codebooks + key means), RoPE table, v,
            // the layer's post-attention weights (L2 prefetch)
            Kernel::KvEncodeAura => &[Uniform, Read, ReadWrite, ReadWrite, Read, Read, Read, Read],
            // params, words, gammas, consts, dense mirror, RoPE table
            Kernel::KvDequantAura => &[Uniform, Read, Read, Read, ReadWrite, Read],
            // params, q|k|v, words, gammas, consts, att (out, then partial o), partial_ml +
            // counters, RoPE table, the layer's post-attention weights (L2 prefetch); words and
            // gammas are read_write with the fused encode (`PipelineKey::bindings`)
            Kernel::AttnDecodeAura => &[Uniform, Read, Read, Read, Read, ReadWrite, ReadWrite, Read, Read],
            // params, stacked weights, x, norm weight, y0, y1 (or k cache), y2 (or v cache), RoPE
            // table, next kernel's weights (L2 prefetch)
            Kernel::MatvecNorm => &[Uniform, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read, Read],
            // params, stacked gate|up weights, x, norm weight, act, next kernel's weights
            Kernel::MatvecGlu => &[Uniform, Read, Read, Read, ReadWrite, Read],
            // params, logits, tokens, ids
            Kernel::Argmax => &[Uniform, Read, ReadWrite, ReadWrite],
        }
    }

    /// Whether the kernel uses the shared Walsh-Hadamard snippet (on its array `fw`).
    pub fn uses_fwht(self) -> bool {
        matches!(
            self,
            Kernel::KvEncodeAura
                | Kernel::KvDequantAura
                | Kernel::AttnDecodeAura
                | Kernel::AttnMerge
                | Kernel::AttnMergeOproj
        )
    }

    /// Whether the kernel turns merged AURA rows back (`common/unrotate.wgsl`, on `fw`).
    pub fn unrotates(self) -> bool {
        matches!(self, Kernel::AttnDecodeAura | Kernel::AttnMerge | Kernel::AttnMergeOproj)
    }

    /// Whether the kernel includes the split-K merge (`common/merge.wgsl`).
    pub fn merges(self) -> bool {
        matches!(self, Kernel::AttnDecode | Kernel::AttnDecodeAura | Kernel::AttnMerge | Kernel::AttnMergeOproj)
    }

    /// Whether the kernel prefetches weights into L2 (`common/prefetch.wgsl`): the next
    /// kernel's (projections) or the layer's post-attention ones (dense and AURA attention,
    /// the AURA encoder, the merge).
    pub fn prefetches(self) -> bool {
        matches!(
            self,
            Kernel::Matvec
                | Kernel::MatvecNorm
                | Kernel::MatvecGlu
                | Kernel::AttnDecode
                | Kernel::AttnDecodeAura
                | Kernel::AttnMerge
                | Kernel::AttnMergeOproj
                | Kernel::KvEncodeAura
        )
    }

    /// Whether the kernel reads a weight matrix through the quant snippet.
    pub fn takes_weights(self) -> bool {
        matches!(
            self,
            Kernel::Embed
                | Kernel::Matvec
                | Kernel::Matmul
                | Kernel::MatvecNorm
                | Kernel::MatvecGlu
                | Kernel::AttnMergeOproj
        )
    }
}

/// Everything that makes a pipeline distinct.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    pub kernel: Kernel,
    pub weight: Option<WeightType>,
    pub variant: Variant,
    /// Shape constants injected as WGSL `const`s so loops unroll.
    pub consts: Vec<(&'static str, u32)>,
}

impl PipelineKey {
    /// A shape constant's value, if the key has it.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.consts.iter().find(|c| c.0 == name).map(|c| c.1)
    }

    /// Whether attn_decode_aura encodes the step's new row itself (and writes the cache).
    fn aura_encodes(&self) -> bool {
        self.kernel == Kernel::AttnDecodeAura && self.get("ENC").unwrap_or(0) != 0
    }

    /// Group-0 bindings of this key's module: the kernel's, with attn_decode_aura's words and
    /// gammas writable when it encodes.
    pub fn bindings(&self) -> Vec<Bind> {
        let mut b = self.kernel.bindings().to_vec();
        if self.aura_encodes() {
            b[2] = Bind::ReadWrite;
            b[3] = Bind::ReadWrite;
        }
        b
    }
}

pub struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout0: wgpu::BindGroupLayout,
    pub label: String,
}

#[derive(Default)]
pub struct Registry {
    cache: Mutex<HashMap<PipelineKey, Arc<Pipeline>>>,
    step_layout: OnceLock<wgpu::BindGroupLayout>,
}

/// Per-step uniform (group 1, dynamic offset): what changes every step. A step runs
/// `n_tokens` consecutive tokens (1 when decoding, a chunk when prefilling); token t
/// of the step sits at position `pos + t` and attends to `kv_len + t` cache rows.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepUniform {
    /// Position of the step's first token.
    pub pos: u32,
    /// Cache rows the first token attends to (pos + 1).
    pub kv_len: u32,
    /// First token / logits row of this step in the token and logits buffers.
    pub slot: u32,
    /// Split-K blocks for 2-pass attention (for the step's last token).
    pub n_blocks: u32,
    /// Tokens in this step (>= 1).
    pub n_tokens: u32,
    pub _pad: [u32; 3],
}

impl Default for StepUniform {
    /// A one-token step at position 0 (`n_tokens` is never 0: kernels compute `n_tokens - 1`).
    fn default() -> Self {
        StepUniform { pos: 0, kv_len: 1, slot: 0, n_blocks: 0, n_tokens: 1, _pad: [0; 3] }
    }
}

impl StepUniform {
    /// A one-token step at `pos`.
    pub fn single(pos: u32) -> StepUniform {
        StepUniform { pos, kv_len: pos + 1, ..Default::default() }
    }
}

/// Bytes of the step uniform.
pub const STEP_BYTES: u64 = std::mem::size_of::<StepUniform>() as u64;

const STEP_WGSL: &str = "struct Step { pos: u32, kv_len: u32, slot: u32, n_blocks: u32, n_tokens: u32, _p0: u32, _p1: u32, zero: u32 }\n@group(1) @binding(0) var<uniform> step: Step;\n";

/// Compose the full WGSL module for a key. Pure, so tests can validate every variant with naga.
pub fn compose(key: &PipelineKey) -> String {
    let mut s = String::new();
    if key.variant.f16 {
        s.push_str("enable f16;\n");
    }
    // No `enable subgroups;`: naga 30 rejects the directive and enables subgroup
    // builtins from the device feature instead.
    s.push_str(if key.variant.f16 { "alias kv_t = f16;\n" } else { "alias kv_t = f32;\n" });
    for (name, v) in &key.consts {
        s.push_str(&format!("const {name}: u32 = {v}u;\n"));
        if *name == "KV_OUT" {
            // The element type of matvec_norm's y1/y2: the KV cache's, or f32 scratch.
            s.push_str(if *v != 0 { "alias y12_t = kv_t;\n" } else { "alias y12_t = f32;\n" });
        }
    }
    s.push_str(STEP_WGSL);
    s.push_str(&if key.variant.subgroups {
        wgsl!("common/reduce_subgroup.wgsl")
    } else {
        wgsl!("common/reduce_workgroup.wgsl")
    });
    if key.kernel.prefetches() {
        s.push_str(&wgsl!("common/prefetch.wgsl"));
    }
    if key.kernel.merges() {
        s.push_str(&wgsl!("common/merge.wgsl"));
    }
    if key.kernel.uses_fwht() {
        s.push_str(&wgsl!("common/fwht.wgsl"));
    }
    if key.kernel.unrotates() {
        s.push_str(&wgsl!("common/unrotate.wgsl"));
    }
    if let Some(w) = key.weight {
        s.push_str(&wgsl!("common/quant_common.wgsl"));
        s.push_str(&match w {
            WeightType::F32 => wgsl!("common/quant_f32.wgsl"),
            WeightType::F16 => wgsl!("common/quant_f16.wgsl"),
            WeightType::BF16 => wgsl!("common/quant_bf16.wgsl"),
            WeightType::Q8_0 => wgsl!("common/quant_q8_0.wgsl"),
            WeightType::Q4_0 => wgsl!("common/quant_q4_0.wgsl"),
            WeightType::Q4_1 => wgsl!("common/quant_q4_1.wgsl"),
        });
    }
    if key.aura_encodes() {
        // The fused encode writes the new row into the packed cache.
        let body = key.kernel.body();
        let rw = body
            .replace("var<storage, read> words:", "var<storage, read_write> words:")
            .replace("var<storage, read> gammas:", "var<storage, read_write> gammas:");
        assert_ne!(rw, *body, "attn_decode_aura declares words and gammas read-only");
        s.push_str(&wgsl!("common/aura_enc_store.wgsl"));
        s.push_str(&rw);
    } else {
        if key.kernel == Kernel::AttnDecodeAura {
            s.push_str("fn enc_store(row: u32, g: vec2<f32>, lid: u32) {}\n");
        }
        s.push_str(&key.kernel.body());
    }
    s
}

/// `Options::empty_kernels`: the module with its entry point returning at once (under a
/// condition the compiler cannot fold, so every binding stays in use).
pub fn empty_kernel(source: &str) -> String {
    let c = source.find("@compute").expect("a compute entry point");
    let body = c + source[c..].find('{').expect("the entry point's body") + 1;
    let mut s = source.to_string();
    s.insert_str(body, " if (step.zero == 0u) { return; }");
    s
}

impl Registry {
    /// Group 1's bind group over a buffer of step uniforms (bound with dynamic offsets).
    pub fn step_bind_group(&self, device: &wgpu::Device, steps: &wgpu::Buffer) -> wgpu::BindGroup {
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("step"),
            layout: self.step_layout(device),
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: steps,
                    offset: 0,
                    size: wgpu::BufferSize::new(STEP_BYTES),
                }),
            }],
        })
    }

    pub fn step_layout(&self, device: &wgpu::Device) -> &wgpu::BindGroupLayout {
        self.step_layout.get_or_init(|| {
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("step"),
                entries: &[wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: wgpu::BufferSize::new(std::mem::size_of::<StepUniform>() as u64),
                    },
                    count: None,
                }],
            })
        })
    }
}

impl Gpu {
    /// Get (or build) the pipeline for a key.
    pub async fn pipeline(&self, key: &PipelineKey) -> Result<Arc<Pipeline>> {
        if let Some(p) = self.registry.cache.lock().unwrap().get(key) {
            return Ok(p.clone());
        }
        let stem = key.kernel.stem();
        let mut label = match key.weight {
            Some(w) => format!("{stem}:{}", w.name()),
            None => stem.to_string(),
        };
        if let Some(k) = key.get("K") {
            label.push_str(&format!("[K={k}]"));
        }
        if key.aura_encodes() {
            label.push_str("+encode");
        }
        let device = &self.device;
        let entries: Vec<wgpu::BindGroupLayoutEntry> = key
            .bindings()
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match b {
                        Uniform => wgpu::BufferBindingType::Uniform,
                        Read => wgpu::BufferBindingType::Storage { read_only: true },
                        ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let source = if self.options.empty_kernels { empty_kernel(&compose(key)) } else { compose(key) };
        let built = self
            .checked(&label, || {
                let layout0 = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(&label),
                    entries: &entries,
                });
                let step = self.registry.step_layout(device);
                let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(&label),
                    bind_group_layouts: &[Some(&layout0), Some(step)],
                    immediate_size: 0,
                });
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(&label),
                    source: wgpu::ShaderSource::Wgsl(source.as_str().into()),
                };
                let checks = self.options.shader_checks;
                let module = if checks {
                    device.create_shader_module(desc)
                } else {
                    // SAFETY: our kernels index inside their bindings by construction (rows
                    // and tokens clamped, caches sized by the session), bound every loop by a
                    // constant or a uniform, and write workgroup memory before reading it
                    // (`Options::shader_checks`; the tests run with checks on and off).
                    unsafe { device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
                };
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&label),
                    layout: Some(&layout),
                    module: &module,
                    entry_point: Some(stem),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        zero_initialize_workgroup_memory: checks,
                        ..Default::default()
                    },
                    cache: None,
                });
                Pipeline { pipeline, layout0, label: label.clone() }
            })
            .await
            .map_err(|e| match e {
                Error::Gpu { kernel, message } => {
                    Error::Gpu { kernel, message: format!("pipeline build failed: {message}") }
                }
                other => other,
            })?;
        let p = Arc::new(built);
        self.registry.cache.lock().unwrap().insert(key.clone(), p.clone());
        Ok(p)
    }

    /// Bind group for group 0 of a pipeline: whole buffers in binding order.
    pub fn bind(&self, p: &Pipeline, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        self.bind_resources(p, buffers.iter().map(|b| b.as_entire_binding()).collect())
    }

    /// `bind` with any resources, e.g. a weight matrix's range of a shared buffer.
    pub fn bind_resources(&self, p: &Pipeline, res: Vec<wgpu::BindingResource<'_>>) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = res
            .into_iter()
            .enumerate()
            .map(|(i, resource)| wgpu::BindGroupEntry { binding: i as u32, resource })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&p.label),
            layout: &p.layout0,
            entries: &entries,
        })
    }
}

impl Gpu {
    /// Run one kernel once outside a session (tests, benches): group 0 gets a params
    /// uniform followed by `buffers` in binding order, group 1 the given step uniform.
    pub async fn run_once(
        &self,
        key: &PipelineKey,
        params: &[u8],
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
        step: StepUniform,
    ) -> Result<()> {
        let p = self.pipeline(key).await?;
        let params = self.buffer_init("params", params, wgpu::BufferUsages::UNIFORM)?;
        let align = self.caps.uniform_align as u64;
        let mut step_bytes = vec![0u8; align.max(STEP_BYTES) as usize];
        step_bytes[..STEP_BYTES as usize].copy_from_slice(bytemuck::bytes_of(&step));
        let step_buf = self.buffer_init("step", &step_bytes, wgpu::BufferUsages::UNIFORM)?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut res = vec![&params];
        res.extend(buffers.iter().copied());
        let bind = self.bind(&p, &res);
        let step_bg = self.registry.step_bind_group(&self.device, &step_buf);
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&p.pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.set_bind_group(1, &step_bg, &[0]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        self.queue.submit([enc.finish()]);
        if let Some(e) = scope.pop().await {
            return Err(Error::Gpu { kernel: p.label.clone(), message: e.to_string() });
        }
        Ok(())
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// AURA_WGSL_DIR's lookup: a file the directory has replaces the built-in source, one it
    /// lacks (or no such directory) leaves the built-in copy.
    #[test]
    fn wgsl_dir_overrides_only_the_files_it_has() {
        let dir = std::env::temp_dir().join(format!("aura-wgsl-dir-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("common")).unwrap();
        std::fs::write(dir.join("common/fwht.wgsl"), "// experiment\n").unwrap();
        let builtin = include_str!("../../../wgsl/common/fwht.wgsl");
        assert_eq!(wgsl_source_in(&dir, "common/fwht.wgsl", builtin), "// experiment\n");
        let merge = include_str!("../../../wgsl/common/merge.wgsl");
        assert!(matches!(wgsl_source_in(&dir, "common/merge.wgsl", merge), Cow::Borrowed(m) if m == merge));
        let none = dir.join("absent");
        assert!(matches!(wgsl_source_in(&none, "common/fwht.wgsl", builtin), Cow::Borrowed(b) if b == builtin));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
