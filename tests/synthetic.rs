//! Every weight type end to end: random tiny llamas stored as F32, F16, BF16, Q8_0,
//! Q4_0 and Q4_1 run on every test backend and match the CPU reference forward.
mod common;

use aura::attention::plan::{COMPRESSED_FUSED_MAX_BLOCKS, COMPRESSED_HEAD_MAX_BLOCKS, DENSE_FUSED_MAX_KV};
use aura::kv::scheme::KvScheme;
use aura::model::synthetic::{llama_gguf, Shape};
use aura::model::tensor::WeightType;
use aura::reference::forward::RefModel;
use aura::reference::ops::compare;
use aura::sample::argmax;
use aura::{AttentionPath, HostModel, Model, Options, Session, SessionOptions};

/// Logits NMSE vs the reference (f32 KV: summation order only; f16 KV: K/V rounding).
const NMSE_F32_KV: f64 = 1e-7;
const NMSE_F16_KV: f64 = 1e-4;
const PROMPT: usize = 40;
const STEPS: usize = 8;

#[test]
fn every_weight_type_matches_reference() {
    let shape = Shape::tiny();
    for b in common::test_backends() {
        let engine = common::engine(Options { backend: Some(b), ..Options::default() });
        let f16 = engine.variant().f16;
        let tol = if f16 { NMSE_F16_KV } else { NMSE_F32_KV };
        for (i, ty) in WeightType::ALL.into_iter().enumerate() {
            let seed = 1000 + i as u64;
            let bytes = llama_gguf(&shape, ty, ty, seed);
            let rm = RefModel::new(&HostModel::from_gguf_bytes(&bytes).unwrap());
            let model = Model::new(&engine, HostModel::from_gguf_bytes(&bytes).unwrap()).unwrap();
            let mut rng = common::Rng(seed);
            let prompt: Vec<u32> = (0..PROMPT).map(|_| rng.below(shape.vocab) as u32).collect();
            let mut st = rm.state(PROMPT + STEPS, f16);
            let want: Vec<Vec<f32>> = prompt.iter().map(|&t| rm.forward(&mut st, t)).collect();
            pollster::block_on(async {
                let mut s =
                    Session::new(&model, SessionOptions { capacity: PROMPT + STEPS + 13, attention: None, kv: None })
                        .await
                        .unwrap();
                // Batched prefill with logits for every position.
                let got = s.forward(&prompt, Some(0)).await.unwrap();
                for (p, w) in want.iter().enumerate() {
                    let (nmse, _) = compare(&got[p * shape.vocab..(p + 1) * shape.vocab], w);
                    assert!(nmse < tol, "{b:?} {ty:?} seed {seed}: position {p} NMSE {nmse:.3e} > {tol:.0e}");
                }
                let mut l = got[(PROMPT - 1) * shape.vocab..].to_vec();
                let mut lr = want[PROMPT - 1].clone();
                for step in 0..STEPS {
                    let (a, r) = (argmax(&l), argmax(&lr));
                    assert_eq!(a, r, "{b:?} {ty:?} seed {seed}: greedy step {step}");
                    l = s.step(a).await.unwrap();
                    lr = rm.forward(&mut st, r);
                    let (nmse, _) = compare(&l, &lr);
                    assert!(nmse < tol, "{b:?} {ty:?} seed {seed}: decode step {step} NMSE {nmse:.3e}");
                }
            });
        }
    }
}

