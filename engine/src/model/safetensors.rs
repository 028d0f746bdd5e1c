//! Hugging Face llama checkpoints: `config.json` plus `model.safetensors` or a
//! sharded `model.safetensors.index.json`. Tensors are renamed to their GGUF names
//! and shapes are reversed into ggml order (`dims[0]` = row length), so the rest of
//! the engine sees the same tensor set as from a GGUF file. Weights keep their
//! storage type (F32 / F16 / BF16); nothing is converted.
//!
//! HF checkpoints rotate RoPE halves (`Config::rope_style == RopeStyle::Halves`); the
//! Q/K rows are *not* permuted here.
use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use super::config::Config;
use super::tensor::{HostTensor, WeightType};
use crate::error::{Error, Result};

const CONFIG_FILE: &str = "config.json";
const SINGLE_FILE: &str = "model.safetensors";
const INDEX_FILE: &str = "model.safetensors.index.json";

/// Load an HF llama directory: config.json, model.safetensors or model.safetensors.index.json shards.
/// Tensors are renamed to GGUF names (token_embd.weight, output_norm.weight, output.weight if untied,
/// blk.{i}.attn_norm.weight, blk.{i}.attn_q.weight, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down)
/// and keep their dtype (F32/F16/BF16 -> WeightType::F32/F16/BF16); any other dtype is Error::UnsupportedTensorType naming tensor and dtype.
///
/// When `model.safetensors` exists it wins over an index. Files are memory-mapped
/// (read whole on wasm) and each kept tensor is copied out once.
pub fn load_hf_tensors(dir: &Path) -> Result<(Config, HashMap<String, HostTensor>)> {
    let config_path = dir.join(CONFIG_FILE);
    let config_text = std::fs::read_to_string(&config_path).map_err(|e| io_err(&config_path, e))?;
    // Parse the config before touching the weights: an unknown architecture fails fast.
    let cfg = Config::from_hf_json(&config_text)?;

    let single = dir.join(SINGLE_FILE);
    let index = dir.join(INDEX_FILE);
    let (paths, weight_map) = if single.is_file() {
        (vec![single], None)
    } else if index.is_file() {
        let (files, map) = read_index(&index)?;
        (files.iter().map(|f| dir.join(f)).collect::<Vec<_>>(), Some(map))
    } else {
        return Err(Error::Io {
            path: single.display().to_string(),
            message: format!("no such file (and no {INDEX_FILE} either)"),
        });
    };

    let mut tensors = HashMap::new();
    for path in &paths {
        let bytes = FileBytes::open(path)?;
        let label = path.display().to_string();
        add_file(&mut tensors, bytes.as_slice(), &label)?;
    }
    if let Some(map) = weight_map {
        check_index(&map, &tensors)?;
    }
    apply_tie(&config_text, &mut tensors)?;
    Ok((cfg, tensors))
}

/// Same as [`load_hf_tensors`] from in-memory files: `config.json` text plus the bytes of
/// every safetensors file (one file or all shards, any order).
pub fn load_hf_from_bytes(config_json: &str, files: &[&[u8]]) -> Result<(Config, HashMap<String, HostTensor>)> {
    let cfg = Config::from_hf_json(config_json)?;
    let mut tensors = tensors_from_safetensors(files)?;
    apply_tie(config_json, &mut tensors)?;
    Ok((cfg, tensors))
}

/// Same from in-memory files (for tests / wasm): the bytes of each safetensors file.
/// Returns every recognised tensor under its GGUF name (including `output.weight` when
/// `lm_head.weight` is present: without a config the tie is unknown). Unknown tensors
/// (e.g. `rotary_emb.inv_freq`) are ignored; a tensor present in two files is an error.
pub fn tensors_from_safetensors(files: &[&[u8]]) -> Result<HashMap<String, HostTensor>> {
    let mut tensors = HashMap::new();
    for (i, bytes) in files.iter().enumerate() {
        add_file(&mut tensors, bytes, &format!("safetensors file #{i}"))?;
    }
    Ok(tensors)
}

