//! A conversation: KV caches, position, scratch buffers and prebuilt bind groups.
//! Tokens are queued up to MAX_SLOTS per submission, each step in the same compute
//! pass with its own slot of the step uniform (dynamic offset).
use std::sync::Arc;

use bytemuck::Pod;

use crate::attention::plan::{self, DecodePlan};
use crate::engine::Model;
use crate::error::{Error, Result};
use crate::gpu::registry::{Pipeline, StepUniform};
use crate::gpu::Gpu;
use crate::kernels::*;
use crate::model::config::RopeStyle;
use crate::model::llama::GpuMatrix;
use crate::options::AttentionPath;
use crate::reference::ops::rope_table;

/// Steps queued per submission (also the logits rows kept on the GPU).
pub const MAX_SLOTS: usize = 32;

#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// KV cache capacity in tokens (the row stride of the cache).
    pub capacity: usize,
    /// Attention path; defaults to the engine's option.
    pub attention: Option<AttentionPath>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions { capacity: 2048, attention: None }
    }
}

struct Dispatch {
    pipeline: Arc<Pipeline>,
    bind: wgpu::BindGroup,
    groups: [u32; 3],
}

impl Dispatch {
    fn run(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.run_grid(pass, self.groups);
    }
    fn run_grid(&self, pass: &mut wgpu::ComputePass<'_>, g: [u32; 3]) {
        pass.set_pipeline(&self.pipeline.pipeline);
        pass.set_bind_group(0, &self.bind, &[]);
        pass.dispatch_workgroups(g[0], g[1], g[2]);
    }
}

struct LayerOps {
    /// attn_norm, q, k, v, rope_kv
    pre: Vec<Dispatch>,
    attn_single: Dispatch,
    attn_split: Dispatch,
    merge: Dispatch,
    /// o-proj (+= x), ffn_norm, gate, up, silu_mul, down (+= x)
    post: Vec<Dispatch>,
}

