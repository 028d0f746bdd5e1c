//! Llama weights on the GPU, in their file formats.
use super::config::Config;
use super::tensor::{HostTensor, WeightType};
use super::HostModel;
use crate::error::Result;
use crate::gpu::Gpu;

/// The tensors a llama model needs, by GGUF name.
pub fn tensor_names(c: &Config, has_output: bool) -> Vec<String> {
    let mut v = vec!["token_embd.weight".to_string(), "output_norm.weight".to_string()];
    if has_output {
        v.push("output.weight".to_string());
    }
    for i in 0..c.n_layers {
        for s in
            ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]
        {
            v.push(format!("blk.{i}.{s}.weight"));
        }
    }
    v
}

/// A weight matrix on the GPU: `rows` rows of `cols` elements stored as `ty`, starting at
/// row `row_base` of the range `offset .. offset + size` of `buf` (matrices of one type may
/// be stacked in one range; a layer's matrices share a buffer, see `GpuLayer::post`).
#[derive(Clone)]
pub struct GpuMatrix {
    pub buf: wgpu::Buffer,
    /// Byte range of the matrix (or its stack) in `buf`; `offset` is 256-aligned (every
    /// adapter's storage-binding offset alignment).
    pub offset: u64,
    pub size: u64,
    pub ty: WeightType,
    pub row_base: usize,
    pub rows: usize,
    pub cols: usize,
}

impl GpuMatrix {
    /// Bytes of this matrix's rows.
    pub fn bytes(&self) -> u64 {
        self.rows as u64 * (self.cols / self.ty.block_elems() * self.ty.block_bytes()) as u64
    }

    /// The binding of the matrix's range (kernels index from its start).
    pub fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buf,
            offset: self.offset,
            size: wgpu::BufferSize::new(self.size),
        })
    }
}

pub struct GpuLayer {
    /// [hidden] f32
    pub attn_norm: wgpu::Buffer,
    /// [q_dim][hidden]
    pub wq: GpuMatrix,
    /// [kv_dim][hidden]
    pub wk: GpuMatrix,
    /// [kv_dim][hidden]
    pub wv: GpuMatrix,
    /// [hidden][q_dim]
    pub wo: GpuMatrix,
    /// [hidden] f32
    pub ffn_norm: wgpu::Buffer,
    /// [ffn][hidden]
    pub gate: GpuMatrix,
    /// [ffn][hidden]
    pub up: GpuMatrix,
    /// [hidden][ffn]
    pub down: GpuMatrix,
    /// wq | wk | wv stacked in one buffer (when they share a type): the fused decode
    /// projection reads it in one dispatch.
    pub qkv: Option<GpuMatrix>,
    /// gate | up stacked (when they share a type), for the fused decode SwiGLU input.
    pub gate_up: Option<GpuMatrix>,
    /// The buffer holding every matrix that runs after this layer's attention, in order: o,
    /// gate | up, down and the next layer's q | k | v. The attention dispatch prefetches it
    /// into L2 while it runs, so those projections read L2 instead of memory.
    pub post: wgpu::Buffer,
}

pub struct GpuWeights {
    /// [vocab][hidden]
    pub embd: GpuMatrix,
    pub layers: Vec<GpuLayer>,
    /// [hidden] f32
    pub out_norm: wgpu::Buffer,
    /// [vocab][hidden]; None when tied to `embd`.
    pub output: Option<GpuMatrix>,
    /// The buffer holding layer 0's q | k | v (the LM head prefetches it for the next step).
    pub pre: wgpu::Buffer,
}

/// A matrix (or stack) placed in a layer buffer under construction: `GpuMatrix` less the
/// buffer.
struct Placed {
    offset: u64,
    size: u64,
    ty: WeightType,
    row_base: usize,
    rows: usize,
    cols: usize,
}

impl Placed {
    fn on(&self, buf: &wgpu::Buffer) -> GpuMatrix {
        let Placed { offset, size, ty, row_base, rows, cols } = *self;
        GpuMatrix { buf: buf.clone(), offset, size, ty, row_base, rows, cols }
    }
}

/// Storage-binding offsets must be multiples of this (256 is the largest any adapter asks).
const RANGE_ALIGN: usize = 256;

/// Appends `data` at the next aligned offset of `bytes`; returns (offset, size).
fn append(bytes: &mut Vec<u8>, data: &[u8]) -> (u64, u64) {
    bytes.resize(bytes.len().next_multiple_of(RANGE_ALIGN), 0);
    let off = bytes.len() as u64;
    bytes.extend_from_slice(data);
    (off, data.len() as u64)
}

