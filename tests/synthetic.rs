//! Every weight type end to end: random tiny llamas stored as F32, F16, BF16, Q8_0,
//! Q4_0 and Q4_1 run on every test backend and match the CPU reference forward.
mod common;

use aura::model::synthetic::{llama_gguf, Shape};
use aura::model::tensor::WeightType;
use aura::reference::forward::RefModel;
use aura::reference::ops::compare;
use aura::sample::argmax;
use aura::{HostModel, Model, Options, Session, SessionOptions};

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
