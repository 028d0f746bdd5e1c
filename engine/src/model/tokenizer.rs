//! Tokenizer: byte-level BPE built from GGUF metadata (or loaded from an HF
//! `tokenizer.json`), chat-template rendering and streaming detokenization.
//!
//! GGUF tokenizers are rebuilt with the `tokenizers` crate so that ids match
//! llama.cpp exactly: the pre-tokenizer is chosen from `tokenizer.ggml.pre`
//! (same split rules llama.cpp uses), CONTROL/UNKNOWN tokens become special
//! added tokens and USER_DEFINED tokens become non-special added tokens.
//! `encode` never adds BOS; `parse_special = false` tokenizes special-token
//! text as plain text (llama.cpp's `parse_special` semantics).
use minijinja::{Environment, ErrorKind, State, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior};

use super::gguf::{Gguf, MetaValue};
use crate::error::{Error, Result};

/// GGUF token types (llama.cpp `llama_token_type`).
const TOKEN_TYPE_UNKNOWN: u64 = 2;
const TOKEN_TYPE_CONTROL: u64 = 3;
const TOKEN_TYPE_USER_DEFINED: u64 = 4;

/// End-of-generation tokens honoured by `is_stop` when present in the vocab.
const END_TOKENS: &[&str] = &[
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<end_of_turn>",
    "<|end|>",
    "<|return|>",
    "</s>",
    "<EOT>",
];

/// llama.cpp's LLAMA3 split regex (HF `tokenizer.json` form).
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// llama.cpp's QWEN2 split regex (single digits).
const QWEN2_REGEX: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn tk_err(what: &str) -> impl Fn(tokenizers::Error) -> Error + '_ {
    move |e| Error::Tokenizer(format!("{what}: {e}"))
}

/// One message of a chat conversation, as passed to the chat template.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage { role: role.into(), content: content.into() }
    }
}

/// A text tokenizer plus the chat template and special ids of its model.
pub struct Tokenizer {
    /// Splits special (CONTROL) token text out of the input: `parse_special = true`.
    special: tokenizers::Tokenizer,
    /// Same tokenizer with special-token splitting off: `parse_special = false`.
    plain: tokenizers::Tokenizer,
    vocab_size: usize,
    bos: Option<u32>,
    eos: Option<u32>,
    stop: Vec<u32>,
    template: Option<String>,
}

/// Pre-tokenizer and `ignore_merges` for a llama.cpp `tokenizer.ggml.pre` name.
fn pre_tokenizer(pre: &str) -> Result<(PreTokenizerWrapper, bool)> {
    let byte_level = |regex: bool| PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, regex));
    let split = |re: &str| -> Result<PreTokenizerWrapper> {
        Split::new(SplitPattern::Regex(re.to_string()), SplitDelimiterBehavior::Isolated, false)
            .map(PreTokenizerWrapper::Split)
            .map_err(tk_err("pre-tokenizer regex"))
    };
    Ok(match pre {
        // llama.cpp: "\p{N}" then the GPT-2 regex; HF: Digits(individual) + ByteLevel.
        "smollm" | "starcoder" | "refact" | "codeshell" | "command-r" | "exaone" | "minerva" => (
            PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Digits(Digits::new(true)),
                byte_level(true),
            ])),
            false,
        ),
        "gpt2" | "gpt-2" | "mpt" | "olmo" | "jais" => (byte_level(true), false),
        "llama-bpe" | "llama3" => {
            (PreTokenizerWrapper::Sequence(Sequence::new(vec![split(LLAMA3_REGEX)?, byte_level(false)])), true)
        }
        "qwen2" | "stablelm2" => {
            (PreTokenizerWrapper::Sequence(Sequence::new(vec![split(QWEN2_REGEX)?, byte_level(false)])), false)
        }
        other => {
            return Err(Error::Tokenizer(format!(
                "unsupported pre-tokenizer `{other}` (supported: smollm, starcoder, refact, codeshell, \
                 command-r, exaone, minerva, gpt2, mpt, olmo, jais, llama-bpe, qwen2, stablelm2)"
            )))
        }
    })
}

