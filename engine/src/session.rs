//! A conversation: KV caches, position, scratch buffers and prebuilt bind groups.
//! Tokens are queued up to MAX_SLOTS per submission, each step in the same compute
//! pass with its own slot of the step uniform (dynamic offset).
use crate::attention::layer::{LayerAttention, Shared};
use crate::attention::plan::{self, DecodePlan};
use crate::engine::Model;
use crate::error::{Error, Result};
use crate::gpu::dispatch::{slices, uniform, AsBinding, Dispatch, PerToken};
use crate::gpu::registry::{StepUniform, STEP_BYTES};
use crate::gpu::Gpu;
use crate::kernels::*;
use crate::kv::scheme::KvScheme;
use crate::model::config::RopeStyle;
use crate::model::llama::GpuMatrix;
use crate::options::AttentionPath;
use crate::reference::ops::{rope_table, rope_table_gpu};

/// Tokens in one step (a prefill chunk): the activation and logits rows kept on the GPU.
pub const MAX_SLOTS: usize = 128;
/// Tokens in a step whose attention runs split-K (the partials are sized for this many);
/// longer steps run while the plan is single-pass. Chunks of 128 tokens halve a short
/// prompt's steps against 32 (each step pays every dispatch once).
pub const SPLIT_SLOTS: usize = 32;

#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// KV cache capacity in tokens (the row stride of the cache).
    pub capacity: usize,
    /// Attention path; defaults to the engine's option.
    pub attention: Option<AttentionPath>,
    /// KV cache scheme; defaults to the engine's option.
    pub kv: Option<KvScheme>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions { capacity: 2048, attention: None, kv: None }
    }
}

/// Greedy decode steps queued per submission (`Session::decode_greedy`).
pub const GREEDY_CHUNK: usize = 8;

/// The matvec dispatches of one layer, for decode (1 token) and prefill (token tiles).
struct Proj {
    decode: Dispatch,
    prefill: Dispatch,
}

impl Proj {
    fn run(&self, pass: &mut wgpu::ComputePass<'_>, n_tokens: u32) {
        if n_tokens == 1 { &self.decode } else { &self.prefill }.run(pass, n_tokens)
    }
}

struct LayerOps {
    attn_norm: Dispatch,
    /// q, k, v projections
    qkv: [Proj; 3],
    /// RoPE, KV cache write and attention (dense, compressed or mirror)
    attn: LayerAttention,
    /// o-proj (+= x)
    wo: Proj,
    ffn_norm: Dispatch,
    gate: Proj,
    up: Proj,
    silu: Dispatch,
    /// down (+= x)
    down: Proj,
    /// Decode (1-token steps) with the norms folded into the projections: one dispatch
    /// for norm + q|k|v and one for norm + gate|up + SwiGLU (None: separate dispatches).
    fused: Option<[Dispatch; 2]>,
    /// The fused q|k|v projection also applies RoPE and writes the dense cache.
    rope_fused: bool,
}

/// Names of the timed stages of a step, in stamp order (per-layer stages summed).
pub const PROFILE_STAGES: [&str; 6] = ["embed", "norm+qkv", "attention", "o-proj", "ffn", "final norm+lm head"];

/// GPU timestamps written between the stages of every step.
struct Profiler {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
    count: u32,
    /// Accumulated nanoseconds per stage, and steps profiled.
    totals: [f64; 6],
    steps: u64,
}

/// Dispatch classes of a decode step, as a measurement can leave them out
/// (`Session::set_ablation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// norm + q|k|v (+ RoPE and the cache write)
    Qkv,
    /// RoPE (unfused), the AURA encode, attention and its merge
    Attention,
    /// the o-projection (+= x)
    OProj,
    /// norm + gate|up + SwiGLU
    Ffn,
    /// down (+= x)
    Down,
    /// final norm + LM head
    Head,
}

impl Stage {
    pub const ALL: [Stage; 6] = [Stage::Qkv, Stage::Attention, Stage::OProj, Stage::Ffn, Stage::Down, Stage::Head];
}

pub struct Session {
    model: Model,
    profiler: Option<Profiler>,
    /// Stages left out of every step (measurement only: `set_ablation`).
    skip: Vec<Stage>,
    capacity: usize,
    pos: usize,
    scheme: KvScheme,
    /// What the plan of every step takes from the session (path, forced split block, merge
    /// mode).
    plan_inputs: plan::PlanInputs,
    tokens: wgpu::Buffer,
    steps: wgpu::Buffer,
    step_bg: wgpu::BindGroup,
    logits: wgpu::Buffer,
    staging: wgpu::Buffer,
    embed: Dispatch,
    layers: Vec<LayerOps>,
    final_norm: Dispatch,
    lm_head: Proj,
    /// Final norm folded into the LM head for 1-token steps (with `Options::fused`).
    fused_head: Option<Dispatch>,
    /// GPU greedy sampling: argmax of the step's logits into `tokens[slot]` and `ids[pos]`.
    argmax: Dispatch,
    /// Token chosen after each position, [capacity] u32 (written by `argmax`).
    ids: wgpu::Buffer,
    /// Read-back buffers for `decode_greedy`'s chunks of ids (two, used alternately).
    ids_staging: [wgpu::Buffer; 2],
    kv_bytes_per_token: u64,
}

