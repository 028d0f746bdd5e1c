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
/// row `row_base` of `buf` (matrices of one type may be stacked in one buffer).
#[derive(Clone)]
pub struct GpuMatrix {
    pub buf: wgpu::Buffer,
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
}

pub struct GpuWeights {
    /// [vocab][hidden]
    pub embd: GpuMatrix,
    pub layers: Vec<GpuLayer>,
    /// [hidden] f32
    pub out_norm: wgpu::Buffer,
    /// [vocab][hidden]; None when tied to `embd`.
    pub output: Option<GpuMatrix>,
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
            Ok(GpuMatrix { buf, ty: t.ty, row_base: 0, rows: t.rows(), cols: t.cols() })
        };
        // Matrices of one type and width stacked row-wise in one buffer: the stack and a view
        // of each part. Different types (or widths) stay separate buffers and no stack.
        let stack = |label: &str, names: &[String]| -> Result<(Option<GpuMatrix>, Vec<GpuMatrix>)> {
            let ts = names.iter().map(|n| m.tensor(n)).collect::<Result<Vec<_>>>()?;
            if ts.iter().any(|t| t.ty != ts[0].ty || t.cols() != ts[0].cols()) {
                return Ok((None, names.iter().map(|n| mat(n)).collect::<Result<_>>()?));
            }
            let bytes: Vec<u8> = ts.iter().flat_map(|t| t.data.iter().copied()).collect();
            let buf = gpu.buffer_init(label, &bytes, usage)?;
            let (ty, cols) = (ts[0].ty, ts[0].cols());
            let mut views = Vec::new();
            let mut row_base = 0;
            for t in &ts {
                views.push(GpuMatrix { buf: buf.clone(), ty, row_base, rows: t.rows(), cols });
                row_base += t.rows();
            }
            Ok((Some(GpuMatrix { buf, ty, row_base: 0, rows: row_base, cols }), views))
        };
        // Norm weights are tiny: always f32 on the GPU.
        let norm = |name: &str| -> Result<wgpu::Buffer> {
            let t: &HostTensor = m.tensor(name)?;
            gpu.buffer_init(name, bytemuck::cast_slice(&t.to_f32()), usage)
        };
        let mut layers = Vec::with_capacity(m.config.n_layers);
        for i in 0..m.config.n_layers {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            let (qkv, mut v) = stack(&format!("blk.{i}.attn_qkv"), &[n("attn_q"), n("attn_k"), n("attn_v")])?;
            let (wv, wk, wq) = (v.pop().unwrap(), v.pop().unwrap(), v.pop().unwrap());
            let (gate_up, mut v) = stack(&format!("blk.{i}.ffn_gate_up"), &[n("ffn_gate"), n("ffn_up")])?;
            let (up, gate) = (v.pop().unwrap(), v.pop().unwrap());
            layers.push(GpuLayer {
                attn_norm: norm(&n("attn_norm"))?,
                wq,
                wk,
                wv,
                wo: mat(&n("attn_output"))?,
                ffn_norm: norm(&n("ffn_norm"))?,
                gate,
                up,
                down: mat(&n("ffn_down"))?,
                qkv,
                gate_up,
            });
        }
        Ok(GpuWeights {
            embd: mat("token_embd.weight")?,
            layers,
            out_norm: norm("output_norm.weight")?,
            output: if m.tensors.contains_key("output.weight") { Some(mat("output.weight")?) } else { None },
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
