//! Perplexity of SmolLM2-135M-Instruct Q4_1 on /usr/share/common-licenses/GPL-3 in
//! 512-token windows scored on their second half (llama.cpp's perplexity-tool method,
//! no BOS). llama.cpp's `llama-perplexity -c 512` reports 18.35 over 14 windows for
//! this exact GGUF; aura must be within 1%. Runs on the first test backend (lavapipe in CI).
mod common;

use aura::telemetry::{perplexity_windows, PerplexityTap};
use aura::{Model, Options, SessionOptions};

const LLAMA_CPP_PPL: f64 = 18.35;
const LLAMA_CPP_WINDOWS: usize = 14;
const WINDOW: usize = 512;
/// Relative tolerance against llama.cpp.
const TOLERANCE: f64 = 0.01;

#[test]
fn gpl3_perplexity_matches_llama_cpp() {
    let text = std::fs::read_to_string("/usr/share/common-licenses/GPL-3").expect("GPL-3 text (Debian base-files)");
    let engine = common::engine(Options { backend: Some(common::test_backends()[0]), ..Options::default() });
    let model = Model::load(&engine, &common::model_path()).unwrap();
    let tokens = model.tokenizer.encode(&text, false).unwrap();
    let mut tap = PerplexityTap::default();
    let t = std::time::Instant::now();
    let windows =
        pollster::block_on(perplexity_windows(&model, &tokens, WINDOW, SessionOptions::default(), &mut tap, |d, n| {
            eprintln!("perplexity: window {d}/{n} ({:.0} s)", t.elapsed().as_secs_f64())
        }))
        .unwrap();
    let ppl = tap.ppl();
    eprintln!("GPL-3: {windows} windows, {} scored tokens, PPL {ppl:.4} (llama.cpp {LLAMA_CPP_PPL})", tap.count);
    assert_eq!(windows, LLAMA_CPP_WINDOWS, "window count differs from llama.cpp's");
    assert_eq!(tap.count, windows * (WINDOW / 2 - 1));
    let rel = (ppl - LLAMA_CPP_PPL).abs() / LLAMA_CPP_PPL;
    assert!(rel < TOLERANCE, "PPL {ppl:.4} is {:.2}% from llama.cpp's {LLAMA_CPP_PPL}", rel * 100.0);
}
