//! Tokenizer tests against llama.cpp reference ids for SmolLM2-135M-Instruct.
//!
//! Needs the SmolLM2 GGUF (AURA_MODEL or the cache; the test fails without it).
//! Vectors: `AURA_TOKENIZER_VECTORS`, default `../shared/tokenizer-vectors.json`.
mod common;

use aura::error::Error;
use aura::model::gguf::Gguf;
use aura::model::tokenizer::{ChatMessage, Tokenizer};

struct Case {
    name: String,
    text: String,
    parse_special: bool,
    ids: Vec<u32>,
}

fn load_tokenizer() -> Tokenizer {
    let path = common::model_path();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let g = Gguf::parse(&bytes).expect("parse GGUF");
    Tokenizer::from_gguf(&g).expect("build tokenizer from GGUF")
}

fn load_cases() -> Vec<Case> {
    let path = std::env::var("AURA_TOKENIZER_VECTORS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/tokenizer-vectors.json").to_string());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read vectors {path}: {e}"));
    let v: serde_json::Value = serde_json::from_str(&text).expect("vectors are JSON");
    let cases: Vec<Case> = v["cases"]
        .as_array()
        .expect("`cases` array")
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().expect("name").to_string(),
            text: c["text"].as_str().expect("text").to_string(),
            parse_special: c["parse_special"].as_bool().expect("parse_special"),
            ids: c["ids"].as_array().expect("ids").iter().map(|i| i.as_u64().unwrap() as u32).collect(),
        })
        .collect();
    assert!(!cases.is_empty(), "no cases in {path}");
    cases
}

fn check_vectors(tok: &Tokenizer, cases: &[Case], label: &str) {
    let mut failures = Vec::new();
    for c in cases {
        let got = tok.encode(&c.text, c.parse_special).expect("encode");
        if got != c.ids {
            failures
                .push(format!("[{label}] {}: text {:?}\n  expected {:?}\n  got      {:?}", c.name, c.text, c.ids, got));
        }
    }
    assert!(failures.is_empty(), "{} of {} vectors differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn vectors_match_llama_cpp() {
    let tok = load_tokenizer();
    check_vectors(&tok, &load_cases(), "gguf");
}

#[test]
fn basic_properties() {
    let tok = load_tokenizer();
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!(tok.bos_id(), Some(1));
    assert_eq!(tok.eos_id(), Some(2));
    assert!(tok.is_stop(2), "<|im_end|> (eos) stops");
    assert!(tok.is_stop(0), "<|endoftext|> stops");
    assert!(!tok.is_stop(1), "<|im_start|> does not stop");
    assert!(!tok.is_stop(19556));
    assert!(tok.decode(&[49152], false).is_err(), "out-of-range id is an error");
}

#[test]
fn round_trip() {
    let tok = load_tokenizer();
    let texts = [
        "Café naïve — 日本語のテキスト, Ελληνικά, emoji 🚀👍🏽 👨‍👩‍👧 ∑∫√ ﷽",
        "fn main() {\n    let x: Vec<u8> = vec![0xFF; 16];\n    println!(\"{x:?}\");\n}\n",
        "  leading\n\n\n\ttabs\t\t and   trailing   \r\n  \u{a0}nbsp ",
        "<|im_start|>user\nhi<|im_end|><|endoftext|><repo_name>x",
        "",
        " ",
        "1234567890 3.14159 -1e-9",
    ];
    for t in texts {
        for parse_special in [false, true] {
            let ids = tok.encode(t, parse_special).unwrap();
            assert_eq!(tok.decode(&ids, false).unwrap(), t, "round trip (parse_special={parse_special}) of {t:?}");
        }
    }
}

#[test]
fn special_tokens() {
    let tok = load_tokenizer();
    for (s, id) in
        [("<|endoftext|>", 0), ("<|im_start|>", 1), ("<|im_end|>", 2), ("<repo_name>", 3), ("<empty_output>", 16)]
    {
        assert_eq!(tok.encode(s, true).unwrap(), vec![id], "{s} with parse_special");
        let plain = tok.encode(s, false).unwrap();
        assert!(plain.len() > 1 && !plain.contains(&id), "{s} as plain text gave {plain:?}");
    }
    let ids = tok.encode("<|im_start|>assistant\nHi<|im_end|>", true).unwrap();
    assert_eq!(tok.decode(&ids, true).unwrap(), "assistant\nHi", "skip_special drops control tokens");
    assert_eq!(tok.decode(&ids, false).unwrap(), "<|im_start|>assistant\nHi<|im_end|>");
}

const SYSTEM: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
const CHATML: &str = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";

fn conversation() -> Vec<ChatMessage> {
    vec![
        ChatMessage { role: "system".into(), content: SYSTEM.into() },
        ChatMessage { role: "user".into(), content: "What is 2+2?".into() },
    ]
}

#[test]
fn chat_template() {
    let tok = load_tokenizer();
    assert!(tok.chat_template().is_some_and(|t| t.contains("<|im_start|>")));
    let prompt = tok.render_chat(&conversation(), true).unwrap();
    assert_eq!(prompt, CHATML);
    // The rendered prompt tokenizes to the llama.cpp reference ids.
    let cases = load_cases();
    let chatml = cases.iter().find(|c| c.text == CHATML).expect("chatml vector");
    assert_eq!(tok.encode(&prompt, true).unwrap(), chatml.ids);
    // Without a system message the template inserts the default one.
    let user_only = [ChatMessage { role: "user".into(), content: "What is 2+2?".into() }];
    assert_eq!(tok.render_chat(&user_only, true).unwrap(), CHATML);
    let no_gen = tok.render_chat(&conversation(), false).unwrap();
    assert_eq!(no_gen, CHATML.strip_suffix("<|im_start|>assistant\n").unwrap());
}

#[test]
fn template_features_and_errors() {
    let tok = load_tokenizer();
    let json = tok.to_json().unwrap();
    // No template: Error::Template.
    let bare = Tokenizer::from_json_bytes(json.as_bytes(), None).unwrap();
    assert!(bare.chat_template().is_none());
    match bare.render_chat(&conversation(), true) {
        Err(Error::Template(_)) => {}
        other => panic!("expected Error::Template, got {other:?}"),
    }
    // raise_exception, bos/eos variables and python string methods.
    let tpl = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first must be user') }}{% endif %}\
               {{ bos_token }}{% for m in messages %}{{ m['content'].strip() }}{{ eos_token }}{% endfor %}";
    let cfg =
        serde_json::json!({"chat_template": tpl, "bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"}});
    let t = Tokenizer::from_json_bytes(json.as_bytes(), Some(cfg.to_string().as_bytes())).unwrap();
    assert_eq!((t.bos_id(), t.eos_id()), (Some(1), Some(2)));
    let user = [ChatMessage { role: "user".into(), content: "  hi  ".into() }];
    assert_eq!(t.render_chat(&user, false).unwrap(), "<|im_start|>hi<|im_end|>");
    match t.render_chat(&conversation(), false) {
        Err(Error::Template(m)) => assert!(m.contains("first must be user"), "{m}"),
        other => panic!("expected raise_exception error, got {other:?}"),
    }
}