/// Read an optional id-valued metadata key.
fn meta_id(g: &Gguf, key: &str) -> Option<u32> {
    g.get(key).and_then(MetaValue::as_u64).and_then(|v| u32::try_from(v).ok())
}

/// Token string of `tokenizer_config.json`'s `bos_token`/`eos_token` (string or `{content}`).
fn config_token(cfg: &serde_json::Value, key: &str) -> Option<String> {
    match cfg.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        v => v.get("content")?.as_str().map(str::to_string),
    }
}

impl Tokenizer {
    /// Build the tokenizer from GGUF `tokenizer.*` metadata (`gpt2` BPE models only).
    pub fn from_gguf(g: &Gguf) -> Result<Tokenizer> {
        let model = g.req_str("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(Error::Tokenizer(format!(
                "unsupported tokenizer model `{model}` (only byte-level BPE `gpt2` is implemented)"
            )));
        }
        let pre = g.get("tokenizer.ggml.pre").and_then(MetaValue::as_str).unwrap_or("default");
        let (pre_tok, ignore_merges) = pre_tokenizer(pre)?;
        let tokens = g.str_array("tokenizer.ggml.tokens")?;
        let types: Vec<u64> = match g.get("tokenizer.ggml.token_type").and_then(MetaValue::as_array) {
            Some(a) if a.len() == tokens.len() => a.iter().map(|v| v.as_u64().unwrap_or(1)).collect(),
            Some(a) => {
                return Err(Error::Tokenizer(format!("token_type has {} entries for {} tokens", a.len(), tokens.len())))
            }
            None => vec![1; tokens.len()],
        };
        // Duplicate token strings keep their first id (the BPE vocab is a map).
        let mut vocab = Vocab::default();
        for (id, t) in tokens.iter().enumerate() {
            vocab.entry(t.to_string()).or_insert(id as u32);
        }
        let merges = g
            .str_array("tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| Error::Tokenizer(format!("merge `{m}` has no space")))
            })
            .collect::<Result<Vec<_>>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .byte_fallback(false)
            .ignore_merges(ignore_merges)
            .build()
            .map_err(tk_err("building BPE"))?;
        let mut tok = tokenizers::Tokenizer::new(bpe);
        tok.with_pre_tokenizer(Some(pre_tok));
        tok.with_decoder(Some(ByteLevelDecoder::default()));
        tok.with_post_processor(Some(ByteLevel::new(true, false, true)));
        let added = |ty: u64, special: bool| -> Vec<AddedToken> {
            tokens
                .iter()
                .zip(&types)
                .filter(|(_, &t)| t == ty)
                .map(|(s, _)| AddedToken::from(s.to_string(), special).normalized(false))
                .collect()
        };
        tok.add_special_tokens(&added(TOKEN_TYPE_CONTROL, true));
        tok.add_special_tokens(&added(TOKEN_TYPE_UNKNOWN, true));
        tok.add_tokens(&added(TOKEN_TYPE_USER_DEFINED, false));
        let mut stop: Vec<u32> = ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"]
            .iter()
            .filter_map(|k| meta_id(g, k))
            .collect();
        stop.retain(|&id| (id as usize) < tokens.len());
        let template = g.get("tokenizer.chat_template").and_then(MetaValue::as_str).map(str::to_string);
        let bos = meta_id(g, "tokenizer.ggml.bos_token_id").filter(|&i| (i as usize) < tokens.len());
        let eos = meta_id(g, "tokenizer.ggml.eos_token_id").filter(|&i| (i as usize) < tokens.len());
        Ok(Self::assemble(tok, tokens.len(), bos, eos, stop, template))
    }

    /// Load an HF `tokenizer.json`; `tokenizer_config.json` (optional) supplies the
    /// chat template and the BOS/EOS token strings.
    pub fn from_json_bytes(tokenizer_json: &[u8], tokenizer_config_json: Option<&[u8]>) -> Result<Tokenizer> {
        let tok = tokenizers::Tokenizer::from_bytes(tokenizer_json).map_err(tk_err("parsing tokenizer.json"))?;
        let cfg: serde_json::Value = match tokenizer_config_json {
            Some(b) => serde_json::from_slice(b)
                .map_err(|e| Error::Tokenizer(format!("parsing tokenizer_config.json: {e}")))?,
            None => serde_json::Value::Null,
        };
        let id_of = |key: &str| -> Result<Option<u32>> {
            match config_token(&cfg, key) {
                None => Ok(None),
                Some(t) => tok.token_to_id(&t).map(Some).ok_or_else(|| {
                    Error::Tokenizer(format!("tokenizer_config.json {key} `{t}` is not in the vocabulary"))
                }),
            }
        };
        let (bos, eos) = (id_of("bos_token")?, id_of("eos_token")?);
        // `chat_template` is a string, or a list of `{name, template}` (take "default").
        let template = match cfg.get("chat_template") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .or_else(|| list.first())
                .and_then(|t| t.get("template")?.as_str().map(str::to_string)),
            _ => None,
        };
        let vocab_size = tok.get_vocab(true).values().max().map_or(0, |&m| m as usize + 1);
        Ok(Self::assemble(tok, vocab_size, bos, eos, Vec::new(), template))
    }

    fn assemble(
        special: tokenizers::Tokenizer,
        vocab_size: usize,
        bos: Option<u32>,
        eos: Option<u32>,
        mut stop: Vec<u32>,
        template: Option<String>,
    ) -> Tokenizer {
        let mut plain = special.clone();
        plain.set_encode_special_tokens(true);
        stop.extend(eos);
        stop.extend(END_TOKENS.iter().filter_map(|t| special.token_to_id(t)));
        stop.sort_unstable();
        stop.dedup();
        Tokenizer { special, plain, vocab_size, bos, eos, stop, template }
    }

    /// Token ids of `text`. Never adds BOS. With `parse_special`, special-token
    /// text (e.g. `<|im_start|>`) becomes its single id; otherwise it is plain text.
    pub fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        let tok = if parse_special { &self.special } else { &self.plain };
        let enc = tok.encode_fast(text, false).map_err(tk_err("encode"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`; `skip_special` drops special tokens. Out-of-range ids are an error.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.vocab_size) {
            return Err(Error::Tokenizer(format!("token id {bad} out of range (vocab size {})", self.vocab_size)));
        }
        self.special.decode(ids, skip_special).map_err(tk_err("decode"))
    }

    /// Number of token ids (largest id + 1), added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// True for EOS and the end-of-turn tokens (`<|im_end|>`, `<|endoftext|>`,
    /// `<|eot_id|>`, ...) that exist in this vocabulary.
    pub fn is_stop(&self, id: u32) -> bool {
        self.stop.binary_search(&id).is_ok()
    }

    /// The token string of `id`, if any.
    pub fn token_text(&self, id: u32) -> Option<String> {
        self.special.id_to_token(id)
    }

    /// The model's Jinja chat template, if it ships one.
    pub fn chat_template(&self) -> Option<&str> {
        self.template.as_deref()
    }

    /// Render `messages` with the model's chat template (HF semantics:
    /// `trim_blocks`, `lstrip_blocks`, `raise_exception`, `bos_token`, `eos_token`).
    pub fn render_chat(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let src = self.template.as_deref().ok_or_else(|| Error::Template("the model has no chat template".into()))?;
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<Value, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.set_unknown_method_callback(py_method);
        let tmpl = env.template_from_str(src).map_err(|e| Error::Template(format!("{e:#}")))?;
        let tok_str = |id: Option<u32>| id.and_then(|i| self.token_text(i)).unwrap_or_default();
        tmpl.render(minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => tok_str(self.bos),
            eos_token => tok_str(self.eos),
        })
        .map_err(|e| Error::Template(format!("{e:#}")))
    }

    /// The `tokenizers` JSON of this tokenizer (loadable with `from_json_bytes`).
    pub fn to_json(&self) -> Result<String> {
        self.special.to_string(false).map_err(tk_err("serializing tokenizer"))
    }

    /// Incremental detokenizer for streaming output; special tokens are skipped.
    pub fn stream_decoder(&self) -> StreamDecoder<'_> {
        StreamDecoder { tok: self, ids: Vec::new(), prefix: 0, read: 0 }
    }
}

/// Common Python string/dict methods used by HF chat templates
/// (`.strip()`, `.startswith()`, `.items()`, ...), which minijinja lacks.
fn py_method(_: &State, v: &Value, name: &str, args: &[Value]) -> std::result::Result<Value, minijinja::Error> {
    let unknown = || minijinja::Error::new(ErrorKind::UnknownMethod, format!("no method `{name}`"));
    let arg = |i: usize| args.get(i).and_then(|a| a.as_str().map(str::to_string));
    if let Some(s) = v.as_str() {
        let chars = arg(0);
        let set = |c: char| chars.as_deref().map_or(c.is_whitespace(), |cs| cs.contains(c));
        return Ok(match name {
            "strip" => Value::from(s.trim_matches(set)),
            "lstrip" => Value::from(s.trim_start_matches(set)),
            "rstrip" => Value::from(s.trim_end_matches(set)),
            "upper" => Value::from(s.to_uppercase()),
            "lower" => Value::from(s.to_lowercase()),
            "startswith" => Value::from(s.starts_with(arg(0).ok_or_else(unknown)?.as_str())),
            "endswith" => Value::from(s.ends_with(arg(0).ok_or_else(unknown)?.as_str())),
            "replace" => Value::from(s.replace(&arg(0).ok_or_else(unknown)?, &arg(1).ok_or_else(unknown)?)),
            "split" => match arg(0) {
                Some(sep) => Value::from_iter(s.split(sep.as_str()).map(Value::from)),
                None => Value::from_iter(s.split_whitespace().map(Value::from)),
            },
            _ => return Err(unknown()),
        });
    }
    if v.kind() == minijinja::value::ValueKind::Map {
        let keys = || v.try_iter().into_iter().flatten();
        return Ok(match name {
            "keys" => Value::from_iter(keys()),
            "values" => Value::from_iter(keys().map(|k| v.get_item(&k).unwrap_or_default())),
            "items" => Value::from_iter(keys().map(|k| {
                let val = v.get_item(&k).unwrap_or_default();
                Value::from(vec![k, val])
            })),
            "get" => match v.get_item(args.first().ok_or_else(unknown)?) {
                Ok(x) if !x.is_undefined() => x,
                _ => args.get(1).cloned().unwrap_or(Value::from(())),
            },
            _ => return Err(unknown()),
        });
    }
    Err(unknown())
}

/// Streaming detokenizer: `push` returns the text completed by each new id and
/// holds back output while it would end in an incomplete UTF-8 sequence.
pub struct StreamDecoder<'a> {
    tok: &'a Tokenizer,
    /// Pending ids; `ids[prefix..read]` is context already emitted.
    ids: Vec<u32>,
    prefix: usize,
    read: usize,
}

impl StreamDecoder<'_> {
    /// Feed one id; `Some(text)` when new complete text is available.
    pub fn push(&mut self, id: u32) -> Result<Option<String>> {
        self.ids.push(id);
        self.emit(false)
    }

    /// Emit whatever is still held back (possibly with U+FFFD for broken bytes).
    pub fn flush(&mut self) -> Result<Option<String>> {
        self.emit(true)
    }

    fn emit(&mut self, force: bool) -> Result<Option<String>> {
        let before = self.tok.decode(&self.ids[self.prefix..self.read], true)?;
        let now = self.tok.decode(&self.ids[self.prefix..], true)?;
        if now.len() <= before.len() || (!force && now.ends_with('\u{FFFD}')) {
            return Ok(None);
        }
        let new = now
            .strip_prefix(before.as_str())
            .ok_or_else(|| Error::Tokenizer(format!("stream decode: `{now}` does not extend `{before}`")))?;
        let new = new.to_string();
        // Keep only the last emitted chunk as context for the next one.
        self.ids.drain(..self.prefix);
        self.prefix = self.read - self.prefix;
        self.read = self.ids.len();
        Ok(Some(new))
    }
}
