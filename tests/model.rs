//! End to end on SmolLM2-135M-Instruct (AURA_MODEL): GPU greedy tokens and logits
//! against the CPU reference forward, on every test backend and attention path.
mod common;

use aura::model::tokenizer::ChatMessage;
use aura::reference::forward::RefModel;
use aura::reference::ops::compare;
use aura::sample::argmax;
use aura::{AttentionPath, Backend, Engine, HostModel, Model, Options, Session, SessionOptions};

const PROMPTS: [&str; 3] = [
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "Explain in one sentence what a binary search does.",
];
/// Greedy steps of the CPU reference per prompt: the first prompt's single-pass run on the
/// first backend compares all of them, the other runs the first VARIANT_STEPS. Sized for
/// CI on lavapipe/llvmpipe with 2 cores: on session 12's machine a decode step took ~1.6 s
/// and a 37-token prompt ~20 s there, and this file's tests 34 minutes with 32 steps.
const STEPS: usize = 24;
const VARIANT_STEPS: usize = 12;
/// Logits NMSE vs the f32 reference. f32 KV: only summation order differs.
/// f16 KV: K/V are rounded to f16 (rel. error 2^-11) in the cache.
const NMSE_F32_KV: f64 = 1e-6;
const NMSE_F16_KV: f64 = 1e-4;
/// Batched prefill vs token-by-token logits with an f32 KV cache.
const BATCHED_VS_SINGLE_NMSE: f64 = 1e-6;

struct Reference {
    prompt: Vec<u32>,
    tokens: Vec<u32>,
    logits: Vec<Vec<f32>>,
}

fn prompt_ids(host: &HostModel, text: &str) -> Vec<u32> {
    let t = &host.tokenizer;
    let chat = t.render_chat(&[ChatMessage { role: "user".into(), content: text.into() }], true).unwrap();
    t.encode(&chat, true).unwrap()
}

fn reference_runs(host: &HostModel) -> Vec<Reference> {
    let rm = RefModel::new(host);
    PROMPTS
        .iter()
        .map(|p| {
            let prompt = prompt_ids(host, p);
            let mut st = rm.state(prompt.len() + STEPS + 1, false);
            let mut logits = Vec::new();
            let (last, head) = prompt.split_last().expect("a non-empty prompt");
            for &t in head {
                rm.push(&mut st, t);
            }
            let mut l = rm.forward(&mut st, *last);
            let mut tokens = Vec::new();
            for _ in 0..STEPS {
                let next = argmax(&l);
                tokens.push(next);
                logits.push(l.clone());
                l = rm.forward(&mut st, next);
            }
            Reference { prompt, tokens, logits }
        })
        .collect()
}

/// `steps` greedy steps on `s` from logits `l`: the tokens, and the logits each was taken from.
async fn greedy_steps(s: &mut Session, mut l: Vec<f32>, steps: usize) -> (Vec<u32>, Vec<Vec<f32>>) {
    let mut tokens = Vec::new();
    let mut logits = Vec::new();
    for _ in 0..steps {
        let next = argmax(&l);
        tokens.push(next);
        logits.push(std::mem::replace(&mut l, s.step(next).await.unwrap()));
    }
    (tokens, logits)
}

/// A session with `opts` prefills `ids`, then takes `steps` greedy steps (see greedy_steps).
fn greedy(model: &Model, opts: SessionOptions, ids: &[u32], steps: usize) -> (Vec<u32>, Vec<Vec<f32>>) {
    pollster::block_on(async {
        let mut s = Session::new(model, opts).await.unwrap();
        let l = s.prefill(ids).await.unwrap();
        greedy_steps(&mut s, l, steps).await
    })
}

fn run_gpu(
    model: &Model,
    r: &Reference,
    path: AttentionPath,
    capacity: usize,
    steps: usize,
) -> (Vec<u32>, Vec<Vec<f32>>) {
    greedy(model, SessionOptions { capacity, attention: Some(path), kv: None }, &r.prompt, steps)
}