#[test]
fn stream_decoder_matches_full_decode() {
    let tok = load_tokenizer();
    let text = "Emoji 🚀👍🏽👨‍👩‍👧 and CJK 日本語のテキスト, 한국어 ∑ done.";
    let ids = tok.encode(text, false).unwrap();
    let mut dec = tok.stream_decoder();
    let mut out = String::new();
    let mut held = 0;
    for &id in &ids {
        match dec.push(id).unwrap() {
            Some(s) => out.push_str(&s),
            None => held += 1,
        }
        assert!(!out.contains('\u{FFFD}'), "broken UTF-8 emitted: {out:?}");
    }
    assert!(held > 0, "multi-token characters should be held back at least once");
    assert_eq!(out, tok.decode(&ids, true).unwrap());
    assert_eq!(out, text);
}

#[test]
fn json_round_trip() {
    let tok = load_tokenizer();
    let json = tok.to_json().unwrap();
    let cfg = serde_json::json!({
        "chat_template": tok.chat_template().unwrap(),
        "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>",
    });
    let re = Tokenizer::from_json_bytes(json.as_bytes(), Some(cfg.to_string().as_bytes())).unwrap();
    check_vectors(&re, &load_cases(), "from_json_bytes(to_json())");
    assert_eq!(re.vocab_size(), tok.vocab_size());
    assert_eq!((re.bos_id(), re.eos_id()), (tok.bos_id(), tok.eos_id()));
    assert_eq!(re.render_chat(&conversation(), true).unwrap(), CHATML);
    assert!(re.is_stop(0) && re.is_stop(2));
}