impl Session {
    pub async fn new(model: &Model, opts: SessionOptions) -> Result<Session> {
        let gpu: &Gpu = &model.gpu;
        let c = &model.config;
        let w = &model.weights;
        let v = gpu.variant;
        let cap = opts.capacity;
        if cap == 0 {
            return Err(Error::InvalidArgument("KV capacity must be at least 1 token".into()));
        }
        let path = opts.attention.unwrap_or(gpu.options.attention);
        let mut scheme = opts.kv.unwrap_or(gpu.options.kv);
        if gpu.options.auto_asymmetric_k {
            scheme = scheme.with_auto_asymmetric_k(c.group());
        }
        // A forced split block, else adaptive (dense) or the compressed default.
        let split_block = match path {
            AttentionPath::TwoPass { block } if block > 0 => Some(block),
            _ => None,
        };
        if let Some(b) = split_block.filter(|&b| !plan::valid_split_block(b)) {
            return Err(Error::InvalidArgument(format!("split block {b} must be 16, 32 or a positive multiple of 64")));
        }
        let merge = gpu.merge_mode();
        // The most split blocks any step of this session can plan (partials are sized by it).
        let plan_inputs = plan::PlanInputs {
            scheme,
            path,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            block: split_block,
            merge,
            head_per_workgroup: gpu.options.head_per_workgroup,
        };
        let max_blocks =
            (1..=cap).map(|kv| plan::plan(&plan_inputs, kv, 1).n_blocks()).max().unwrap_or(0).max(1) as usize;
        let st = wgpu::BufferUsages::STORAGE;
        let t = MAX_SLOTS;
        let f32s = |label: &str, n: usize| gpu.buffer(label, (n * 4) as u64, st);
        let (h, qd, kvd, ffn, vocab) = (c.hidden, c.q_dim(), c.kv_dim(), c.ffn, c.vocab);
        // Activations, f32, one row per token of a step (T <= MAX_SLOTS):
        // x [T][hidden] residual stream, xn [T][hidden] normed, q [T][q_dim],
        // k/v [T][kv_dim], att [T][q_dim], gate/up/act [T][ffn], logits [T][vocab].
        let x = f32s("x", t * h)?;
        let xn = f32s("xn", t * h)?;
        // q, k and v: slices of one buffer, which the compressed attention binds whole (it
        // reads each token's own k and v rows, and its fused encode the new ones).
        let (qkv, [q, k, vv]) = slices(gpu, "qkv", [(t * qd * 4) as u64, (t * kvd * 4) as u64, (t * kvd * 4) as u64])?;
        // att [T][q_dim], then the split-K partial o [T'][n_heads][max_blocks][hd] (T' <= SPLIT_SLOTS).
        let ts = SPLIT_SLOTS;
        let att = f32s("att", t * qd + ts * c.n_heads * max_blocks * c.head_dim)?;
        let g = f32s("gate", t * ffn)?;
        let u = f32s("up", t * ffn)?;
        let act = f32s("act", t * ffn)?;
        let logits = f32s("logits", t * vocab)?;
        // Split-K (max, sum) partials [T'][n_heads][max_blocks], then a finished-block counter
        // per (token, head) at the end and one per token for the merge dispatch with the
        // output projection folded in (zeroed here; the last block resets its counter).
        let pml = f32s("attn_partial_ml", ts * c.n_heads * (max_blocks * 2 + 1) + ts)?;
        // That merge's per-head slices of the projection (one-token steps).
        let oproj_part = f32s("oproj_part", c.n_heads * h)?;
        let tokens = gpu.buffer("tokens", (t * 4) as u64, st)?;
        // One step uniform per queued greedy step (dynamic offsets); forward() uses slot 0.
        let step_stride = (gpu.caps.uniform_align as u64).max(STEP_BYTES);
        let steps = gpu.buffer("steps", step_stride * GREEDY_CHUNK as u64, wgpu::BufferUsages::UNIFORM)?;
        let step_bg = gpu.registry.step_bind_group(&gpu.device, &steps);
        let mirror = path == AttentionPath::Mirror;
        if mirror && !scheme.is_compressed() {
            return Err(Error::InvalidArgument("the dequant-mirror path needs a compressed (aura) KV scheme".into()));
        }
        let key_means =
            if scheme.is_compressed() && gpu.options.aura_key_centering { Some(key_means(model).await?) } else { None };
        let rope = rope_table_gpu(cap, c.head_dim, c.rope_theta, WG_AURA as usize);
        let rope_buf = gpu.buffer_init("rope_cos_sin", bytemuck::cast_slice(&rope), st)?;
        // L2 prefetch: dense attention (for AURA the encoder, the merge dispatch or the
        // fused-merge attention: see attention/layer.rs) loads the weights that run after
        // attention (o, gate|up, down, the next layer's q|k|v: `GpuLayer::post`) with
        // workgroups of its own, and the fused LM head loads layer 0's q|k|v for the next
        // step; the projections then read L2 and prefetch nothing (a one-word placeholder
        // binding). H200, GPU loop tok/s, against each projection prefetching the next one's
        // weights (together with the decode mat-vec's hoisted residual read): f16 1013 vs 961
        // at depth 0 (where nothing else changed), aura4v4 694 / 650 / 566 vs 675 / 637 / 558
        // at depth 0 / 4096 / 16384; on AURA's attention dispatch instead of its encoder
        // 689 / 634 / 536.
        let no_pf = f32s("no_prefetch", 1)?;
        let prefetch = gpu.l2_prefetch();
        let shared = Shared {
            gpu,
            config: c,
            scheme,
            mirror,
            capacity: cap,
            split_block,
            merge,
            max_blocks,
            q: &q,
            k: &k,
            v: &vv,
            qkv: &qkv,
            att: &att,
            po_off: (t * qd / 4) as u32,
            pml: &pml,
            rope_table: &rope_buf,
            key_means: key_means.as_ref().map(|m| m.as_slice()),
            no_prefetch: &no_pf,
            x: &x,
            oproj_part: &oproj_part,
            oproj_ctr0: (ts * c.n_heads) as u32,
        };
        let fold_oproj = gpu.fused_oproj(c.n_heads, c.head_dim, h)?;
        let embed = {
            let p = gpu.pipeline(&embed_key(v, w.embd.ty, h)).await?;
            let params = uniform(gpu, EmbedParams { rows: w.embd.rows as u32, _pad: [0; 3] })?;
            let res =
                vec![params.as_entire_binding(), w.embd.binding(), tokens.as_entire_binding(), x.as_entire_binding()];
            Dispatch::with_resources(gpu, &p, res, [((h / 8) as u32).div_ceil(WG_ROWS), 1, 1], PerToken::Axis(1))
        };
        let silu_p = gpu.pipeline(&silu_mul_key(v)).await?;
        let mut layers = Vec::with_capacity(c.n_layers);
        // Placeholders for matvec_norm's unused outputs (distinct: WebGPU forbids aliasing
        // writable bindings).
        let spare = [f32s("spare_y1", 1)?, f32s("spare_y2", 1)?];
        let spare_table = f32s("spare_rope_table", 2)?;
        let no_rope = NormRope::None(&spare_table);
        // RoPE folds into the fused q|k|v projection when a pair's two rows are adjacent
        // (GGUF's convention), so they land in one workgroup.
        let fold_rope = c.rope_style == RopeStyle::Adjacent && c.head_dim % 4 == 0;
        for (li, l) in w.layers.iter().enumerate() {
            let wo = Some(&l.wo).filter(|_| fold_oproj);
            let attn = LayerAttention::new(&shared, li, l.post.as_ref().filter(|_| prefetch), wo).await?;
            let fused = match (&l.qkv, &l.gate_up, gpu.options.fused) {
                (Some(qkv), Some(gu), true) => {
                    let (kc, vc, write_cache) = attn.rope_targets();
                    let (rope, outs): (_, [(&dyn AsBinding, usize); 3]) = match (fold_rope, write_cache) {
                        // Dense cache: k and v go straight into it.
                        (true, true) => (
                            NormRope::Fold { table: &rope_buf, kv_out: true, capacity: cap, hd: c.head_dim },
                            [(&q, qd), (kc, kvd), (vc, kvd)],
                        ),
                        // Compressed: rotated k and v to the scratch rows the encoder and
                        // attention (each token's own row) read.
                        (true, false) => (
                            NormRope::Fold { table: &rope_buf, kv_out: false, capacity: cap, hd: c.head_dim },
                            [(&q, qd), (&k, kvd), (&vv, kvd)],
                        ),
                        (false, _) => (no_rope, [(&q, qd), (&k, kvd), (&vv, kvd)]),
                    };
                    Some([
                        matvec_norm(gpu, qkv, c.rms_eps, &x, &l.attn_norm, outs, rope, &no_pf).await?,
                        matvec_glu(gpu, gu, c.rms_eps, &x, &l.ffn_norm, &act, &no_pf).await?,
                    ])
                }
                _ => None,
            };
            let silu_params = uniform(gpu, SiluMulParams { n: ffn as u32, _pad: [0; 3] })?;
            let silu_res: [&dyn AsBinding; 4] = [&silu_params, &g, &u, &act];
            layers.push(LayerOps {
                attn_norm: rms_d(gpu, c.rms_eps, h, &x, &l.attn_norm, &xn).await?,
                qkv: [
                    proj(gpu, &l.wq, &xn, &q, false, &no_pf).await?,
                    proj(gpu, &l.wk, &xn, &k, false, &no_pf).await?,
                    proj(gpu, &l.wv, &xn, &vv, false, &no_pf).await?,
                ],
                attn,
                rope_fused: fused.is_some() && fold_rope,
                wo: proj(gpu, &l.wo, &att, &x, true, &no_pf).await?,
                ffn_norm: rms_d(gpu, c.rms_eps, h, &x, &l.ffn_norm, &xn).await?,
                gate: proj(gpu, &l.gate, &xn, &g, false, &no_pf).await?,
                up: proj(gpu, &l.up, &xn, &u, false, &no_pf).await?,
                silu: Dispatch::new(gpu, &silu_p, &silu_res, [(ffn as u32).div_ceil(WG_WIDE), 1, 1], PerToken::Axis(1)),
                down: proj(gpu, &l.down, &act, &x, true, &no_pf).await?,
                fused,
            });
        }
        let ids = gpu.buffer("ids", (cap * 4) as u64, st)?;
        let argmax = {
            let p = gpu.pipeline(&argmax_key(v)).await?;
            let params = uniform(gpu, ArgmaxParams { vocab: vocab as u32, _pad: [0; 3] })?;
            Dispatch::new(gpu, &p, &[&params, &logits, &tokens, &ids], [1, 1, 1], PerToken::Axis(2))
        };
        let ids_staging = [0, 1].map(|_| {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("ids_staging"),
                size: (GREEDY_CHUNK * 4) as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        let fused_head = if gpu.options.fused {
            let outs: [(&dyn AsBinding, usize); 3] = [(&logits, vocab), (&spare[0], 0), (&spare[1], 0)];
            let pf = if prefetch { &w.pre } else { &no_pf };
            Some(matvec_norm(gpu, w.lm_head(), c.rms_eps, &x, &w.out_norm, outs, no_rope, pf).await?)
        } else {
            None
        };
        let final_norm = rms_d(gpu, c.rms_eps, h, &x, &w.out_norm, &xn).await?;
        let lm_head = proj(gpu, w.lm_head(), &xn, &logits, false, &no_pf).await?;
        let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("logits_staging"),
            size: (t * vocab * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let profiler = if gpu.options.profile {
            // Stamps: start, after embed, 4 per layer, after the head.
            let count = 3 + 4 * c.n_layers as u32;
            let size = count as u64 * 8;
            Some(Profiler {
                queries: gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("profile"),
                    ty: wgpu::QueryType::Timestamp,
                    count,
                }),
                resolve: gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("profile_resolve"),
                    size,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
                staging: gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("profile_staging"),
                    size,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                count,
                totals: [0.0; 6],
                steps: 0,
            })
        } else {
            None
        };
        Ok(Session {
            model: model.clone(),
            profiler,
            skip: Vec::new(),
            capacity: cap,
            pos: 0,
            scheme,
            plan_inputs,
            tokens,
            steps,
            step_bg,
            logits,
            staging,
            embed,
            layers,
            final_norm,
            lm_head,
            fused_head,
            argmax,
            ids,
            ids_staging,
            kv_bytes_per_token: scheme.bytes_per_token(c.n_layers, c.n_kv_heads, c.head_dim, v.f16)
                + if mirror { KvScheme::F16.bytes_per_token(c.n_layers, c.n_kv_heads, c.head_dim, v.f16) } else { 0 },
        })
    }

    /// Mean GPU milliseconds per step for each of `PROFILE_STAGES` since the last
    /// call (None unless `Options::profile`), then resets the counters.
    pub fn take_profile(&mut self) -> Option<Vec<(&'static str, f64)>> {
        let p = self.profiler.as_mut()?;
        let steps = p.steps.max(1) as f64;
        let out = PROFILE_STAGES.iter().zip(p.totals).map(|(n, ns)| (*n, ns / steps / 1e6)).collect();
        p.totals = [0.0; 6];
        p.steps = 0;
        Some(out)
    }

    /// Tokens in the KV cache.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// KV cache bytes per token of context (all layers, K and V).
    pub fn kv_bytes_per_token(&self) -> u64 {
        self.kv_bytes_per_token
    }

    /// KV cache bytes allocated for the whole capacity.
    pub fn kv_bytes_total(&self) -> u64 {
        self.kv_bytes_per_token * self.capacity as u64
    }

    /// Forget the conversation (the cache rows are simply overwritten later).
    pub fn reset(&mut self) {
        self.pos = 0;
    }

    /// Benchmarks only: pretend the first `pos` cache rows are filled (they hold
    /// whatever the buffers contain), so decode at depth can be timed without a
    /// long prefill. Output quality is meaningless after this.
    pub fn assume_filled(&mut self, pos: usize) -> Result<()> {
        if pos > self.capacity {
            return Err(Error::ContextOverflow { needed: pos, capacity: self.capacity });
        }
        self.pos = pos;
        Ok(())
    }

    /// Keep only the first `pos` cached tokens (e.g. the shared prefix of a chat).
    pub fn rewind(&mut self, pos: usize) -> Result<()> {
        if pos > self.pos {
            return Err(Error::InvalidArgument(format!("cannot rewind to {pos}: only {} tokens are cached", self.pos)));
        }
        self.pos = pos;
        Ok(())
    }

    /// The plan a one-token step whose last token sees `kv_len` cache rows would use.
    pub fn plan_for(&self, kv_len: usize) -> DecodePlan {
        self.plan_step(kv_len, 1)
    }

    /// The plan of an `n_tokens`-token step whose last token sees `kv_len` cache rows.
    fn plan_step(&self, kv_len: usize, n_tokens: usize) -> DecodePlan {
        plan::plan(&self.plan_inputs, kv_len, n_tokens)
    }

    /// Measurement only: leave these stages' dispatches out of every step from now on, so
    /// a benchmark can time what each costs inside a real step (barriers included). The
    /// outputs are then wrong; `set_ablation(&[])` restores the full step.
    pub fn set_ablation(&mut self, skip: &[Stage]) {
        self.skip = skip.to_vec();
    }

    /// The session's KV cache scheme.
    pub fn scheme(&self) -> KvScheme {
        self.scheme
    }

    /// Run `tokens` through the model at the current position, up to MAX_SLOTS tokens per
    /// step while the step's attention is single-pass, SPLIT_SLOTS when it is split-K (one
    /// submission, one compute pass each). Returns the logits rows (each `vocab` long) for
    /// tokens at index >= `logits_from`, in order.
    pub async fn forward(&mut self, tokens: &[u32], logits_from: Option<usize>) -> Result<Vec<f32>> {
        let vocab = self.model.config.vocab;
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(Error::InvalidArgument(format!("token id {bad} is outside the vocabulary of {vocab}")));
        }
        if self.pos + tokens.len() > self.capacity {
            return Err(Error::ContextOverflow { needed: self.pos + tokens.len(), capacity: self.capacity });
        }
        let from = logits_from.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let gpu = self.model.gpu.clone();
        let mut base = 0;
        while base < tokens.len() {
            // The plan is fixed for the step by its last token's kv_len.
            let mut len = (tokens.len() - base).min(MAX_SLOTS);
            if len > SPLIT_SLOTS && self.plan_step(self.pos + len, len).n_blocks() > 0 {
                len = SPLIT_SLOTS;
            }
            let plan = self.plan_step(self.pos + len, len);
            let chunk = &tokens[base..base + len];
            let n = chunk.len() as u32;
            let pos = self.pos as u32;
            let n_blocks = plan.n_blocks();
            let su = StepUniform { pos, kv_len: pos + 1, slot: 0, n_blocks, n_tokens: n, _pad: [0; 3] };
            gpu.queue.write_buffer(&self.steps, 0, bytemuck::bytes_of(&su));
            gpu.queue.write_buffer(&self.tokens, 0, bytemuck::cast_slice(chunk));
            let first_row = from.saturating_sub(base).min(chunk.len());
            let n_rows = chunk.len() - first_row;
            let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("step") });
            {
                let pass = &mut enc
                    .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("step"), timestamp_writes: None });
                pass.set_bind_group(1, &self.step_bg, &[0]);
                let mut q = 0;
                let mut stamp = |pass: &mut wgpu::ComputePass<'_>| {
                    if let Some(p) = &self.profiler {
                        pass.write_timestamp(&p.queries, q);
                        q += 1;
                    }
                };
                self.encode_step(pass, plan, n, n_rows > 0, &mut stamp);
            }
            if let Some(p) = &self.profiler {
                enc.resolve_query_set(&p.queries, 0..p.count, &p.resolve, 0);
                enc.copy_buffer_to_buffer(&p.resolve, 0, &p.staging, 0, p.count as u64 * 8);
            }
            let row_bytes = (vocab * 4) as u64;
            if n_rows > 0 {
                enc.copy_buffer_to_buffer(
                    &self.logits,
                    first_row as u64 * row_bytes,
                    &self.staging,
                    0,
                    n_rows as u64 * row_bytes,
                );
            }
            gpu.queue.submit([enc.finish()]);
            if let Some(e) = scope.pop().await {
                return Err(Error::Gpu { kernel: "step".into(), message: e.to_string() });
            }
            self.pos += chunk.len();
            base += chunk.len();
            if let Some(p) = &mut self.profiler {
                let raw = gpu.map_read(&p.staging).await?;
                let t: &[u64] = bytemuck::cast_slice(&raw);
                let period = gpu.queue.get_timestamp_period() as f64;
                let d = |i: usize| t[i + 1].saturating_sub(t[i]) as f64 * period;
                p.totals[0] += d(0);
                for l in 0..self.layers.len() {
                    // Stamp 1 + 4l closes the previous layer (or the embed); stage s of
                    // layer l runs from stamp 1 + 4l + s to the next one.
                    for s in 0..4 {
                        p.totals[1 + s] += d(1 + 4 * l + s);
                    }
                }
                p.totals[5] += d(p.count as usize - 2);
                p.steps += 1;
            }
            if n_rows > 0 {
                let bytes = gpu.map_read_range(&self.staging, n_rows as u64 * row_bytes).await?;
                out.extend_from_slice(bytemuck::cast_slice::<u8, f32>(&bytes));
            }
        }
        Ok(out)
    }

    /// Record one step's dispatches (embedding, every layer, and the head when `head`),
    /// calling `stamp` at the profiler's stage boundaries.
    fn encode_step(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        plan: DecodePlan,
        n: u32,
        head: bool,
        stamp: &mut dyn FnMut(&mut wgpu::ComputePass<'_>),
    ) {
        stamp(pass);
        // Embedding rows for the step's tokens.
        self.embed.run(pass, n);
        stamp(pass);
        let on = |st: Stage| !self.skip.contains(&st);
        for l in &self.layers {
            let fused = l.fused.as_ref().filter(|_| n == 1);
            // Attention block: norm, q/k/v, RoPE + cache write, attention, o-proj += x.
            if on(Stage::Qkv) {
                if let Some([qkv, _]) = fused {
                    qkv.run(pass, n);
                } else {
                    l.attn_norm.run(pass, n);
                    l.qkv.iter().for_each(|p| p.run(pass, n));
                }
            }
            stamp(pass);
            // The output projection may run inside attention's merge dispatch (not when the
            // ablation leaves it out: then attention runs the plain merge).
            let rope_done = fused.is_some() && l.rope_fused;
            let o_done = on(Stage::Attention) && l.attn.run(pass, plan, n, rope_done, on(Stage::OProj));
            stamp(pass);
            if on(Stage::OProj) && !o_done {
                l.wo.run(pass, n);
            }
            stamp(pass);
            // Feed-forward block: norm, gate/up, SwiGLU, down += x.
            if on(Stage::Ffn) {
                if let Some([_, glu]) = fused {
                    glu.run(pass, n);
                } else {
                    l.ffn_norm.run(pass, n);
                    l.gate.run(pass, n);
                    l.up.run(pass, n);
                    l.silu.run(pass, n);
                }
            }
            if on(Stage::Down) {
                l.down.run(pass, n);
            }
            stamp(pass);
        }
        // Final norm and LM head, only when this step's logits are wanted.
        if head && on(Stage::Head) {
            match self.fused_head.as_ref().filter(|_| n == 1) {
                Some(head) => head.run(pass, n),
                None => {
                    self.final_norm.run(pass, n);
                    self.lm_head.run(pass, n);
                }
            }
        }
        stamp(pass);
    }

    /// Greedy decoding with the sampling on the GPU: feeds `first` at the current position,
    /// then each token the GPU picks (argmax of the logits, written straight into the next
    /// step's input), without reading logits back. Steps are queued `GREEDY_CHUNK` to a
    /// submission and the chosen ids are read back a chunk behind, so the GPU never waits
    /// for the host. `on_token` sees each id as its chunk is read back (for streaming) and
    /// returns true to stop after it (that id is returned but not fed). Returns up to
    /// `max_tokens` ids. Afterwards the session holds `first` and every returned id but the
    /// last; steps queued past a stop are rewound. Equal to `step` + `sample::argmax`
    /// token by token (up to argmax ties).
    pub async fn decode_greedy(
        &mut self,
        first: u32,
        max_tokens: usize,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> Result<Vec<u32>> {
        let vocab = self.model.config.vocab;
        if first as usize >= vocab {
            return Err(Error::InvalidArgument(format!("token id {first} is outside the vocabulary of {vocab}")));
        }
        if self.pos + max_tokens > self.capacity {
            return Err(Error::ContextOverflow { needed: self.pos + max_tokens, capacity: self.capacity });
        }
        let gpu = self.model.gpu.clone();
        let start = self.pos;
        let stride = (gpu.caps.uniform_align as u64).max(STEP_BYTES);
        gpu.queue.write_buffer(&self.tokens, 0, bytemuck::bytes_of(&first));
        let mut out: Vec<u32> = Vec::with_capacity(max_tokens);
        let (mut issued, mut chunk) = (0usize, 0usize);
        let mut pending = std::collections::VecDeque::new();
        let mut stopped = false;
        let chunk_len = match gpu.options.greedy_chunk {
            0 if gpu.caps.cpu_adapter => 1,
            0 => GREEDY_CHUNK,
            n => n.min(GREEDY_CHUNK),
        };
        loop {
            if issued < max_tokens && !stopped {
                let c = (max_tokens - issued).min(chunk_len);
                let steps: Vec<(StepUniform, DecodePlan)> = (0..c)
                    .map(|i| {
                        let pos = (start + issued + i) as u32;
                        let plan = self.plan_for(pos as usize + 1);
                        let n_blocks = plan.n_blocks();
                        (StepUniform { pos, kv_len: pos + 1, slot: 0, n_blocks, n_tokens: 1, _pad: [0; 3] }, plan)
                    })
                    .collect();
                for (i, (su, _)) in steps.iter().enumerate() {
                    gpu.queue.write_buffer(&self.steps, i as u64 * stride, bytemuck::bytes_of(su));
                }
                let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
                let mut enc =
                    gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("greedy") });
                {
                    let pass = &mut enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("greedy"),
                        timestamp_writes: None,
                    });
                    for (i, (_, plan)) in steps.iter().enumerate() {
                        pass.set_bind_group(1, &self.step_bg, &[(i as u64 * stride) as u32]);
                        self.encode_step(pass, *plan, 1, true, &mut |_| {});
                        self.argmax.run(pass, 1);
                    }
                }
                let staging = &self.ids_staging[chunk % 2];
                enc.copy_buffer_to_buffer(&self.ids, ((start + issued) * 4) as u64, staging, 0, (c * 4) as u64);
                let idx = gpu.queue.submit([enc.finish()]);
                if let Some(e) = scope.pop().await {
                    return Err(Error::Gpu { kernel: "greedy".into(), message: e.to_string() });
                }
                pending.push_back((chunk % 2, c, idx));
                issued += c;
                chunk += 1;
                // Keep one chunk queued behind the one being read.
                if pending.len() < 2 && issued < max_tokens {
                    continue;
                }
            }
            // Wait for this chunk only: the one queued behind it runs while the host reads
            // these ids and records the next chunk.
            let Some((which, c, idx)) = pending.pop_front() else { break };
            let bytes = gpu.map_read_after(&self.ids_staging[which], (c * 4) as u64, Some(idx)).await?;
            for &id in bytemuck::cast_slice::<u8, u32>(&bytes) {
                if stopped {
                    break;
                }
                out.push(id);
                stopped = on_token(id);
            }
            if stopped && !pending.is_empty() {
                // A chunk queued past the stop: let it finish (its staging buffer may be
                // mapped next call), then forget it.
                let (which, c, idx) = pending.pop_front().unwrap();
                gpu.map_read_after(&self.ids_staging[which], (c * 4) as u64, Some(idx)).await?;
            }
        }
        // Fed: first and every returned id but the last.
        self.pos = start + out.len();
        Ok(out)
    }

    /// Feed a prompt; returns the logits of its last token.
    pub async fn prefill(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("empty prompt".into()));
        }
        self.forward(tokens, Some(tokens.len() - 1)).await
    }

    /// One decode step; returns the logits for the next token.
    pub async fn step(&mut self, token: u32) -> Result<Vec<f32>> {
        self.forward(&[token], Some(0)).await
    }
}

