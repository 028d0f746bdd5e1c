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
        crate::gpu::dispatch::range_binding(&self.buf, self.offset, self.size)
    }
}

impl crate::gpu::dispatch::AsBinding for GpuMatrix {
    fn binding(&self) -> wgpu::BindingResource<'_> {
        GpuMatrix::binding(self)
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
    /// With the L2 prefetch: the buffer holding every matrix that runs after this layer's
    /// attention, in order: o, gate | up, down and the next layer's q | k | v. A dispatch
    /// around attention (see attention/layer.rs) prefetches it into L2, so
    /// those projections read L2 instead of memory. None: separate buffers (prefetch off, or
    /// the layer would pass the adapter's binding limit).
    pub post: Option<wgpu::Buffer>,
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

/// A matrix (or stack) placed in a buffer under construction: `GpuMatrix` less the buffer.
#[derive(Clone)]
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

/// Whether tensors stack row-wise in one range (same type and width, more than one).
fn stackable(ts: &[&HostTensor]) -> bool {
    ts.len() > 1 && ts.iter().all(|t| t.ty == ts[0].ty && t.cols() == ts[0].cols())
}

/// Appends `data` at the next aligned offset of `bytes`, padded to 4 bytes (storage
/// bindings are sized in words); returns (offset, size).
fn append(bytes: &mut Vec<u8>, data: &[u8]) -> (u64, u64) {
    bytes.resize(bytes.len().next_multiple_of(RANGE_ALIGN), 0);
    let off = bytes.len() as u64;
    bytes.extend_from_slice(data);
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    (off, bytes.len() as u64 - off)
}

/// Places a group of tensors in `bytes`: stacked row-wise in one range when they share a
/// type and width (the stack, and a view of each part), else each in its own range.
fn place(bytes: &mut Vec<u8>, ts: &[&HostTensor]) -> (Option<Placed>, Vec<Placed>) {
    if !stackable(ts) {
        let views = ts
            .iter()
            .map(|t| {
                let (offset, size) = append(bytes, &t.data);
                Placed { offset, size, ty: t.ty, row_base: 0, rows: t.rows(), cols: t.cols() }
            })
            .collect();
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

/// Groups placed in one buffer.
struct Packed {
    buf: wgpu::Buffer,
    groups: Vec<(Option<Placed>, Vec<Placed>)>,
}

/// The bytes of one buffer holding these groups, and where each went.
type Layout = (Vec<u8>, Vec<(Option<Placed>, Vec<Placed>)>);

fn lay_out(groups: &[Vec<&HostTensor>]) -> Layout {
    let mut bytes = Vec::new();
    let placed = groups.iter().map(|g| place(&mut bytes, g)).collect();
    (bytes, placed)
}

fn upload_layout(gpu: &Gpu, label: &str, (bytes, groups): Layout) -> Result<Packed> {
    Ok(Packed { buf: gpu.buffer_init(label, &bytes, wgpu::BufferUsages::STORAGE)?, groups })
}

fn pack(gpu: &Gpu, label: &str, groups: &[Vec<&HostTensor>]) -> Result<Packed> {
    upload_layout(gpu, label, lay_out(groups))
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
            // buffer_init pads to 4 bytes: storage bindings are sized in words.
            let size = (t.data.len() as u64).next_multiple_of(4);
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
        let n_layers = m.config.n_layers;
        // With the L2 prefetch, layer i's matrices that run after its attention share one
        // buffer in the order the decode reads them: its o, gate | up, down and layer
        // i + 1's q | k | v (`GpuLayer::post`; "pre" holds layer 0's q | k | v). Without it,
        // or where that buffer would pass the adapter's binding limit, each matrix (or
        // stack) has a buffer of its own.
        let prefetch = gpu.l2_prefetch();
        let limit = gpu.caps.max_storage_binding.min(gpu.caps.max_buffer);
        let pre = pack(gpu, "blk.0.attn_qkv", &[tensors(0, &qkv_names)?])?;
        let mut qkv = (pre.buf.clone(), pre.groups[0].clone());
        let mut layers = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let groups =
                vec![tensors(i, &["attn_output"])?, tensors(i, &["ffn_gate", "ffn_up"])?, tensors(i, &["ffn_down"])?];
            let next = if i + 1 < n_layers { Some(tensors(i + 1, &qkv_names)?) } else { None };
            let grouped = if prefetch {
                let mut all = groups.clone();
                all.extend(next.clone());
                Some(lay_out(&all)).filter(|(bytes, _)| bytes.len() as u64 <= limit)
            } else {
                None
            };
            let (post, [wo, gu, down], next_qkv) = if let Some(layout) = grouped {
                let p = upload_layout(gpu, &format!("blk.{i}.post_attn"), layout)?;
                let next_qkv = p.groups.get(3).map(|g| (p.buf.clone(), g.clone()));
                let g = |j: usize| (p.buf.clone(), p.groups[j].clone());
                (Some(p.buf.clone()), [g(0), g(1), g(2)], next_qkv)
            } else {
                let own = |j: usize, what: &str| -> Result<_> {
                    let p = pack(gpu, &format!("blk.{i}.{what}"), &groups[j..j + 1])?;
                    Ok((p.buf, p.groups[0].clone()))
                };
                let next_qkv = match &next {
                    Some(t) => {
                        let p = pack(gpu, &format!("blk.{}.attn_qkv", i + 1), std::slice::from_ref(t))?;
                        Some((p.buf, p.groups[0].clone()))
                    }
                    None => None,
                };
                (None, [own(0, "attn_output")?, own(1, "ffn_gate_up")?, own(2, "ffn_down")?], next_qkv)
            };
            let ((qb, (qstack, qviews)), (ob, (_, ov)), (gb, (gstack, gviews)), (db, (_, dv))) =
                (&qkv, &wo, &gu, &down);
            layers.push(GpuLayer {
                attn_norm: norm(&n(i, "attn_norm"))?,
                wq: qviews[0].on(qb),
                wk: qviews[1].on(qb),
                wv: qviews[2].on(qb),
                wo: ov[0].on(ob),
                ffn_norm: norm(&n(i, "ffn_norm"))?,
                gate: gviews[0].on(gb),
                up: gviews[1].on(gb),
                down: dv[0].on(db),
                qkv: qstack.as_ref().map(|s| s.on(qb)),
                gate_up: gstack.as_ref().map(|s| s.on(gb)),
                post,
            });
            if let Some(q) = next_qkv {
                qkv = q;
            }
        }
        Ok(GpuWeights {
            embd: mat("token_embd.weight")?,
            layers,
            out_norm: norm("output_norm.weight")?,
            output: if m.tensors.contains_key("output.weight") { Some(mat("output.weight")?) } else { None },
            pre: pre.buf,
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