pub struct Session {
    model: Model,
    capacity: usize,
    pos: usize,
    path: AttentionPath,
    split_block: u32,
    step_align: u64,
    tokens: wgpu::Buffer,
    steps: wgpu::Buffer,
    step_bg: wgpu::BindGroup,
    logits: wgpu::Buffer,
    staging: wgpu::Buffer,
    embed: Dispatch,
    layers: Vec<LayerOps>,
    final_norm: Dispatch,
    lm_head: Dispatch,
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
        let split_block = match path {
            AttentionPath::TwoPass { block } => block,
            _ => plan::DEFAULT_SPLIT_BLOCK,
        };
        if split_block == 0 || split_block % 64 != 0 {
            return Err(Error::InvalidArgument(format!("split block {split_block} must be a positive multiple of 64")));
        }
        let max_blocks = cap.div_ceil(split_block as usize);
        let st = wgpu::BufferUsages::STORAGE;
        let f32s = |label: &str, n: usize| gpu.buffer(label, (n * 4) as u64, st);
        let (h, qd, kvd, ffn, vocab) = (c.hidden, c.q_dim(), c.kv_dim(), c.ffn, c.vocab);
        // Activations, f32: x [hidden] residual stream, xn [hidden] normed, q [q_dim],
        // k/v [kv_dim], att [q_dim], g/u/act [ffn], logits [MAX_SLOTS][vocab].
        let x = f32s("x", h)?;
        let xn = f32s("xn", h)?;
        let q = f32s("q", qd)?;
        let k = f32s("k", kvd)?;
        let vv = f32s("v", kvd)?;
        let att = f32s("att", qd)?;
        let g = f32s("gate", ffn)?;
        let u = f32s("up", ffn)?;
        let act = f32s("act", ffn)?;
        let logits = f32s("logits", MAX_SLOTS * vocab)?;
        // Split-K partials: (max, sum) [n_heads][max_blocks], o [n_heads][max_blocks][hd].
        let pml = f32s("attn_partial_ml", c.n_heads * max_blocks * 2)?;
        let po = f32s("attn_partial_o", c.n_heads * max_blocks * c.head_dim)?;
        let tokens = gpu.buffer("tokens", (MAX_SLOTS * 4) as u64, st)?;
        let step_align = (gpu.caps.uniform_align as u64).max(std::mem::size_of::<StepUniform>() as u64);
        let steps = gpu.buffer("steps", step_align * MAX_SLOTS as u64, wgpu::BufferUsages::UNIFORM)?;
        let step_bg = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("step"),
            layout: gpu.registry.step_layout(&gpu.device),
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &steps,
                    offset: 0,
                    size: wgpu::BufferSize::new(std::mem::size_of::<StepUniform>() as u64),
                }),
            }],
        });
        // KV cache per layer: [n_kv_heads][capacity][head_dim], f16 when the variant has it.
        let kv_elem = if v.f16 { 2 } else { 4 };
        let kv_size = (c.n_kv_heads * cap * c.head_dim * kv_elem) as u64;
        let rope = rope_table(cap, c.head_dim, c.rope_theta);
        let rope_buf = gpu.buffer_init("rope_cos_sin", bytemuck::cast_slice(&rope), st)?;

        let uni = |p: &dyn Fn() -> Vec<u8>| gpu.buffer_init("params", &p(), wgpu::BufferUsages::UNIFORM);
        fn bytes<T: Pod>(p: T) -> impl Fn() -> Vec<u8> {
            move || bytemuck::bytes_of(&p).to_vec()
        }
        let embed = {
            let p = gpu.pipeline(&embed_key(v, w.embd.ty, h)).await?;
            let params = uni(&bytes(EmbedParams { rows: w.embd.rows as u32, _pad: [0; 3] }))?;
            let bind = gpu.bind(&p, &[params.as_entire_binding(), w.embd.buf.as_entire_binding(), tokens.as_entire_binding(), x.as_entire_binding()]);
            Dispatch { pipeline: p, bind, groups: [((h / 8) as u32).div_ceil(WG_ROWS), 1, 1] }
        };
        let rope_p = gpu.pipeline(&rope_kv_key(v, c.head_dim)).await?;
        let single_p = gpu.pipeline(&attn_key(v, c.head_dim, 0)).await?;
        let split_p = gpu.pipeline(&attn_key(v, c.head_dim, split_block)).await?;
        let merge_p = gpu.pipeline(&merge_key(v, c.head_dim)).await?;
        let silu_p = gpu.pipeline(&silu_mul_key(v)).await?;
        let scale = 1.0 / (c.head_dim as f32).sqrt();
        let mut layers = Vec::with_capacity(c.n_layers);
        for l in &w.layers {
            let kc = gpu.buffer("k_cache", kv_size, st)?;
            let vc = gpu.buffer("v_cache", kv_size, st)?;
            let rope_params = uni(&bytes(RopeKvParams {
                n_heads: c.n_heads as u32,
                n_kv_heads: c.n_kv_heads as u32,
                capacity: cap as u32,
                halves: (c.rope_style == RopeStyle::Halves) as u32,
            }))?;
            let rope_d = Dispatch {
                bind: gpu.bind(&rope_p, &[rope_params.as_entire_binding(), q.as_entire_binding(), k.as_entire_binding(), vv.as_entire_binding(), kc.as_entire_binding(), vc.as_entire_binding(), rope_buf.as_entire_binding()]),
                pipeline: rope_p.clone(),
                groups: [(c.n_heads + c.n_kv_heads) as u32, 1, 1],
            };
            let ap = AttnParams { n_heads: c.n_heads as u32, group: c.group() as u32, capacity: cap as u32, max_blocks: max_blocks as u32, scale, _pad: [0; 3] };
            let attn_bind = |p: &Pipeline| -> Result<wgpu::BindGroup> {
                let params = uni(&bytes(ap))?;
                Ok(gpu.bind(p, &[params.as_entire_binding(), q.as_entire_binding(), kc.as_entire_binding(), vc.as_entire_binding(), att.as_entire_binding(), pml.as_entire_binding(), po.as_entire_binding()]))
            };
            let merge_params = uni(&bytes(MergeParams { n_heads: c.n_heads as u32, max_blocks: max_blocks as u32, _pad: [0; 2] }))?;
            let silu_params = uni(&bytes(SiluMulParams { n: ffn as u32, _pad: [0; 3] }))?;
            layers.push(LayerOps {
                pre: vec![
                    rms_d(gpu, c.rms_eps, &x, &l.attn_norm, &xn).await?,
                    matvec_d(gpu, &l.wq, &xn, &q, false, 0).await?,
                    matvec_d(gpu, &l.wk, &xn, &k, false, 0).await?,
                    matvec_d(gpu, &l.wv, &xn, &vv, false, 0).await?,
                    rope_d,
                ],
                attn_single: Dispatch { bind: attn_bind(&single_p)?, pipeline: single_p.clone(), groups: [c.n_heads as u32, 1, 1] },
                attn_split: Dispatch { bind: attn_bind(&split_p)?, pipeline: split_p.clone(), groups: [c.n_heads as u32, 1, 1] },
                merge: Dispatch {
                    bind: gpu.bind(&merge_p, &[merge_params.as_entire_binding(), pml.as_entire_binding(), po.as_entire_binding(), att.as_entire_binding()]),
                    pipeline: merge_p.clone(),
                    groups: [c.n_heads as u32, 1, 1],
                },
                post: vec![
                    matvec_d(gpu, &l.wo, &att, &x, true, 0).await?,
                    rms_d(gpu, c.rms_eps, &x, &l.ffn_norm, &xn).await?,
                    matvec_d(gpu, &l.gate, &xn, &g, false, 0).await?,
                    matvec_d(gpu, &l.up, &xn, &u, false, 0).await?,
                    Dispatch {
                        bind: gpu.bind(&silu_p, &[silu_params.as_entire_binding(), g.as_entire_binding(), u.as_entire_binding(), act.as_entire_binding()]),
                        pipeline: silu_p.clone(),
                        groups: [(ffn as u32).div_ceil(WG_WIDE), 1, 1],
                    },
                    matvec_d(gpu, &l.down, &act, &x, true, 0).await?,
                ],
            });
        }
        let final_norm = rms_d(gpu, c.rms_eps, &x, &w.out_norm, &xn).await?;
        let lm_head = matvec_d(gpu, w.lm_head(), &xn, &logits, false, vocab).await?;
        let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("logits_staging"),
            size: (MAX_SLOTS * vocab * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Session {
            model: model.clone(),
            capacity: cap,
            pos: 0,
            path,
            split_block,
            step_align,
            tokens,
            steps,
            step_bg,
            logits,
            staging,
            embed,
            layers,
            final_norm,
            lm_head,
            kv_bytes_per_token: (c.n_layers * 2 * kvd * kv_elem) as u64,
        })
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

    /// The plan the next step would use at `kv_len`.
    pub fn plan_for(&self, kv_len: usize) -> DecodePlan {
        match plan::plan(self.path, self.model.config.n_heads, kv_len) {
            DecodePlan::TwoPass { .. } => {
                DecodePlan::TwoPass { block: self.split_block, n_blocks: (kv_len as u32).div_ceil(self.split_block) }
            }
            p => p,
        }
    }

    /// Run `tokens` through the model at the current position. Returns the logits
    /// rows (each `vocab` long) for tokens at index >= `logits_from`, in order.
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
        for (ci, chunk) in tokens.chunks(MAX_SLOTS).enumerate() {
            let base = ci * MAX_SLOTS;
            let gpu = self.model.gpu.clone();
            // Per-slot step uniforms and token ids, written once per submission.
            let mut steps = vec![0u8; self.step_align as usize * MAX_SLOTS];
            let mut plans = Vec::with_capacity(chunk.len());
            for s in 0..chunk.len() {
                let pos = self.pos + s;
                let plan = self.plan_for(pos + 1);
                let n_blocks = match plan {
                    DecodePlan::TwoPass { n_blocks, .. } => n_blocks,
                    DecodePlan::SinglePass => 0,
                };
                let su = StepUniform { pos: pos as u32, kv_len: pos as u32 + 1, slot: s as u32, n_blocks };
                let o = s * self.step_align as usize;
                steps[o..o + 16].copy_from_slice(bytemuck::bytes_of(&su));
                plans.push(plan);
            }
            gpu.queue.write_buffer(&self.steps, 0, &steps);
            gpu.queue.write_buffer(&self.tokens, 0, bytemuck::cast_slice(chunk));
            let first_row = from.saturating_sub(base).min(chunk.len());
            let n_rows = chunk.len() - first_row;
            let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("decode") });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("decode"), timestamp_writes: None });
                for (s, plan) in plans.iter().enumerate() {
                    pass.set_bind_group(1, &self.step_bg, &[(s as u64 * self.step_align) as u32]);
                    self.embed.run(&mut pass);
                    for l in &self.layers {
                        l.pre.iter().for_each(|d| d.run(&mut pass));
                        match *plan {
                            DecodePlan::SinglePass => l.attn_single.run(&mut pass),
                            DecodePlan::TwoPass { n_blocks, .. } => {
                                l.attn_split.run_grid(&mut pass, [self.model.config.n_heads as u32, n_blocks, 1]);
                                l.merge.run(&mut pass);
                            }
                        }
                        l.post.iter().for_each(|d| d.run(&mut pass));
                    }
                    if s >= first_row {
                        self.final_norm.run(&mut pass);
                        self.lm_head.run(&mut pass);
                    }
                }
            }
            let row_bytes = (vocab * 4) as u64;
            if n_rows > 0 {
                enc.copy_buffer_to_buffer(&self.logits, first_row as u64 * row_bytes, &self.staging, 0, n_rows as u64 * row_bytes);
            }
            gpu.queue.submit([enc.finish()]);
            if let Some(e) = scope.pop().await {
                return Err(Error::Gpu { kernel: "decode step".into(), message: e.to_string() });
            }
            self.pos += chunk.len();
            if n_rows > 0 {
                let bytes = gpu.map_read_range(&self.staging, n_rows as u64 * row_bytes).await?;
                out.extend_from_slice(bytemuck::cast_slice::<u8, f32>(&bytes));
            }
        }
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