fn check(label: &str, r: &Reference, tokens: &[u32], logits: &[Vec<f32>], tol: f64) {
    let mut worst = 0f64;
    for (i, (a, b)) in logits.iter().zip(&r.logits).enumerate() {
        let (nmse, _) = compare(a, b);
        worst = worst.max(nmse);
        assert!(nmse < tol, "{label}: step {i} logits NMSE {nmse:.3e} > {tol:.0e}");
    }
    assert_eq!(tokens, &r.tokens[..tokens.len()], "{label}: greedy tokens differ from the CPU reference");
    eprintln!("{label}: {} greedy tokens equal, worst logits NMSE {worst:.2e}", tokens.len());
}

#[test]
fn greedy_matches_cpu_reference_on_every_backend_and_path() {
    let path = common::model_path();
    let host = HostModel::load(&path).unwrap();
    let refs = reference_runs(&host);
    drop(host);
    for (bi, b) in common::test_backends().into_iter().enumerate() {
        let engine = common::engine(Options { backend: Some(b), ..Options::default() });
        let tol = if engine.variant().f16 { NMSE_F16_KV } else { NMSE_F32_KV };
        let model = Model::load(&engine, &path).unwrap();
        // Single-pass on every prompt on the first backend, on the first prompt on the
        // others (their kernels are the same for every prompt); 2-pass with small blocks
        // (kv_len crosses block boundaries) and capacity > kv_len on the first prompt.
        for (i, r) in refs.iter().enumerate().take(if bi == 0 { PROMPTS.len() } else { 1 }) {
            let cap = r.prompt.len() + STEPS + 100;
            let steps = if i == 0 && bi == 0 { STEPS } else { VARIANT_STEPS };
            let (t, l) = run_gpu(&model, r, AttentionPath::SinglePass, cap, steps);
            check(&format!("{b:?} single-pass prompt {i}"), r, &t, &l, tol);
        }
        let r = &refs[0];
        // The fused merge (the last block of each head merges) over 16-token blocks: the
        // prompt's blocks, then the steps cross into another.
        assert!(r.prompt.len() % 16 + VARIANT_STEPS > 16, "the 2-pass:16 run must cross a block");
        let (t, l) = run_gpu(&model, r, AttentionPath::TwoPass { block: 16 }, 1000, VARIANT_STEPS);
        check(&format!("{b:?} two-pass:16"), r, &t, &l, tol);
        // Split-K with the merge as a dispatch of its own (fused_merge off; the default
        // merges in the last block), 32-token blocks (half a tile); on Vulkan the output
        // projection folds into it (the default there), elsewhere it keeps its dispatch.
        let opts = Options { backend: Some(b), fused_merge: Some(false), ..Options::default() };
        let model = Model::load(&common::engine(opts), &path).unwrap();
        let (t, l) = run_gpu(&model, r, AttentionPath::TwoPass { block: 32 }, 1000, VARIANT_STEPS);
        check(&format!("{b:?} two-pass:32, merge dispatch"), r, &t, &l, tol);
        // Decode with the norms as their own dispatches (Options::fused off).
        let unfused = common::engine(Options { backend: Some(b), fused: false, ..Options::default() });
        let model = Model::load(&unfused, &path).unwrap();
        let (t, l) = run_gpu(&model, r, AttentionPath::SinglePass, r.prompt.len() + STEPS, VARIANT_STEPS);
        check(&format!("{b:?} unfused single-pass"), r, &t, &l, tol);
        // The fused decode with the L2 prefetch forced on (off by default on CPU adapters)
        // and wgpu's runtime shader checks kept (off by default).
        let opts = Options { backend: Some(b), l2_prefetch: Some(true), shader_checks: true, ..Options::default() };
        let model = Model::load(&common::engine(opts), &path).unwrap();
        let (t, l) = run_gpu(&model, r, AttentionPath::Auto, r.prompt.len() + STEPS, VARIANT_STEPS);
        check(&format!("{b:?} prefetch on, shader checks on"), r, &t, &l, tol);
    }
}

