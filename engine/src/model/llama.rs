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

/// A weight matrix on the GPU: `rows` rows of `cols` elements stored as `ty`.
pub struct GpuMatrix {
    pub buf: wgpu::Buffer,
    pub ty: WeightType,
    pub rows: usize,
    pub cols: usize,
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
            Ok(GpuMatrix { buf: gpu.buffer_init(name, &t.data, usage)?, ty: t.ty, rows: t.rows(), cols: t.cols() })
        };
        // Norm weights are tiny: always f32 on the GPU.
        let norm = |name: &str| -> Result<wgpu::Buffer> {
            let t: &HostTensor = m.tensor(name)?;
            gpu.buffer_init(name, bytemuck::cast_slice(&t.to_f32()), usage)
        };
        let mut layers = Vec::with_capacity(m.config.n_layers);
        for i in 0..m.config.n_layers {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            layers.push(GpuLayer {
                attn_norm: norm(&n("attn_norm"))?,
                wq: mat(&n("attn_q"))?,
                wk: mat(&n("attn_k"))?,
                wv: mat(&n("attn_v"))?,
                wo: mat(&n("attn_output"))?,
                ffn_norm: norm(&n("ffn_norm"))?,
                gate: mat(&n("ffn_gate"))?,
                up: mat(&n("ffn_up"))?,
                down: mat(&n("ffn_down"))?,
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
        let mut b = self.embd.buf.size() + self.out_norm.size();
        if let Some(o) = &self.output {
            b += o.buf.size();
        }
        for l in &self.layers {
            for m in [&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down] {
                b += m.buf.size();
            }
            b += l.attn_norm.size() + l.ffn_norm.size();
        }
        b
    }
}
