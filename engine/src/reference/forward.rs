//! The whole llama forward on the CPU in f32: the end-to-end oracle.
use super::ops;
use crate::model::config::Config;
use crate::model::HostModel;

struct Layer {
    attn_norm: Vec<f32>,
    wq: Vec<f32>,
    wk: Vec<f32>,
    wv: Vec<f32>,
    wo: Vec<f32>,
    ffn_norm: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    down: Vec<f32>,
}

pub struct RefModel {
    pub config: Config,
    embd: Vec<f32>,
    layers: Vec<Layer>,
    out_norm: Vec<f32>,
    output: Option<Vec<f32>>,
}

/// KV cache of the reference: per layer [n_kv_heads][capacity][head_dim].
pub struct RefState {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    capacity: usize,
    pub pos: usize,
    /// Round cached K/V through f16, as the GPU's f16 cache does.
    pub kv_f16: bool,
}

impl RefModel {
    pub fn new(m: &HostModel) -> RefModel {
        let t = |n: &str| m.tensors[n].to_f32();
        let layers = (0..m.config.n_layers)
            .map(|i| {
                let n = |s: &str| t(&format!("blk.{i}.{s}.weight"));
                Layer {
                    attn_norm: n("attn_norm"),
                    wq: n("attn_q"),
                    wk: n("attn_k"),
                    wv: n("attn_v"),
                    wo: n("attn_output"),
                    ffn_norm: n("ffn_norm"),
                    gate: n("ffn_gate"),
                    up: n("ffn_up"),
                    down: n("ffn_down"),
                }
            })
            .collect();
        RefModel {
            config: m.config.clone(),
            embd: t("token_embd.weight"),
            layers,
            out_norm: t("output_norm.weight"),
            output: m.tensors.get("output.weight").map(|x| x.to_f32()),
        }
    }

    pub fn state(&self, capacity: usize, kv_f16: bool) -> RefState {
        let n = self.config.n_kv_heads * capacity * self.config.head_dim;
        RefState {
            k: vec![vec![0.0; n]; self.config.n_layers],
            v: vec![vec![0.0; n]; self.config.n_layers],
            capacity,
            pos: 0,
            kv_f16,
        }
    }

    /// One token through every layer; returns the logits.
    pub fn forward(&self, st: &mut RefState, token: u32) -> Vec<f32> {
        let x = self.layers(st, token);
        // Final norm and LM head (tied to the embedding when there is no output.weight).
        let xn = ops::rmsnorm(&x, &self.out_norm, self.config.rms_eps);
        ops::matvec(self.output.as_ref().unwrap_or(&self.embd), &xn)
    }

    /// One token through every layer into the cache, without the LM head (a prompt's
    /// tokens whose logits nobody reads: the head is a fifth of SmolLM2's per-token work).
    pub fn push(&self, st: &mut RefState, token: u32) {
        self.layers(st, token);
    }

    /// One token through every layer (its k and v into the cache); returns the residual
    /// stream after the last layer.
    fn layers(&self, st: &mut RefState, token: u32) -> Vec<f32> {
        let c = &self.config;
        let hd = c.head_dim;
        let pos = st.pos;
        let round = |x: f32| if st.kv_f16 { ops::round_f16(x) } else { x };
        // Embedding row.
        let mut x = ops::embed(&self.embd, c.hidden, token);
        for (li, l) in self.layers.iter().enumerate() {
            // Attention block: norm, projections, RoPE, cache write, attention, output projection.
            let xn = ops::rmsnorm(&x, &l.attn_norm, c.rms_eps);
            let mut q = ops::matvec(&l.wq, &xn);
            let mut k = ops::matvec(&l.wk, &xn);
            let v = ops::matvec(&l.wv, &xn);
            for h in 0..c.n_heads {
                ops::rope(&mut q[h * hd..(h + 1) * hd], pos, c.rope_theta, c.rope_style);
            }
            for h in 0..c.n_kv_heads {
                ops::rope(&mut k[h * hd..(h + 1) * hd], pos, c.rope_theta, c.rope_style);
                let o = (h * st.capacity + pos) * hd;
                for i in 0..hd {
                    st.k[li][o + i] = round(k[h * hd + i]);
                    st.v[li][o + i] = round(v[h * hd + i]);
                }
            }
            let mut att = vec![0f32; c.q_dim()];
            let scale = 1.0 / (hd as f32).sqrt();
            for h in 0..c.n_heads {
                let kvh = h / c.group();
                let base = kvh * st.capacity * hd;
                let o = ops::attention(
                    &q[h * hd..(h + 1) * hd],
                    &st.k[li][base..base + (pos + 1) * hd],
                    &st.v[li][base..base + (pos + 1) * hd],
                    hd,
                    pos + 1,
                    scale,
                );
                att[h * hd..(h + 1) * hd].copy_from_slice(&o);
            }
            let o = ops::matvec(&l.wo, &att);
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            // Feed-forward block: norm, SwiGLU, down projection, residual.
            let xn = ops::rmsnorm(&x, &l.ffn_norm, c.rms_eps);
            let act = ops::silu_mul(&ops::matvec(&l.gate, &xn), &ops::matvec(&l.up, &xn));
            let d = ops::matvec(&l.down, &act);
            x.iter_mut().zip(&d).for_each(|(a, b)| *a += b);
        }
        st.pos += 1;
        x
    }
}