/// One session crossing the plan's merge switch (Vulkan's Auto merge mode): dense attention
/// at 1024 cache rows goes from one head per workgroup with the fused merge to a GQA group
/// per workgroup with the merge dispatch (`DENSE_FUSED_MAX_KV`); AURA, split into 16-token
/// blocks (the default 64 would put the switch at 4608 rows), takes the merge dispatch on
/// one-token steps and at 1152 rows goes from one head per workgroup to the GQA group
/// (`COMPRESSED_HEAD_MAX_BLOCKS`), after a prompt whose prefill steps merge in the last
/// block (per head, up to `COMPRESSED_FUSED_MAX_BLOCKS` blocks, past the prompt's length:
/// its errors would reach the steps through the next layers' cached rows). Every decode
/// step across it matches a session that
/// uses the merge dispatch throughout (and no L2 prefetch, so separate weight buffers; no
/// fused AURA encode; the output projection a dispatch of its own, where the Auto session
/// folds it into the merge dispatch on Vulkan), and the dense cache matches the CPU
/// reference.
#[test]
fn decode_across_the_plan_merge_switches() {
    // head_dim 64 (AURA's smallest), two KV heads, GQA group 2.
    let shape = Shape { n_layers: 2, hidden: 256, n_heads: 4, n_kv_heads: 2, ffn: 384, vocab: 320, context: 2600 };
    let steps = 12;
    // (scheme, forced path, prompt length): 12 steps from there cross the switch (8 rows on).
    let aura_split = Some(AttentionPath::TwoPass { block: 16 });
    let aura_len = COMPRESSED_HEAD_MAX_BLOCKS as usize * 16 - 8;
    assert!(aura_len + steps <= COMPRESSED_FUSED_MAX_BLOCKS as usize * 16, "the prefill steps merge in the last block");
    let dense_len = DENSE_FUSED_MAX_KV - 8;
    let cases = [(KvScheme::F16, None, dense_len), (KvScheme::Aura { k_bits: 4, v_bits: 4 }, aura_split, aura_len)];
    let bytes = llama_gguf(&shape, WeightType::Q8_0, WeightType::Q8_0, 77);
    let rm = RefModel::new(&HostModel::from_gguf_bytes(&bytes).unwrap());
    let mut rng = common::Rng(77);
    let prompt: Vec<u32> = (0..dense_len.max(aura_len)).map(|_| rng.below(shape.vocab) as u32).collect();
    for b in common::test_backends() {
        // The Auto session also takes the L2 prefetch (layer buffers bound as ranges, prefetch
        // workgroups on attention), on Vulkan folds the output projection into the merge
        // dispatch (the default there; other backends don't promise the cross-workgroup
        // visibility its count needs) and, for AURA, encodes each step's new row inside the
        // attention dispatch; the reference session does none of that (separate buffers, the
        // o-projection's and the kv_encode_aura dispatches).
        let auto = common::engine(Options { backend: Some(b), l2_prefetch: Some(true), ..Options::default() });
        let dispatch = common::engine(Options {
            backend: Some(b),
            fused_merge: Some(false),
            l2_prefetch: Some(false),
            aura_fused_encode: Some(false),
            fused_oproj: Some(false),
            ..Options::default()
        });
        let f16 = auto.variant().f16;
        let tol = if f16 { NMSE_F16_KV } else { NMSE_F32_KV };
        for (kv, attention, prompt_len) in cases {
            let prompt = &prompt[..prompt_len];
            // The prompt's last logits, then each greedy step's.
            let run = |engine: &aura::Engine| -> Vec<Vec<f32>> {
                let model = Model::new(engine, HostModel::from_gguf_bytes(&bytes).unwrap()).unwrap();
                pollster::block_on(async {
                    let so = SessionOptions { capacity: shape.context, attention, kv: Some(kv) };
                    let mut s = Session::new(&model, so).await.unwrap();
                    let mut out = vec![s.prefill(prompt).await.unwrap()];
                    for i in 0..steps {
                        let l = s.step(argmax(&out[i]) as u32).await.unwrap();
                        out.push(l);
                    }
                    out
                })
            };
            let (got, want) = (run(&auto), run(&dispatch));
            for (i, (g, w)) in got.iter().zip(&want).enumerate().skip(1) {
                let (nmse, _) = compare(g, w);
                let kv_len = prompt_len + i;
                assert!(nmse < 1e-6, "{b:?} {kv:?}: kv_len {kv_len} NMSE {nmse:.3e} against the merge dispatch");
                assert_eq!(argmax(g), argmax(w), "{b:?} {kv:?}: kv_len {kv_len} greedy token");
            }
            if kv == KvScheme::F16 {
                let mut st = rm.state(shape.context, f16);
                let mut lr = Vec::new();
                for &t in prompt {
                    lr = rm.forward(&mut st, t);
                }
                for (i, g) in got.iter().enumerate() {
                    if i > 0 {
                        lr = rm.forward(&mut st, argmax(&got[i - 1]) as u32);
                    }
                    let (nmse, _) = compare(g, &lr);
                    assert!(
                        nmse < tol,
                        "{b:?} f16: kv_len {} NMSE {nmse:.3e} against the CPU reference",
                        prompt_len + i
                    );
                }
            }
        }
    }
}