/// Tokens of `gpu_greedy_equals_host_greedy` and its chunk (GPUs queue 8 by default; any
/// chunk takes the same code): chunks of 4 + 4 + 4, so a stop on the 6th falls mid-chunk
/// with a chunk queued behind it.
const GREEDY_TOKENS: usize = 12;
const GREEDY_CHUNK: usize = 4;

/// GPU greedy sampling with queued steps (`decode_greedy`) gives the host loop's tokens
/// (`step` + argmax), stops where asked with the session at the right position, and the
/// session goes on correctly afterwards.
#[test]
fn gpu_greedy_equals_host_greedy() {
    for (bi, b) in common::test_backends().into_iter().enumerate() {
        // The host loop once per backend (it does not depend on the chunk), then chunks of
        // GREEDY_CHUNK and, on the first backend, the CPU adapters' default (1).
        let mut want = Vec::new();
        let mut first = 0;
        let chunks: &[usize] = if bi == 0 { &[GREEDY_CHUNK, 0] } else { &[GREEDY_CHUNK] };
        for &chunk in chunks {
            let engine = common::engine(Options { backend: Some(b), greedy_chunk: chunk, ..Options::default() });
            let model = Model::load(&engine, &common::model_path()).unwrap();
            let tok = &model.tokenizer;
            let text = tok.render_chat(&[ChatMessage::new("user", "Write a poem about the sea.")], true).unwrap();
            let ids = tok.encode(&text, true).unwrap();
            pollster::block_on(async {
                let opts = || SessionOptions { capacity: 256, attention: None, kv: None };
                if want.is_empty() {
                    let mut host = Session::new(&model, opts()).await.unwrap();
                    let mut logits = host.prefill(&ids).await.unwrap();
                    first = aura::sample::argmax(&logits);
                    let mut t = first;
                    for _ in 0..GREEDY_TOKENS {
                        logits = host.step(t).await.unwrap();
                        t = aura::sample::argmax(&logits);
                        want.push(t);
                    }
                }
                let mut gpu = Session::new(&model, opts()).await.unwrap();
                gpu.prefill(&ids).await.unwrap();
                let mut seen = Vec::new();
                let mut watch = |id| {
                    seen.push(id);
                    false
                };
                let got = gpu.decode_greedy(first, GREEDY_TOKENS, &mut watch).await.unwrap();
                assert_eq!(got, want, "{b:?} chunk {chunk}: GPU greedy vs host greedy");
                assert_eq!(seen, want, "{b:?}: on_token saw every id in order");
                assert_eq!(gpu.position(), ids.len() + GREEDY_TOKENS, "{b:?}: position after {GREEDY_TOKENS} tokens");
                // Stop on the 6th token (mid-chunk, with a chunk queued behind it): the
                // session holds first + 5 ids, and stepping the 6th gives the host's 7th.
                gpu.rewind(ids.len()).unwrap();
                let stop_at = want[5];
                let k = want.iter().position(|&x| x == stop_at).unwrap();
                let got = gpu.decode_greedy(first, GREEDY_TOKENS, &mut |id| id == stop_at).await.unwrap();
                assert_eq!(got, want[..=k], "{b:?}: stopped run");
                assert_eq!(gpu.position(), ids.len() + k + 1, "{b:?}: position after a stop");
                let l = gpu.step(stop_at).await.unwrap();
                assert_eq!(aura::sample::argmax(&l), want[k + 1], "{b:?}: the session goes on after a stop");
            });
        }
    }
}

/// Greedy steps after the prompt in `batched_prefill_equals_token_by_token`.
const BATCHED_GREEDY: usize = 8;