fn uniform<T: Pod>(gpu: &Gpu, p: T) -> Result<wgpu::Buffer> {
    gpu.buffer_init("params", bytemuck::bytes_of(&p), wgpu::BufferUsages::UNIFORM)
}

/// y (+)= W x, one workgroup per 4 rows.
async fn matvec_d(gpu: &Gpu, m: &GpuMatrix, x: &wgpu::Buffer, y: &wgpu::Buffer, acc: bool, out_stride: usize) -> Result<Dispatch> {
    let p = gpu.pipeline(&matvec_key(gpu.variant, m.ty, m.cols)).await?;
    let params = uniform(gpu, MatvecParams { rows: m.rows as u32, accumulate: acc as u32, out_stride: out_stride as u32, _pad: 0 })?;
    let bind = gpu.bind(&p, &[params.as_entire_binding(), m.buf.as_entire_binding(), x.as_entire_binding(), y.as_entire_binding()]);
    Ok(Dispatch { pipeline: p, bind, groups: grid((m.rows as u32).div_ceil(MATVEC_ROWS), gpu.caps.max_workgroups_per_dim) })
}

/// out = rmsnorm(x) * w, one workgroup.
async fn rms_d(gpu: &Gpu, eps: f32, x: &wgpu::Buffer, w: &wgpu::Buffer, out: &wgpu::Buffer) -> Result<Dispatch> {
    let n = (x.size() / 4) as usize;
    let p = gpu.pipeline(&rmsnorm_key(gpu.variant, n)).await?;
    let params = uniform(gpu, RmsNormParams { eps, _pad: [0; 3] })?;
    let bind = gpu.bind(&p, &[params.as_entire_binding(), x.as_entire_binding(), w.as_entire_binding(), out.as_entire_binding()]);
    Ok(Dispatch { pipeline: p, bind, groups: [1, 1, 1] })
}
