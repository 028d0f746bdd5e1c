//! Engine and session options. Every variant the engine can pick is forceable here.
use crate::error::{Error, Result};

/// Graphics API to run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Vulkan,
    Metal,
    Dx12,
    Gl,
    WebGpu,
}

impl Backend {
    pub fn parse(s: &str) -> Result<Backend> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "vulkan" | "vk" => Backend::Vulkan,
            "metal" => Backend::Metal,
            "dx12" | "d3d12" => Backend::Dx12,
            "gl" | "gles" | "opengl" => Backend::Gl,
            "webgpu" | "browser" => Backend::WebGpu,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown backend `{other}` (expected vulkan, metal, dx12, gl or webgpu)"
                )))
            }
        })
    }

    pub(crate) fn to_wgpu(self) -> wgpu::Backends {
        match self {
            Backend::Vulkan => wgpu::Backends::VULKAN,
            Backend::Metal => wgpu::Backends::METAL,
            Backend::Dx12 => wgpu::Backends::DX12,
            Backend::Gl => wgpu::Backends::GL,
            Backend::WebGpu => wgpu::Backends::BROWSER_WEBGPU,
        }
    }
}

/// Which attention decode path to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AttentionPath {
    /// Let the plan predicate choose from Caps and kv_len.
    #[default]
    Auto,
    SinglePass,
    /// Split-K: pass 1 over blocks of `block` tokens, pass 2 merges. `block == 0`
    /// picks the measured default for the cache scheme.
    TwoPass {
        block: u32,
    },
    /// Compressed caches only: dequantize new rows into a dense mirror and run dense
    /// attention (an explicit A/B path, never chosen automatically).
    Mirror,
}