#[test]
fn batched_prefill_equals_token_by_token() {
    // Token by token once (the decode kernels: the same whichever prefill kernel is
    // picked), then both prefill kernels against it: the matmul (what lavapipe picks) and
    // the tiled matvec (GPUs).
    let engine = common::engine(Options { backend: Some(Backend::Vulkan), ..Options::default() });
    let model = Model::load(&engine, &common::model_path()).unwrap();
    let text = "The quick brown fox jumps over the lazy dog. 1234567 is a number; so is 42. ".repeat(6);
    let mut ids = model.tokenizer.encode(&text, false).unwrap();
    assert!(ids.len() > aura::session::MAX_SLOTS + 8, "prompt must span several steps");
    // Two batched steps (MAX_SLOTS + 8 tokens), five of SPLIT_SLOTS with split-K.
    ids.truncate(aura::session::MAX_SLOTS + 8);
    let capacity = ids.len() + BATCHED_GREEDY;
    let (single, greedy) = pollster::block_on(async {
        let mut b = Session::new(&model, SessionOptions { capacity, attention: None, kv: None }).await.unwrap();
        let mut single = Vec::new();
        for &t in &ids {
            single.push(b.step(t).await.unwrap());
        }
        let greedy = greedy_steps(&mut b, single.last().unwrap().clone(), BATCHED_GREEDY).await.0;
        (single, greedy)
    });
    drop(model);
    for prefill_matmul in [true, false] {
        batched_prefill_case(prefill_matmul, &ids, &single, &greedy);
    }
}

fn batched_prefill_case(prefill_matmul: bool, ids: &[u32], single: &[Vec<f32>], greedy: &[u32]) {
    let opts = Options { backend: Some(Backend::Vulkan), prefill_matmul: Some(prefill_matmul), ..Options::default() };
    let engine = common::engine(opts);
    let model = Model::load(&engine, &common::model_path()).unwrap();
    pollster::block_on(async {
        let opts = |attention| SessionOptions { capacity: ids.len() + BATCHED_GREEDY, attention, kv: None };
        let mut a = Session::new(&model, opts(None)).await.unwrap();
        let batched = a.forward(ids, Some(0)).await.unwrap();
        // Split-K attention (steps of SPLIT_SLOTS tokens instead of MAX_SLOTS), with the
        // first kernel only: attention does not depend on the projections' kernel.
        let split = if prefill_matmul {
            let mut c = Session::new(&model, opts(Some(AttentionPath::TwoPass { block: 64 }))).await.unwrap();
            Some(c.forward(ids, Some(0)).await.unwrap())
        } else {
            None
        };
        let vocab = model.config.vocab;
        for (i, lb) in single.iter().enumerate() {
            if let Some(split) = &split {
                let (nmse_split, _) = compare(&split[i * vocab..(i + 1) * vocab], lb);
                assert!(
                    nmse_split < NMSE_F16_KV,
                    "position {i}: split-K batched vs single-token NMSE {nmse_split:.3e}"
                );
            }
            let (nmse, _) = compare(&batched[i * vocab..(i + 1) * vocab], lb);
            // Prefill's matmul sums each row serially, decode's matvec reduces across
            // threads: only the f32 summation order differs, but with an f16 KV cache
            // a reordered sum can round a cached K/V value the other way (measured up
            // to 1.4e-6 at position 33 on lavapipe).
            let tol = if engine.variant().f16 { NMSE_F16_KV } else { BATCHED_VS_SINGLE_NMSE };
            assert!(nmse < tol, "matmul {prefill_matmul}: position {i}: batched vs single-token NMSE {nmse:.3e}");
        }
        // Continue greedily after the batched prefill: the token-by-token run's tokens.
        let mut la = batched[(ids.len() - 1) * vocab..].to_vec();
        for (step, &want) in greedy.iter().enumerate() {
            let na = argmax(&la);
            assert_eq!(na, want, "matmul {prefill_matmul}: greedy step {step} differs after batched vs single prefill");
            la = a.step(na).await.unwrap();
        }
        assert_eq!(a.position(), ids.len() + BATCHED_GREEDY);
    });
}