/// GGUF name of an HF llama tensor name; `None` for tensors the engine does not use.
pub fn hf_to_gguf_name(name: &str) -> Option<String> {
    match name {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, suffix) = rest.split_once('.')?;
    // Only plain decimal layer numbers ("07" or "+1" would alias another layer).
    if layer.is_empty() || !layer.bytes().all(|b| b.is_ascii_digit()) || (layer.len() > 1 && layer.starts_with('0')) {
        return None;
    }
    let gguf = match suffix {
        "input_layernorm.weight" => "attn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        _ => return None,
    };
    Some(format!("blk.{layer}.{gguf}"))
}

/// Map a safetensors dtype to the engine's storage type.
fn weight_type(dtype: Dtype, tensor: &str) -> Result<WeightType> {
    match dtype {
        Dtype::F32 => Ok(WeightType::F32),
        Dtype::F16 => Ok(WeightType::F16),
        Dtype::BF16 => Ok(WeightType::BF16),
        other => {
            Err(Error::UnsupportedTensorType { tensor: tensor.to_string(), ty: format!("{other} (safetensors dtype)") })
        }
    }
}

/// Parse one safetensors file and add its recognised tensors, renamed, to `out`.
fn add_file(out: &mut HashMap<String, HostTensor>, bytes: &[u8], label: &str) -> Result<()> {
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| Error::Format(format!("{label}: bad safetensors file: {e}")))?;
    for (hf_name, view) in st.iter() {
        let Some(name) = hf_to_gguf_name(hf_name) else {
            continue;
        };
        let ty = weight_type(view.dtype(), hf_name)?;
        let shape = view.shape();
        if shape.is_empty() || shape.contains(&0) {
            return Err(Error::Format(format!("{label}: tensor `{hf_name}` has shape {shape:?}")));
        }
        // HF / PyTorch order is outermost first; ggml order is innermost first.
        let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        let data = view.data();
        // `deserialize` already checks offsets against dtype x shape; keep a cheap guard.
        let n: u64 = dims.iter().product();
        if ty.bytes_for(n, hf_name)? != data.len() as u64 {
            return Err(Error::Format(format!(
                "{label}: tensor `{hf_name}` holds {} bytes, shape {shape:?} needs {}",
                data.len(),
                n * ty.block_bytes() as u64
            )));
        }
        if out.contains_key(&name) {
            return Err(Error::Format(format!("{label}: tensor `{hf_name}` (`{name}`) appears in more than one file")));
        }
        out.insert(name.clone(), HostTensor { name, dims, ty, data: data.to_vec() });
    }
    Ok(())
}

/// Read `model.safetensors.index.json`: the shard file names (in first-seen order)
/// and the tensor -> file map.
fn read_index(path: &Path) -> Result<(Vec<String>, HashMap<String, String>)> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::Format(format!("{}: {e}", path.display())))?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::Format(format!("{}: missing `weight_map` object", path.display())))?;
    let mut files: Vec<String> = Vec::new();
    let mut weight_map = HashMap::with_capacity(map.len());
    for (tensor, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| Error::Format(format!("{}: weight_map[`{tensor}`] is not a string", path.display())))?;
        // Shards must sit in the model directory: no absolute paths or `..`.
        let p = Path::new(file);
        if file.is_empty() || p.is_absolute() || p.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            return Err(Error::Format(format!("{}: shard name `{file}` is not a plain file name", path.display())));
        }
        if !files.iter().any(|f| f == file) {
            files.push(file.to_string());
        }
        weight_map.insert(tensor.clone(), file.to_string());
    }
    if files.is_empty() {
        return Err(Error::Format(format!("{}: `weight_map` is empty", path.display())));
    }
    Ok((files, weight_map))
}

/// Every recognised tensor the index promises must have been found.
fn check_index(map: &HashMap<String, String>, tensors: &HashMap<String, HostTensor>) -> Result<()> {
    let mut names: Vec<_> = map.keys().collect();
    names.sort();
    for hf_name in names {
        if let Some(name) = hf_to_gguf_name(hf_name) {
            if !tensors.contains_key(&name) {
                return Err(Error::Format(format!(
                    "index says `{hf_name}` is in `{}`, but that file does not contain it",
                    map[hf_name]
                )));
            }
        }
    }
    Ok(())
}