/// y[t] (+)= W x[t]: 4 rows per workgroup (grid x/y), tokens along z. `no_pf`: the
/// one-word placeholder for the matvec's prefetch binding (the projections prefetch
/// nothing: the attention dispatch before them loads their weights into L2).
async fn proj(
    gpu: &Gpu,
    m: &GpuMatrix,
    x: &dyn AsBinding,
    y: &dyn AsBinding,
    acc: bool,
    no_pf: &wgpu::Buffer,
) -> Result<Proj> {
    let params = uniform(
        gpu,
        MatvecParams {
            rows: m.rows as u32,
            accumulate: acc as u32,
            out_stride: m.rows as u32,
            row_base: m.row_base as u32,
        },
    )?;
    let res = || vec![params.as_entire_binding(), m.binding(), x.binding(), y.binding(), no_pf.as_entire_binding()];
    let maxg = gpu.caps.max_workgroups_per_dim;
    let p = gpu.pipeline(&matvec_key(gpu.variant, m.ty, m.cols, m.rows, 1)).await?;
    let decode = Dispatch::with_resources(
        gpu,
        &p,
        res(),
        grid((m.rows as u32).div_ceil(MATVEC_ROWS), maxg),
        PerToken::Tiles(2, 1),
    );
    let tt = PREFILL_TOKEN_TILE;
    // Row-per-thread matmul on CPU adapters, the tiled matvec (4 rows x tt tokens) on GPUs.
    let matmul = gpu.options.prefill_matmul.unwrap_or(gpu.caps.cpu_adapter);
    let (key, rows_per_group) = if matmul {
        (matmul_key(gpu.variant, m.ty, m.cols, tt), WG_ROWS)
    } else {
        (matvec_key(gpu.variant, m.ty, m.cols, m.rows, tt), MATVEC_ROWS)
    };
    let p = gpu.pipeline(&key).await?;
    // The matmul has no prefetch binding.
    let mut res = res();
    if matmul {
        res.truncate(4);
    }
    let groups = grid((m.rows as u32).div_ceil(rows_per_group), maxg);
    let prefill = Dispatch::with_resources(gpu, &p, res, groups, PerToken::Tiles(2, tt));
    Ok(Proj { decode, prefill })
}