/// Places tensors in `bytes`: stacked row-wise in one range when they share a type and
/// width (the stack, and a view of each part), else each in its own range (no stack).
fn place(bytes: &mut Vec<u8>, ts: &[&HostTensor]) -> (Option<Placed>, Vec<Placed>) {
    let single = |bytes: &mut Vec<u8>, t: &HostTensor| {
        let (offset, size) = append(bytes, &t.data);
        Placed { offset, size, ty: t.ty, row_base: 0, rows: t.rows(), cols: t.cols() }
    };
    if ts.len() == 1 || ts.iter().any(|t| t.ty != ts[0].ty || t.cols() != ts[0].cols()) {
        let views: Vec<Placed> = ts.iter().map(|t| single(bytes, t)).collect();
        return (None, views);
    }
    let data: Vec<u8> = ts.iter().flat_map(|t| t.data.iter().copied()).collect();
    let (offset, size) = append(bytes, &data);
    let (ty, cols) = (ts[0].ty, ts[0].cols());
    let mut views = Vec::new();
    let mut row_base = 0;
    for t in ts {
        views.push(Placed { offset, size, ty, row_base, rows: t.rows(), cols });
        row_base += t.rows();
    }
    (Some(Placed { offset, size, ty, row_base: 0, rows: row_base, cols }), views)
}

impl GpuWeights {
    pub fn lm_head(&self) -> &GpuMatrix {
        self.output.as_ref().unwrap_or(&self.embd)
    }

    pub fn upload(gpu: &Gpu, m: &HostModel) -> Result<GpuWeights> {
        let usage = wgpu::BufferUsages::STORAGE;
        let mat = |name: &str| -> Result<GpuMatrix> {
            let t = m.tensor(name)?;
            let buf = gpu.buffer_init(name, &t.data, usage)?;
            let size = t.data.len() as u64;
            Ok(GpuMatrix { buf, offset: 0, size, ty: t.ty, row_base: 0, rows: t.rows(), cols: t.cols() })
        };
        // Norm weights are tiny: always f32 on the GPU.
        let norm = |name: &str| -> Result<wgpu::Buffer> {
            let t: &HostTensor = m.tensor(name)?;
            gpu.buffer_init(name, bytemuck::cast_slice(&t.to_f32()), usage)
        };
        let n = |i: usize, s: &str| format!("blk.{i}.{s}.weight");
        let tensors = |i: usize, names: &[&str]| names.iter().map(|s| m.tensor(&n(i, s))).collect::<Result<Vec<_>>>();
        let qkv_names = ["attn_q", "attn_k", "attn_v"];
        // Layer buffers in the order the decode reads them after each attention: layer i's
        // holds its o, gate | up and down and layer i + 1's q | k | v ("pre" holds layer 0's).
        let mut pre = Vec::new();
        let mut qkv = place(&mut pre, &tensors(0, &qkv_names)?);
        let pre = gpu.buffer_init("blk.0.attn_qkv", &pre, usage)?;
        let mut qkv_buf = pre.clone();
        let mut layers = Vec::with_capacity(m.config.n_layers);
        for i in 0..m.config.n_layers {
            let mut bytes = Vec::new();
            let (_, wo) = place(&mut bytes, &tensors(i, &["attn_output"])?);
            let (gate_up, gu) = place(&mut bytes, &tensors(i, &["ffn_gate", "ffn_up"])?);
            let (_, down) = place(&mut bytes, &tensors(i, &["ffn_down"])?);
            let next_qkv =
                if i + 1 < m.config.n_layers { Some(place(&mut bytes, &tensors(i + 1, &qkv_names)?)) } else { None };
            let post = gpu.buffer_init(&format!("blk.{i}.post_attn"), &bytes, usage)?;
            let (stack, views) = &qkv;
            layers.push(GpuLayer {
                attn_norm: norm(&n(i, "attn_norm"))?,
                wq: views[0].on(&qkv_buf),
                wk: views[1].on(&qkv_buf),
                wv: views[2].on(&qkv_buf),
                wo: wo[0].on(&post),
                ffn_norm: norm(&n(i, "ffn_norm"))?,
                gate: gu[0].on(&post),
                up: gu[1].on(&post),
                down: down[0].on(&post),
                qkv: stack.as_ref().map(|s| s.on(&qkv_buf)),
                gate_up: gate_up.map(|s| s.on(&post)),
                post: post.clone(),
            });
            if let Some(next) = next_qkv {
                qkv = next;
            }
            qkv_buf = post;
        }
        Ok(GpuWeights {
            embd: mat("token_embd.weight")?,
            layers,
            out_norm: norm("output_norm.weight")?,
            output: if m.tensors.contains_key("output.weight") { Some(mat("output.weight")?) } else { None },
            pre,
        })
    }

    /// Bytes of weights on the GPU.
    pub fn bytes(&self) -> u64 {
        let mut b = self.embd.bytes() + self.out_norm.size();
        if let Some(o) = &self.output {
            b += o.bytes();
        }
        for l in &self.layers {
            for m in [&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down] {
                b += m.bytes();
            }
            b += l.attn_norm.size() + l.ffn_norm.size();
        }
        b
    }
}
