//! Model hyper-parameters, read from GGUF metadata or an HF `config.json`.
use super::gguf::Gguf;
use crate::error::{Error, Result};

/// Which element pairs RoPE rotates. GGUF llama checkpoints store Q/K permuted for
/// adjacent pairs (2i, 2i+1); HF checkpoints rotate halves (i, i + d/2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    Adjacent,
    Halves,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub arch: String,
    pub n_layers: usize,
    pub hidden: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub context_length: usize,
    pub rms_eps: f32,
    pub rope_theta: f32,
    pub rope_style: RopeStyle,
}

impl Config {
    pub fn group(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    pub fn from_gguf(g: &Gguf) -> Result<Config> {
        let arch = g.req_str("general.architecture")?.to_string();
        if arch != "llama" {
            return Err(Error::UnknownArchitecture(arch));
        }
        let k = |s: &str| format!("{arch}.{s}");
        let hidden = g.req_u64(&k("embedding_length"))? as usize;
        let n_heads = g.req_u64(&k("attention.head_count"))? as usize;
        let n_kv_heads = match g.get(&k("attention.head_count_kv")) {
            Some(v) => v.as_u64().ok_or_else(|| Error::Format("head_count_kv".into()))? as usize,
            None => n_heads,
        };
        let head_dim = match g.get(&k("attention.key_length")) {
            Some(v) => v.as_u64().unwrap_or(0) as usize,
            None if n_heads > 0 => hidden / n_heads,
            None => 0,
        };
        let vocab = match g.get(&k("vocab_size")) {
            Some(v) => v.as_u64().unwrap_or(0) as usize,
            None => g.str_array("tokenizer.ggml.tokens")?.len(),
        };
        let cfg = Config {
            n_layers: g.req_u64(&k("block_count"))? as usize,
            hidden,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn: g.req_u64(&k("feed_forward_length"))? as usize,
            vocab,
            context_length: g.req_u64(&k("context_length"))? as usize,
            rms_eps: g.req_f64(&k("attention.layer_norm_rms_epsilon"))? as f32,
            rope_theta: g.get(&k("rope.freq_base")).and_then(|v| v.as_f64()).unwrap_or(10000.0) as f32,
            rope_style: RopeStyle::Adjacent,
            arch,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parse an HF `config.json` (llama family).
    pub fn from_hf_json(text: &str) -> Result<Config> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::Format(format!("config.json: {e}")))?;
        let arch = v["model_type"].as_str().unwrap_or("").to_string();
        if arch != "llama" {
            return Err(Error::UnknownArchitecture(if arch.is_empty() { "<missing model_type>".into() } else { arch }));
        }
        let u = |key: &str| -> Result<usize> {
            v[key].as_u64().map(|x| x as usize).ok_or_else(|| Error::Format(format!("config.json: missing `{key}`")))
        };
        let hidden = u("hidden_size")?;
        let n_heads = u("num_attention_heads")?;
        let cfg = Config {
            n_layers: u("num_hidden_layers")?,
            hidden,
            n_heads,
            n_kv_heads: v["num_key_value_heads"].as_u64().map(|x| x as usize).unwrap_or(n_heads),
            head_dim: v["head_dim"].as_u64().map(|x| x as usize).unwrap_or(if n_heads > 0 {
                hidden / n_heads
            } else {
                0
            }),
            ffn: u("intermediate_size")?,
            vocab: u("vocab_size")?,
            context_length: u("max_position_embeddings")?,
            rms_eps: v["rms_norm_eps"].as_f64().unwrap_or(1e-5) as f32,
            rope_theta: v["rope_theta"].as_f64().unwrap_or(10000.0) as f32,
            rope_style: RopeStyle::Halves,
            arch,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        let ok = self.n_layers > 0
            && self.hidden > 0
            && self.n_heads > 0
            && self.n_kv_heads > 0
            && self.n_heads.is_multiple_of(self.n_kv_heads)
            && self.head_dim > 0
            && self.head_dim.is_multiple_of(2)
            && self.head_dim <= 256
            && self.ffn > 0
            && self.vocab > 0;
        if !ok {
            return Err(Error::Format(format!("inconsistent model config: {self:?}")));
        }
        Ok(())
    }
}