/// Apply `tie_word_embeddings`: when true, the head is `token_embd` and any stored
/// `output.weight` is dropped; when explicitly false, `output.weight` must exist. When
/// the key is absent, a stored `lm_head.weight` is kept and otherwise the head is tied.
fn apply_tie(config_json: &str, tensors: &mut HashMap<String, HostTensor>) -> Result<()> {
    let v: serde_json::Value =
        serde_json::from_str(config_json).map_err(|e| Error::Format(format!("config.json: {e}")))?;
    match v.get("tie_word_embeddings").and_then(|t| t.as_bool()) {
        Some(true) => {
            tensors.remove("output.weight");
        }
        Some(false) if !tensors.contains_key("output.weight") => {
            return Err(Error::MissingTensor(
                "output.weight (lm_head.weight; config.json has tie_word_embeddings: false)".into(),
            ));
        }
        _ => {}
    }
    Ok(())
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io { path: path.display().to_string(), message: e.to_string() }
}

/// A whole file in memory: memory-mapped natively, read on wasm.
enum FileBytes {
    #[cfg(not(target_arch = "wasm32"))]
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl FileBytes {
    fn open(path: &Path) -> Result<FileBytes> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
            let len = file.metadata().map_err(|e| io_err(path, e))?.len();
            if len == 0 {
                // Mapping an empty file fails on some platforms; let the parser report it.
                return Ok(FileBytes::Owned(Vec::new()));
            }
            // SAFETY: the map is read-only and only lives while this load runs; the
            // tensors are copied out before it is dropped. Truncating the file
            // concurrently is outside what we defend against (as for every mmap reader).
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io_err(path, e))?;
            Ok(FileBytes::Mapped(map))
        }
        #[cfg(target_arch = "wasm32")]
        {
            std::fs::read(path).map(FileBytes::Owned).map_err(|e| io_err(path, e))
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    const CONFIG: &str = r#"{
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4,
        "vocab_size": 10, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
        "rope_theta": 100000.0, "tie_word_embeddings": true
    }"#;

    fn bytes_of(dtype: Dtype, n: usize, seed: u8) -> Vec<u8> {
        let size = match dtype {
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
            Dtype::I64 | Dtype::F64 => 8,
            _ => 1,
        };
        (0..n * size).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect()
    }

    /// (HF name, dtype, HF shape) for a tiny llama with hidden 8, ffn 12, 2 layers.
    fn tiny_llama(dtype: Dtype) -> Vec<(String, Dtype, Vec<usize>)> {
        let mut v = vec![
            ("model.embed_tokens.weight".to_string(), dtype, vec![10, 8]),
            ("model.norm.weight".to_string(), Dtype::F32, vec![8]),
        ];
        for i in 0..2 {
            let l = |s: &str| format!("model.layers.{i}.{s}");
            v.push((l("input_layernorm.weight"), Dtype::F32, vec![8]));
            v.push((l("post_attention_layernorm.weight"), Dtype::F32, vec![8]));
            v.push((l("self_attn.q_proj.weight"), dtype, vec![8, 8]));
            v.push((l("self_attn.k_proj.weight"), dtype, vec![4, 8]));
            v.push((l("self_attn.v_proj.weight"), dtype, vec![4, 8]));
            v.push((l("self_attn.o_proj.weight"), dtype, vec![8, 8]));
            v.push((l("mlp.gate_proj.weight"), dtype, vec![12, 8]));
            v.push((l("mlp.up_proj.weight"), dtype, vec![12, 8]));
            v.push((l("mlp.down_proj.weight"), dtype, vec![8, 12]));
            v.push((l("self_attn.rotary_emb.inv_freq"), Dtype::F32, vec![2]));
        }
        v
    }

    /// Serialize the given tensors into one safetensors file (data derived from the name).
    fn file(specs: &[(String, Dtype, Vec<usize>)]) -> Vec<u8> {
        let datas: Vec<Vec<u8>> =
            specs.iter().map(|(n, d, s)| bytes_of(*d, s.iter().product(), n.len() as u8)).collect();
        let views: Vec<(String, TensorView<'_>)> = specs
            .iter()
            .zip(&datas)
            .map(|((n, d, s), data)| (n.clone(), TensorView::new(*d, s.clone(), data).unwrap()))
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    fn scratch_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("aura-st-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn names_map_to_gguf() {
        let cases = [
            ("model.embed_tokens.weight", Some("token_embd.weight")),
            ("model.norm.weight", Some("output_norm.weight")),
            ("lm_head.weight", Some("output.weight")),
            ("model.layers.0.input_layernorm.weight", Some("blk.0.attn_norm.weight")),
            ("model.layers.12.self_attn.q_proj.weight", Some("blk.12.attn_q.weight")),
            ("model.layers.3.self_attn.k_proj.weight", Some("blk.3.attn_k.weight")),
            ("model.layers.3.self_attn.v_proj.weight", Some("blk.3.attn_v.weight")),
            ("model.layers.3.self_attn.o_proj.weight", Some("blk.3.attn_output.weight")),
            ("model.layers.29.post_attention_layernorm.weight", Some("blk.29.ffn_norm.weight")),
            ("model.layers.1.mlp.gate_proj.weight", Some("blk.1.ffn_gate.weight")),
            ("model.layers.1.mlp.up_proj.weight", Some("blk.1.ffn_up.weight")),
            ("model.layers.1.mlp.down_proj.weight", Some("blk.1.ffn_down.weight")),
            ("model.layers.1.self_attn.rotary_emb.inv_freq", None),
            ("model.layers.x.mlp.up_proj.weight", None),
            ("model.layers.01.mlp.up_proj.weight", None),
            ("model.layers..mlp.up_proj.weight", None),
            ("model.layers.1.self_attn.q_proj.bias", None),
            ("something.else", None),
        ];
        for (hf, gguf) in cases {
            assert_eq!(hf_to_gguf_name(hf).as_deref(), gguf, "{hf}");
        }
    }

    #[test]
    fn renames_reverses_dims_and_keeps_bytes() {
        for (dtype, wt) in
            [(Dtype::F16, WeightType::F16), (Dtype::BF16, WeightType::BF16), (Dtype::F32, WeightType::F32)]
        {
            let specs = tiny_llama(dtype);
            let f = file(&specs);
            let t = tensors_from_safetensors(&[&f]).unwrap();
            // 2 global + 9 per layer; inv_freq ignored.
            assert_eq!(t.len(), 2 + 2 * 9, "{dtype:?}");
            let q = &t["blk.1.attn_q.weight"];
            assert_eq!(q.name, "blk.1.attn_q.weight");
            assert_eq!(q.ty, wt);
            let k = &t["blk.0.attn_k.weight"];
            assert_eq!(k.dims, vec![8, 4]); // HF [out=4, in=8] -> ggml [in, out]
            assert_eq!((k.cols(), k.rows()), (8, 4));
            assert_eq!(t["blk.0.ffn_down.weight"].dims, vec![12, 8]);
            assert_eq!(t["blk.0.ffn_up.weight"].dims, vec![8, 12]);
            assert_eq!(t["token_embd.weight"].dims, vec![8, 10]);
            let norm = &t["output_norm.weight"];
            assert_eq!((norm.dims.clone(), norm.ty), (vec![8], WeightType::F32));
            assert_eq!(t["blk.1.attn_norm.weight"].ty, WeightType::F32);
            // Bytes are copied unchanged (row-major [out][in] == ggml rows).
            let want = bytes_of(dtype, 32, "model.layers.0.self_attn.k_proj.weight".len() as u8);
            assert_eq!(k.data, want);
            assert_eq!(k.data.len() as u64, wt.bytes_for(k.n_elems(), "k").unwrap());
        }
    }

    #[test]
    fn shards_are_merged_and_duplicates_rejected() {
        let specs = tiny_llama(Dtype::F16);
        let (a, b) = specs.split_at(7);
        let (fa, fb) = (file(a), file(b));
        let t = tensors_from_safetensors(&[&fb, &fa]).unwrap();
        assert_eq!(t.len(), 20);
        let err = tensors_from_safetensors(&[&fa, &fa]).unwrap_err();
        assert!(matches!(err, Error::Format(ref m) if m.contains("more than one file")), "{err}");
    }

    #[test]
    fn unsupported_dtype_names_tensor_and_type() {
        let mut specs = tiny_llama(Dtype::F16);
        specs[4].1 = Dtype::I8; // model.layers.0.self_attn.q_proj.weight
        let err = tensors_from_safetensors(&[&file(&specs)]).unwrap_err();
        match err {
            Error::UnsupportedTensorType { tensor, ty } => {
                assert_eq!(tensor, "model.layers.0.self_attn.q_proj.weight");
                assert!(ty.contains("I8"), "{ty}");
            }
            e => panic!("wrong error {e}"),
        }
        // An unsupported dtype on an ignored tensor is fine.
        let mut specs = tiny_llama(Dtype::F16);
        specs.push(("model.layers.0.self_attn.rotary_emb.position_ids".into(), Dtype::I64, vec![4]));
        assert_eq!(tensors_from_safetensors(&[&file(&specs)]).unwrap().len(), 20);
    }

    #[test]
    fn corrupt_headers_are_format_errors() {
        let good = file(&tiny_llama(Dtype::F16));
        let mut bad_json = good.clone();
        bad_json[8] = b'#';
        let mut huge_len = good.clone();
        huge_len[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![1, 2, 3],
            good[..good.len() - 1].to_vec(), // truncated data
            good[..20].to_vec(),             // truncated header
            bad_json,
            huge_len,
        ];
        for (i, c) in cases.iter().enumerate() {
            let err = tensors_from_safetensors(&[c]).unwrap_err();
            assert!(matches!(err, Error::Format(_)), "case {i}: {err}");
        }
    }

    #[test]
    fn tie_handling_from_config() {
        let mut specs = tiny_llama(Dtype::F16);
        specs.push(("lm_head.weight".into(), Dtype::F16, vec![10, 8]));
        let f = file(&specs);
        // Tied: a stored lm_head is dropped.
        let (cfg, t) = load_hf_from_bytes(CONFIG, &[&f]).unwrap();
        assert_eq!((cfg.n_layers, cfg.hidden, cfg.n_kv_heads, cfg.head_dim), (2, 8, 1, 4));
        assert!(!t.contains_key("output.weight"));
        // Untied: kept, with ggml dims.
        let untied = CONFIG.replace("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false");
        let (_, t) = load_hf_from_bytes(&untied, &[&f]).unwrap();
        assert_eq!(t["output.weight"].dims, vec![8, 10]);
        // Untied but missing: error.
        let f2 = file(&tiny_llama(Dtype::F16));
        let err = load_hf_from_bytes(&untied, &[&f2]).unwrap_err();
        assert!(matches!(err, Error::MissingTensor(_)), "{err}");
        // Key absent: keep whatever is stored.
        let absent = CONFIG.replace(", \"tie_word_embeddings\": true", "");
        assert!(load_hf_from_bytes(&absent, &[&f]).unwrap().1.contains_key("output.weight"));
        assert!(!load_hf_from_bytes(&absent, &[&f2]).unwrap().1.contains_key("output.weight"));
    }

    #[test]
    fn unknown_arch_is_reported() {
        let f = file(&tiny_llama(Dtype::F16));
        let cfg = CONFIG.replace("\"llama\"", "\"mistral\"");
        let err = load_hf_from_bytes(&cfg, &[&f]).unwrap_err();
        assert!(matches!(err, Error::UnknownArchitecture(ref a) if a == "mistral"), "{err}");
    }

    #[test]
    fn directory_single_and_sharded() {
        let specs = tiny_llama(Dtype::BF16);
        // Single file.
        let d = scratch_dir("single");
        std::fs::write(d.join("config.json"), CONFIG).unwrap();
        std::fs::write(d.join("model.safetensors"), file(&specs)).unwrap();
        let (cfg, t) = load_hf_tensors(&d).unwrap();
        assert_eq!(cfg.vocab, 10);
        assert_eq!(t.len(), 20);
        assert_eq!(t["blk.1.ffn_gate.weight"].dims, vec![8, 12]);
        assert_eq!(t["blk.1.ffn_gate.weight"].ty, WeightType::BF16);
        std::fs::remove_dir_all(&d).unwrap();

        // Sharded with an index.
        let d = scratch_dir("sharded");
        std::fs::write(d.join("config.json"), CONFIG).unwrap();
        let parts = [&specs[..5], &specs[5..13], &specs[13..]];
        let mut map = serde_json::Map::new();
        for (i, part) in parts.iter().enumerate() {
            let name = format!("model-{:05}-of-00003.safetensors", i + 1);
            std::fs::write(d.join(&name), file(part)).unwrap();
            for (n, _, _) in part.iter() {
                map.insert(n.clone(), serde_json::Value::String(name.clone()));
            }
        }
        let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": map});
        std::fs::write(d.join(INDEX_FILE), index.to_string()).unwrap();
        let (_, t2) = load_hf_tensors(&d).unwrap();
        assert_eq!(t2.len(), 20);
        for (k, v) in &t {
            assert_eq!((&t2[k].dims, t2[k].ty, &t2[k].data), (&v.dims, v.ty, &v.data), "{k}");
        }

        // A missing shard is an Io error naming the file.
        std::fs::remove_file(d.join("model-00002-of-00003.safetensors")).unwrap();
        match load_hf_tensors(&d).unwrap_err() {
            Error::Io { path, .. } => {
                assert!(path.ends_with("model-00002-of-00003.safetensors"), "{path}")
            }
            e => panic!("wrong error {e}"),
        }
        // An index entry for a tensor no shard contains is a Format error; unknown
        // (ignored) names in the index are fine.
        std::fs::write(d.join("model-00002-of-00003.safetensors"), file(parts[1])).unwrap();
        map.insert("extra.unused".into(), serde_json::Value::String("model-00001-of-00003.safetensors".into()));
        std::fs::write(d.join(INDEX_FILE), serde_json::json!({"weight_map": map}).to_string()).unwrap();
        assert!(load_hf_tensors(&d).is_ok());
        map.insert(
            "model.layers.5.mlp.up_proj.weight".into(),
            serde_json::Value::String("model-00001-of-00003.safetensors".into()),
        );
        std::fs::write(d.join(INDEX_FILE), serde_json::json!({"weight_map": map}).to_string()).unwrap();
        let err = load_hf_tensors(&d).unwrap_err();
        assert!(matches!(err, Error::Format(ref m) if m.contains("layers.5.mlp.up_proj")), "{err}");

        // Path escapes in the index are rejected.
        std::fs::write(d.join(INDEX_FILE), r#"{"weight_map": {"a": "../x.safetensors"}}"#).unwrap();
        assert!(matches!(load_hf_tensors(&d).unwrap_err(), Error::Format(_)));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn directory_errors() {
        let d = scratch_dir("errors");
        // No config.json.
        match load_hf_tensors(&d).unwrap_err() {
            Error::Io { path, .. } => assert!(path.ends_with("config.json"), "{path}"),
            e => panic!("wrong error {e}"),
        }
        // Config but no weights.
        std::fs::write(d.join("config.json"), CONFIG).unwrap();
        match load_hf_tensors(&d).unwrap_err() {
            Error::Io { path, .. } => assert!(path.ends_with("model.safetensors"), "{path}"),
            e => panic!("wrong error {e}"),
        }
        // Corrupt weights.
        std::fs::write(d.join("model.safetensors"), b"\x10\0\0\0\0\0\0\0{not json}      ").unwrap();
        assert!(matches!(load_hf_tensors(&d).unwrap_err(), Error::Format(_)));
        // Empty weights file.
        std::fs::write(d.join("model.safetensors"), b"").unwrap();
        assert!(matches!(load_hf_tensors(&d).unwrap_err(), Error::Format(_)));
        // Unknown architecture beats broken weights.
        std::fs::write(d.join("config.json"), CONFIG.replace("\"llama\"", "\"gpt2\"")).unwrap();
        assert!(matches!(load_hf_tensors(&d).unwrap_err(), Error::UnknownArchitecture(_)));
        // Bad JSON in config.
        std::fs::write(d.join("config.json"), "{").unwrap();
        assert!(matches!(load_hf_tensors(&d).unwrap_err(), Error::Format(_)));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
