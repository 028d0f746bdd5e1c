//! Model loading: GGUF files and HF directories into host tensors, config and tokenizer.
pub mod config;
pub mod gguf;
pub mod llama;
pub mod safetensors;
pub mod synthetic;
pub mod tensor;
pub mod tokenizer;

use std::collections::HashMap;

use config::Config;
use tensor::HostTensor;
use tokenizer::Tokenizer;

use crate::error::{Error, Result};

/// A model on the host: config, tensors (GGUF names, file formats) and tokenizer.
pub struct HostModel {
    pub config: Config,
    pub tensors: HashMap<String, HostTensor>,
    pub tokenizer: Tokenizer,
}

impl HostModel {
    /// Parse a GGUF file held in memory (native: memory-mapped; web: fetched bytes).
    pub fn from_gguf_bytes(bytes: &[u8]) -> Result<HostModel> {
        let g = gguf::Gguf::parse(bytes)?;
        let config = Config::from_gguf(&g)?;
        let tokenizer = Tokenizer::from_gguf(&g)?;
        let mut tensors = HashMap::new();
        for name in llama::tensor_names(&config, g.has_tensor("output.weight")) {
            tensors.insert(name.clone(), g.tensor(bytes, &name)?);
        }
        let m = HostModel { config, tensors, tokenizer };
        m.validate()?;
        Ok(m)
    }

    /// Load a GGUF file or an HF directory (config.json + safetensors + tokenizer.json).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(path: &std::path::Path) -> Result<HostModel> {
        let io = |e: std::io::Error| Error::Io { path: path.display().to_string(), message: e.to_string() };
        if path.is_dir() {
            let (config, tensors) = safetensors::load_hf_tensors(path)?;
            let read = |name: &str| -> Result<Vec<u8>> {
                let p = path.join(name);
                std::fs::read(&p).map_err(|e| Error::Io { path: p.display().to_string(), message: e.to_string() })
            };
            let tok_json = read("tokenizer.json")?;
            let tok_cfg = read("tokenizer_config.json").ok();
            let tokenizer = Tokenizer::from_json_bytes(&tok_json, tok_cfg.as_deref())?;
            let m = HostModel { config, tensors, tokenizer };
            m.validate()?;
            return Ok(m);
        }
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and dropped before we return; tensors are copied out.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        HostModel::from_gguf_bytes(&map)
    }

    pub fn tensor(&self, name: &str) -> Result<&HostTensor> {
        self.tensors.get(name).ok_or_else(|| Error::MissingTensor(name.to_string()))
    }

    /// Every tensor present with the shape the config implies, rows a whole number of units.
    fn validate(&self) -> Result<()> {
        let c = &self.config;
        let (h, q, kv, f, v) = (c.hidden as u64, c.q_dim() as u64, c.kv_dim() as u64, c.ffn as u64, c.vocab as u64);
        self.tensor("token_embd.weight")?.expect_dims(&[h, v])?;
        self.tensor("output_norm.weight")?.expect_dims(&[h])?;
        if let Some(t) = self.tensors.get("output.weight") {
            t.expect_dims(&[h, v])?;
        }
        for i in 0..c.n_layers {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            self.tensor(&n("attn_norm"))?.expect_dims(&[h])?;
            self.tensor(&n("ffn_norm"))?.expect_dims(&[h])?;
            self.tensor(&n("attn_q"))?.expect_dims(&[h, q])?;
            self.tensor(&n("attn_k"))?.expect_dims(&[h, kv])?;
            self.tensor(&n("attn_v"))?.expect_dims(&[h, kv])?;
            self.tensor(&n("attn_output"))?.expect_dims(&[q, h])?;
            self.tensor(&n("ffn_gate"))?.expect_dims(&[h, f])?;
            self.tensor(&n("ffn_up"))?.expect_dims(&[h, f])?;
            self.tensor(&n("ffn_down"))?.expect_dims(&[f, h])?;
        }
        for t in self.tensors.values() {
            if t.cols() % 8 != 0 {
                return Err(Error::Format(format!(
                    "tensor `{}`: row length {} is not a multiple of 8",
                    t.name,
                    t.cols()
                )));
            }
        }
        if self.tokenizer.vocab_size() > c.vocab {
            return Err(Error::Format(format!(
                "tokenizer has {} tokens but the model's vocabulary is {}",
                self.tokenizer.vocab_size(),
                c.vocab
            )));
        }
        Ok(())
    }
}