impl AttentionPath {
    pub fn parse(s: &str) -> Result<AttentionPath> {
        let s = s.to_ascii_lowercase();
        if s == "auto" {
            return Ok(AttentionPath::Auto);
        }
        if s == "single" || s == "single-pass" {
            return Ok(AttentionPath::SinglePass);
        }
        if s == "mirror" {
            return Ok(AttentionPath::Mirror);
        }
        if s == "two-pass" || s == "2pass" || s == "two" {
            return Ok(AttentionPath::TwoPass { block: 0 });
        }
        if let Some(b) = s.strip_prefix("two-pass:") {
            if let Ok(block) = b.parse::<u32>() {
                if crate::attention::plan::valid_split_block(block) {
                    return Ok(AttentionPath::TwoPass { block });
                }
            }
        }
        Err(Error::InvalidArgument(format!(
            "unknown attention path `{s}` (expected auto, single, two-pass, two-pass:BLOCK with BLOCK 16, 32 or a multiple of 64, or mirror)"
        )))
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Force a backend; `None` lets wgpu pick the best adapter.
    pub backend: Option<Backend>,
    /// Force f16 storage/arithmetic on (`Some(true)`, error if unsupported) or off.
    pub f16: Option<bool>,
    /// Force subgroup reductions on (error if unsupported) or off (workgroup memory).
    pub subgroups: Option<bool>,
    /// Attention decode path.
    pub attention: AttentionPath,
    /// KV cache scheme for new sessions (dense f16 or AURA-compressed).
    pub kv: crate::kv::scheme::KvScheme,
    /// Opt-in: raise K to 8 bits when the GQA group is >= 6 (never applied by default).
    pub auto_asymmetric_k: bool,
    /// AURA key centering (default on): subtract each (layer, KV head)'s mean key,
    /// calibrated once per model, before encoding. Exact: every attention score shifts
    /// by the same q . mu, which softmax ignores; the quantizer covers a smaller norm.
    pub aura_key_centering: bool,
    /// Key centering's score term through a fit (default on): in split-K blocks of one
    /// 64-row tile, the RoPE pairs whose angle moves little over the tile (for SmolLM2 22 of
    /// its 32) add their share of q . R_pos mu through one degree-7 polynomial per query head
    /// (`kv::centering`: within 5e-7 of each pair's cosine and sine, the angles' f32
    /// rounding level), the others exactly; off: every pair exactly.
    pub aura_centering_fit: bool,
    /// Opt-in: key centering's mean on the slow RoPE pairs only, zero on the pairs that
    /// `kv::centering`'s fit leaves exact (the fastest, SmolLM2's 0 .. 9: at least 0.03 rad
    /// per position), so the score term skips them (`kernels::aura_centering_cz`). H100
    /// decode +0.4 % at depth 4096, +0.7-2 % at 16384; but on the real SmolLM2 (GPL-3, 10
    /// windows of 512) aura4v4's mean KLD 0.0396 against 0.0351 and ΔPPL +5.6 % against
    /// +2.65 % with the mean on every pair (aura8v4 0.0057 against 0.0058): README,
    /// session 15. Off (default): the mean on every pair.
    pub aura_centering_slow_pairs: bool,
    /// Decode steps fold the RMSNorms into the projections that follow them (norm + q|k|v,
    /// norm + gate|up + SwiGLU, final norm + LM head: 3 dispatches instead of 9 per layer
    /// pair) when the stacked matrices share a type. Off: separate dispatches.
    pub fused: bool,
    /// Attention workgroups (dense and AURA): `Some(true)` one query head each (n_heads
    /// workgroups, every one reading its KV head's rows), `Some(false)` several heads of a
    /// GQA group each, reading the rows once for them (AURA: the whole group; dense: the
    /// largest divisor of the group up to 4, and one head for head dims past 128);
    /// `None`: one head for single-pass and fused-merge split-K (shallow contexts), a group
    /// with the merge dispatch (deep ones), but one head for AURA's one-token steps up to
    /// `plan::COMPRESSED_HEAD_MAX_BLOCKS` blocks, as measured.
    pub head_per_workgroup: Option<bool>,
    /// Prefill projection kernel: `Some(true)` the row-per-thread matmul (each thread a
    /// weight row, a serial K loop: fastest on CPU adapters), `Some(false)` the tiled
    /// matvec (4 rows x 8 tokens per workgroup, K split across threads: many more threads
    /// in flight, fastest on GPUs); `None` picks by adapter type.
    pub prefill_matmul: Option<bool>,
    /// Greedy steps queued per submission by `Session::decode_greedy` (at most
    /// `session::GREEDY_CHUNK`); 0 = auto: GREEDY_CHUNK on GPUs, 1 on CPU adapters, where
    /// queuing ahead gains nothing and the steps run past a stop token cost real time.
    pub greedy_chunk: usize,
    /// Use `msl/<stem>.metal` overrides on Metal when present.
    pub msl_overrides: bool,
    /// Keep wgpu's runtime checks in our shaders: bounds clamps on every buffer index,
    /// a counter that bounds every loop, and workgroup memory zeroed at each workgroup's
    /// start. Off by default: every kernel indexes inside its bindings by construction
    /// (clamped rows and tokens, sized caches), every loop has a constant or uniform
    /// bound, and every kernel writes its workgroup memory before reading it; the tests
    /// run both ways. WebGPU in a browser always checks, whatever this says.
    pub shader_checks: bool,
    /// L2 prefetch in decode: a layer's matrices that run after attention share a buffer
    /// (`GpuLayer::post`), which the attention dispatch loads into L2 with
    /// workgroups of its own, so the projections read L2 rather than memory; the fused LM
    /// head loads layer 0's q|k|v. `None`: on for GPUs, off for CPU adapters (where it is
    /// only extra loads).
    pub l2_prefetch: Option<bool>,
    /// Split-K attention merges in its own dispatch: the last block of each head (KV group
    /// for AURA) to finish merges the partials, counted through an atomic, so no
    /// `attn_merge` dispatch (and barrier) follows. `Some(false)`: the separate merge.
    /// `None`: per step on Vulkan, where naga's SPIR-V makes the barrier device-scoped (see
    /// `plan::MergeMode::Auto`: AURA's one-token steps take the merge dispatch, measured
    /// faster at every depth); the merge dispatch on the other backends (see
    /// `Gpu::merge_mode`).
    pub fused_merge: Option<bool>,
    /// AURA caches, one-token steps: workgroups of the attention dispatch (the first n_kv
    /// of a grid row of its own, launched last, one per KV head) encode the new row into the cache
    /// while attention runs, instead of a `kv_encode_aura` dispatch before attention: one
    /// dispatch less per layer, the same packed row (attention takes every query's own
    /// row exact, so it never waits for the encode). `None`: each attention kernel encodes
    /// where that fits its 16 KiB of workgroup memory, except for 3-bit V rows (measured
    /// slower there), the others run the encoder; `Some(true)`: every one-token step
    /// encodes inside attention, an error where it does not fit; `Some(false)`: the
    /// encoder dispatch. Multi-token (prefill) steps always run the encoder.
    pub aura_fused_encode: Option<bool>,
    /// One-token steps whose split-K attention merges in a dispatch of its own: that merge
    /// dispatch also applies the output projection (`attn_merge_oproj`: each of a query
    /// head's workgroups merges the head's partials and multiplies the row by its share of
    /// the head's columns of Wo; the token's last workgroup to finish adds the heads' slices
    /// onto the residual, in head order), so the o-projection needs no dispatch of its own.
    /// Needs a head_dim that is a multiple of 64. `None`: on for Vulkan (the last-to-finish
    /// count is the fused merge's, see `fused_merge`) where the heads' slices are small
    /// (n_heads x hidden <= 16384, as SmolLM2's 9 x 576) and the head_dim allows, off
    /// elsewhere; `Some(true)` forces it (an error at other head dims), `Some(false)` keeps
    /// the o-projection's dispatch.
    pub fused_oproj: Option<bool>,
    /// GPU timestamps between the stages of every step (needs timestamp queries
    /// inside passes; an error where the adapter lacks them). Off: no cost.
    pub profile: bool,
    /// Measurement only: every kernel returns as soon as it starts, so a step costs only its
    /// dispatches, barriers and recording (outputs are garbage). `bench --empty-kernels`
    /// times this floor against the real step.
    pub empty_kernels: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend: None,
            f16: None,
            subgroups: None,
            attention: AttentionPath::Auto,
            kv: crate::kv::scheme::KvScheme::F16,
            auto_asymmetric_k: false,
            aura_key_centering: true,
            aura_centering_fit: true,
            aura_centering_slow_pairs: false,
            fused: true,
            head_per_workgroup: None,
            prefill_matmul: None,
            greedy_chunk: 0,
            msl_overrides: true,
            shader_checks: false,
            l2_prefetch: None,
            fused_merge: None,
            aura_fused_encode: None,
            fused_oproj: None,
            profile: false,
            empty_kernels: false,
        }
    }
}