/// Greedy steps in `hf_directory_gives_same_greedy_tokens_as_gguf`.
const HF_STEPS: usize = 12;

#[test]
fn hf_directory_gives_same_greedy_tokens_as_gguf() {
    let hf = common::hf_model_path();
    let engine = common::engine(Options { backend: Some(Backend::Vulkan), ..Options::default() });
    let gguf = Model::load(&engine, &common::model_path()).unwrap();
    let hfm = Model::load(&engine, &hf).unwrap();
    assert_eq!(gguf.config.rope_style, aura::model::config::RopeStyle::Adjacent);
    assert_eq!(hfm.config.rope_style, aura::model::config::RopeStyle::Halves);
    let ids_of = |p: &str| {
        let chat = gguf.tokenizer.render_chat(&[ChatMessage { role: "user".into(), content: p.into() }], true).unwrap();
        (gguf.tokenizer.encode(&chat, true).unwrap(), hfm.tokenizer.encode(&chat, true).unwrap())
    };
    // Tokenizers agree on every prompt; greedy tokens are compared on the first.
    for p in PROMPTS {
        let (g, h) = ids_of(p);
        assert_eq!(g, h, "prompt {p:?}: tokenizer.json disagrees with GGUF tokenizer");
    }
    let p = PROMPTS[0];
    let ids = ids_of(p).0;
    let gen = |m: &Model| greedy(m, SessionOptions { capacity: 512, attention: None, kv: None }, &ids, HF_STEPS).0;
    assert_eq!(gen(&gguf), gen(&hfm), "prompt {p:?}: HF (F16, halves RoPE) and GGUF (Q4_1, adjacent RoPE) disagree");
}

#[allow(dead_code)]
fn _engine_is_send(e: Engine) -> impl Send {
    e
}

/// Greedy steps per run in `aura8v8_greedy_equals_dense`.
const AURA_STEPS: usize = 12;

/// Greedy tokens with an 8-bit AURA cache equal the dense cache's for AURA_STEPS steps on
/// the first test prompt through single-pass, 2-pass (32-row blocks, crossed; fused merge
/// and the merge dispatch) and the dequant mirror.
#[test]
fn aura8v8_greedy_equals_dense() {
    use aura::kv::scheme::KvScheme;
    let engine = common::engine(Options { backend: Some(Backend::Vulkan), ..Options::default() });
    let model = Model::load(&engine, &common::model_path()).unwrap();
    let opts = Options { backend: Some(Backend::Vulkan), fused_merge: Some(false), ..Options::default() };
    let unfused_merge = Model::load(&common::engine(opts), &common::model_path()).unwrap();
    let gen_on = |model: &Model, ids: &[u32], kv: KvScheme, path: AttentionPath| {
        greedy(model, SessionOptions { capacity: 256, attention: Some(path), kv: Some(kv) }, ids, AURA_STEPS).0
    };
    let gen = |ids: &[u32], kv: KvScheme, path: AttentionPath| gen_on(&model, ids, kv, path);
    let a88 = KvScheme::Aura { k_bits: 8, v_bits: 8 };
    let p = PROMPTS[0];
    let chat = model.tokenizer.render_chat(&[ChatMessage { role: "user".into(), content: p.into() }], true).unwrap();
    let ids = model.tokenizer.encode(&chat, true).unwrap();
    assert!(ids.len() > 32, "the 2-pass:32 runs must span blocks");
    let dense = gen(&ids, KvScheme::F16, AttentionPath::Auto);
    for path in [AttentionPath::SinglePass, AttentionPath::TwoPass { block: 32 }, AttentionPath::Mirror] {
        assert_eq!(gen(&ids, a88, path), dense, "{p:?}: aura8v8 {path:?} vs dense f16");
    }
    let got = gen_on(&unfused_merge, &ids, a88, AttentionPath::TwoPass { block: 32 });
    assert_eq!(got, dense, "{p:?}: aura8v8 two-pass:32 with the merge dispatch vs dense f16");
}