/// Whether `matvec_norm` also applies RoPE and writes the KV cache (q | k | v), or leaves
/// its outputs as they are (bound to placeholders: table, k cache, v cache).
#[derive(Clone, Copy)]
enum NormRope<'a> {
    /// Plain outputs (the table binding gets this placeholder).
    None(&'a wgpu::Buffer),
    /// RoPE on q and k; `kv_out`: outputs 1 and 2 are the dense K and V caches.
    Fold { table: &'a wgpu::Buffer, kv_out: bool, capacity: usize, hd: usize },
}

/// Decode: outs = split(W rmsnorm(x, nw)) over a stacked matrix, 4 rows per workgroup.
/// Each output is (buffer, rows), taking the stacked rows in order.
async fn matvec_norm(
    gpu: &Gpu,
    m: &GpuMatrix,
    eps: f32,
    x: &wgpu::Buffer,
    nw: &wgpu::Buffer,
    outs: [(&dyn AsBinding, usize); 3],
    rope: NormRope<'_>,
    pf: &wgpu::Buffer,
) -> Result<Dispatch> {
    let (n0, n1) = (outs[0].1, outs[0].1 + outs[1].1);
    debug_assert_eq!(n1 + outs[2].1, m.rows, "fused projection outputs must cover the stacked rows");
    let params = MatvecNormParams {
        rows: m.rows as u32,
        n0: n0 as u32,
        n1: n1 as u32,
        eps,
        stride0: outs[0].1 as u32,
        stride1: outs[1].1 as u32,
        stride2: outs[2].1 as u32,
        capacity: match rope {
            NormRope::Fold { capacity, .. } => capacity as u32,
            NormRope::None(_) => 0,
        },
    };
    let (rope_hd, kv_out, table) = match rope {
        NormRope::Fold { table, kv_out, hd, .. } => (hd, kv_out, table),
        NormRope::None(b) => (0, false, b),
    };
    let p = gpu.pipeline(&matvec_norm_key(gpu.variant, m.ty, m.cols, m.rows, rope_hd, kv_out)).await?;
    let params = uniform(gpu, params)?;
    let mut res = vec![params.as_entire_binding(), m.binding()];
    res.extend([x.binding(), nw.binding(), outs[0].0.binding(), outs[1].0.binding(), outs[2].0.binding()]);
    res.extend([table, pf].map(|b| b.as_entire_binding()));
    let groups = grid((m.rows as u32).div_ceil(MATVEC_ROWS), gpu.caps.max_workgroups_per_dim);
    Ok(Dispatch::with_resources(gpu, &p, res, groups, PerToken::Tiles(2, 1)))
}

/// Decode: act = silu(Wg xn) * (Wu xn), xn = rmsnorm(x, nw), W = gate | up stacked.
async fn matvec_glu(
    gpu: &Gpu,
    m: &GpuMatrix,
    eps: f32,
    x: &wgpu::Buffer,
    nw: &wgpu::Buffer,
    act: &wgpu::Buffer,
    pf: &wgpu::Buffer,
) -> Result<Dispatch> {
    let ffn = m.rows / 2;
    let p = gpu.pipeline(&matvec_glu_key(gpu.variant, m.ty, m.cols, ffn)).await?;
    let params = uniform(gpu, MatvecGluParams { ffn: ffn as u32, eps, _pad: [0; 2] })?;
    let groups = grid((ffn as u32).div_ceil(MATVEC_ROWS), gpu.caps.max_workgroups_per_dim);
    let mut res = vec![params.as_entire_binding(), m.binding()];
    res.extend([x, nw, act, pf].map(|b| b.as_entire_binding()));
    Ok(Dispatch::with_resources(gpu, &p, res, groups, PerToken::Tiles(2, 1)))
}

/// out[t] = rmsnorm(x[t]) * w: one workgroup per token row.
async fn rms_d(
    gpu: &Gpu,
    eps: f32,
    n: usize,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<Dispatch> {
    let p = gpu.pipeline(&rmsnorm_key(gpu.variant, n)).await?;
    let params = uniform(gpu, RmsNormParams { eps, _pad: [0; 3] })?;
    Ok(Dispatch::new(gpu, &p, &[&params, x, w, out], [1, 1, 1], PerToken::Axis(0)))
}

/// Public-domain calibration text for the key means (Lincoln, 1863).
const CALIBRATION_TEXT: &str =
    "Four score and seven years ago our fathers brought forth on this continent, a new nation, \
conceived in Liberty, and dedicated to the proposition that all men are created equal. Now we are engaged in a great \
civil war, testing whether that nation, or any nation so conceived and so dedicated, can long endure. We are met on a \
great battle-field of that war. We have come to dedicate a portion of that field, as a final resting place for those \
who here gave their lives that that nation might live. It is altogether fitting and proper that we should do this. \
But, in a larger sense, we can not dedicate -- we can not consecrate -- we can not hallow -- this ground.";

/// Tokens of the calibration text used (at most).
const CALIBRATION_TOKENS: usize = 128;

/// Mean pre-RoPE key per (layer, kv head) [n_layers][n_kv][hd], from a dense session
/// over the calibration text; computed once per model and cached.
async fn key_means(model: &Model) -> Result<std::sync::Arc<Vec<f32>>> {
    if let Some(m) = model.key_means.lock().unwrap().as_ref() {
        return Ok(m.clone());
    }
    let c = &model.config;
    let mut ids = model.tokenizer.encode(CALIBRATION_TEXT, false)?;
    ids.truncate(CALIBRATION_TOKENS);
    let n = ids.len();
    let opts = SessionOptions { capacity: n, attention: Some(AttentionPath::Auto), kv: Some(KvScheme::F16) };
    let mut s = Box::pin(Session::new(model, opts)).await?;
    s.forward(&ids, None).await?;
    let gpu = &model.gpu;
    let hd = c.head_dim;
    let mut means = Vec::with_capacity(c.n_layers * c.n_kv_heads * hd);
    let table = rope_table(n, hd, c.rope_theta);
    for l in &s.layers {
        let buf = l
            .attn
            .dense_k_cache()
            .ok_or_else(|| Error::Gpu { kernel: "key_means".into(), message: "no dense cache".into() })?;
        let elem = if gpu.variant.f16 { 2 } else { 4 };
        let bytes = gpu.read(buf, 0, (c.n_kv_heads * n * hd * elem) as u64).await?;
        let k: Vec<f32> = if gpu.variant.f16 {
            bytemuck::cast_slice::<u8, half::f16>(&bytes).iter().map(|x| x.to_f32()).collect()
        } else {
            bytemuck::cast_slice::<u8, f32>(&bytes).to_vec()
        };
        // The session's capacity is n, so head h's rows are k[h*n*hd..(h+1)*n*hd]. Rows are
        // post-RoPE: rotate each back by -pos (same table) and average the pre-RoPE keys.
        for h in 0..c.n_kv_heads {
            let mut sum = vec![0f64; hd];
            for p in 0..n {
                let row = &k[(h * n + p) * hd..][..hd];
                for (j, cs) in table[p * hd / 2..][..hd / 2].iter().enumerate() {
                    let (ia, ib) = match c.rope_style {
                        crate::model::config::RopeStyle::Adjacent => (2 * j, 2 * j + 1),
                        crate::model::config::RopeStyle::Halves => (j, j + hd / 2),
                    };
                    let (a, b) = (row[ia] as f64, row[ib] as f64);
                    let (co, si) = (cs[0] as f64, cs[1] as f64);
                    sum[ia] += a * co + b * si;
                    sum[ib] += b * co - a * si;
                }
            }
            means.extend(sum.iter().map(|x| (x / n as f64) as f32));
        }
    }
    let m = std::sync::Arc::new(means);
    *model.key_means.lock().unwrap() = Some(m.clone());
    Ok(m)
}
