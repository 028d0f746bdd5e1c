//! Random-weight llama models with exact real shapes, written as GGUF: for tests of
//! every weight type and for throughput benchmarks where the real file can't go.
use super::gguf::{self, MetaValue, WriteTensor};
use super::tensor::WeightType;
use crate::reference::quant::quantize;

/// Shapes of a llama-family model.
#[derive(Clone, Debug)]
pub struct Shape {
    pub n_layers: usize,
    pub hidden: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub context: usize,
}

impl Shape {
    /// SmolLM2-135M.
    pub fn smollm2_135m() -> Shape {
        Shape { n_layers: 30, hidden: 576, n_heads: 9, n_kv_heads: 3, ffn: 1536, vocab: 49152, context: 8192 }
    }
    /// Llama-3.2-1B-like.
    pub fn llama_1b() -> Shape {
        Shape { n_layers: 16, hidden: 2048, n_heads: 32, n_kv_heads: 8, ffn: 8192, vocab: 128256, context: 8192 }
    }
    /// Llama-3-8B-like.
    pub fn llama_8b() -> Shape {
        Shape { n_layers: 32, hidden: 4096, n_heads: 32, n_kv_heads: 8, ffn: 14336, vocab: 128256, context: 8192 }
    }
    /// A tiny model for fast tests.
    pub fn tiny() -> Shape {
        Shape { n_layers: 2, hidden: 128, n_heads: 4, n_kv_heads: 2, ffn: 192, vocab: 320, context: 256 }
    }
}

/// A distinct one-character token for id `i`, skipping the UTF-16 surrogate range
/// (vocabularies past ~55k ids, e.g. llama-3's 128256, reach it).
fn vocab_char(i: usize) -> char {
    let c = 0x100 + i as u32;
    char::from_u32(if c >= 0xD800 { c + 0x800 } else { c }).expect("vocabulary too large for one-char tokens")
}

struct Rng(u64);
impl Rng {
    fn f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// GGUF bytes of a random llama with `shape`; matrices stored as `ty`, the
/// embedding as `embd_ty` (tied LM head), norms as F32. Tokenizer: gpt2 BPE over
/// single-character tokens, no merges.
pub fn llama_gguf(shape: &Shape, ty: WeightType, embd_ty: WeightType, seed: u64) -> Vec<u8> {
    let s = shape;
    let hd = s.hidden / s.n_heads;
    let mut rng = Rng(seed);
    let mut mat = |rows: usize, cols: usize, t: WeightType| -> (Vec<u64>, Vec<u8>) {
        // Scale like a trained model: unit-variance outputs for unit-variance inputs.
        let sc = 1.0 / (cols as f32).sqrt() * 1.7;
        let x: Vec<f32> = (0..rows * cols).map(|_| rng.f32() * sc).collect();
        (vec![cols as u64, rows as u64], quantize(t, &x))
    };
    let mut owned: Vec<(String, Vec<u64>, WeightType, Vec<u8>)> = Vec::new();
    let (d, data) = mat(s.vocab, s.hidden, embd_ty);
    owned.push(("token_embd.weight".into(), d, embd_ty, data));
    let norm = |n: usize, r: &mut dyn FnMut() -> f32| -> Vec<u8> {
        quantize(WeightType::F32, &(0..n).map(|_| 1.0 + 0.1 * r()).collect::<Vec<_>>())
    };
    let mut r2 = Rng(seed ^ 0xabcdef);
    owned.push(("output_norm.weight".into(), vec![s.hidden as u64], WeightType::F32, norm(s.hidden, &mut || r2.f32())));
    for i in 0..s.n_layers {
        let n = |x: &str| format!("blk.{i}.{x}.weight");
        owned.push((n("attn_norm"), vec![s.hidden as u64], WeightType::F32, norm(s.hidden, &mut || r2.f32())));
        owned.push((n("ffn_norm"), vec![s.hidden as u64], WeightType::F32, norm(s.hidden, &mut || r2.f32())));
        for (name, rows, cols) in [
            ("attn_q", s.n_heads * hd, s.hidden),
            ("attn_k", s.n_kv_heads * hd, s.hidden),
            ("attn_v", s.n_kv_heads * hd, s.hidden),
            ("attn_output", s.hidden, s.n_heads * hd),
            ("ffn_gate", s.ffn, s.hidden),
            ("ffn_up", s.ffn, s.hidden),
            ("ffn_down", s.hidden, s.ffn),
        ] {
            let (d, data) = mat(rows, cols, ty);
            owned.push((n(name), d, ty, data));
        }
    }
    let tokens: Vec<MetaValue> = (0..s.vocab).map(|i| MetaValue::Str(vocab_char(i).to_string())).collect();
    let types: Vec<MetaValue> = (0..s.vocab).map(|_| MetaValue::I32(1)).collect();
    let meta = vec![
        ("general.architecture", MetaValue::Str("llama".into())),
        ("llama.block_count", MetaValue::U32(s.n_layers as u32)),
        ("llama.embedding_length", MetaValue::U32(s.hidden as u32)),
        ("llama.feed_forward_length", MetaValue::U32(s.ffn as u32)),
        ("llama.attention.head_count", MetaValue::U32(s.n_heads as u32)),
        ("llama.attention.head_count_kv", MetaValue::U32(s.n_kv_heads as u32)),
        ("llama.context_length", MetaValue::U32(s.context as u32)),
        ("llama.attention.layer_norm_rms_epsilon", MetaValue::F32(1e-5)),
        ("llama.rope.freq_base", MetaValue::F32(10000.0)),
        ("tokenizer.ggml.model", MetaValue::Str("gpt2".into())),
        ("tokenizer.ggml.pre", MetaValue::Str("smollm".into())),
        ("tokenizer.ggml.tokens", MetaValue::Array(tokens)),
        ("tokenizer.ggml.token_type", MetaValue::Array(types)),
        ("tokenizer.ggml.merges", MetaValue::Array(vec![])),
        ("tokenizer.ggml.bos_token_id", MetaValue::U32(0)),
        ("tokenizer.ggml.eos_token_id", MetaValue::U32(1)),
    ];
    let tensors: Vec<WriteTensor> =
        owned.iter().map(|(n, d, t, data)| WriteTensor { name: n, dims: d, ggml_type: t.ggml_id(), data }).collect();
    gguf::write(&meta, &tensors)
}

#[cfg(test)]
mod tests {
    use super::vocab_char;

    #[test]
    fn vocab_chars_are_distinct_past_the_surrogates() {
        let n = 128_256;
        let set: std::collections::HashSet<char> = (0..n).map(vocab_char).collect();
        assert_eq!(set.len(), n);
    }
}
