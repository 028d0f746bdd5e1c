//! Quality regression gates: per KV scheme, mean KLD against the dense f16 baseline
//! and same-top-1 agreement on a small public-domain corpus (tests/data), at the level
//! measured, so a kernel bug (wrong grid, stride, packing, rotation) fails CI.
//! Uses the real taps: the baseline is recorded with RawLogitsTap, candidates are
//! compared with KldTap.
mod common;

use aura::kv::scheme::KvScheme;
use aura::telemetry::{perplexity_windows, KldTap, RawLogitsTap};
use aura::{AttentionPath, Model, Options, SessionOptions};

const CTX: usize = 256;
const WINDOWS: usize = 1;

/// (scheme, path, max mean KLD, min same-top-1 %). Measured on lavapipe over this
/// corpus's first 256-token window (127 scored positions), with key centering (default),
/// session 12: aura8v8 0.00102 / 100 %; aura8v4 (2-pass, 64-token blocks) 0.0395 /
/// 92.13 %; aura4v4 (single-pass) 0.223 / 81.89 % (before, over two windows: 0.00083 /
/// 98.82, 0.0318 / 93.31, 0.187 / 82.68; without centering 0.00102 / 98.03, 0.0354 /
/// 90.94, 0.238 / 72.05). Gates sit at ~2x the measured KLD and a few points under the
/// measured agreement. Since session 12 one window, not two (each costs about three
/// minutes per scheme on lavapipe on a slow 2-core CI machine), and neither the dense
/// baseline's self-comparison (KLD 0 / 100 %) nor aura8v8 (tests/model.rs holds its greedy
/// tokens to the dense cache's on every path).
const GATES: &[(&str, AttentionPath, f64, f64)] = &[
    ("aura8v4", AttentionPath::TwoPass { block: 64 }, 0.07, 88.0),
    ("aura4v4", AttentionPath::SinglePass, 0.40, 75.0),
];

#[test]
fn kv_schemes_stay_within_measured_quality() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/declaration.txt")).unwrap();
    let engine = common::engine(Options { backend: Some(common::test_backends()[0]), ..Options::default() });
    let model = Model::load(&engine, &common::model_path()).unwrap();
    let mut tokens = model.tokenizer.encode(&text, false).unwrap();
    assert!(tokens.len() >= CTX * WINDOWS, "corpus too short: {} tokens", tokens.len());
    tokens.truncate(CTX * WINDOWS);
    let base = std::env::temp_dir().join(format!("aura-quality-{}.bin", std::process::id()));
    let opts = |kv: KvScheme, path| SessionOptions { capacity: CTX, attention: Some(path), kv: Some(kv) };
    pollster::block_on(async {
        let mut raw = RawLogitsTap::create(&base, model.config.vocab).unwrap();
        perplexity_windows(&model, &tokens, CTX, opts(KvScheme::F16, AttentionPath::Auto), &mut raw, |_, _| {})
            .await
            .unwrap();
        assert_eq!(raw.finish().unwrap(), (WINDOWS * (CTX / 2 - 1)) as u64);
        let mut failures = Vec::new();
        for &(name, path, max_kld, min_top) in GATES {
            let mut tap = KldTap::open(&base).unwrap();
            perplexity_windows(&model, &tokens, CTX, opts(KvScheme::parse(name).unwrap(), path), &mut tap, |_, _| {})
                .await
                .unwrap();
            let s = tap.finish().unwrap().summary();
            eprintln!(
                "{name} {path:?}: mean KLD {:.5}, median {:.5}, p99 {:.4}, max {:.4}, same top-1 {:.2}%, PPL {:.3} (base {:.3})",
                s.mean, s.median, s.p99, s.max, s.same_top_pct, s.ppl_cand, s.ppl_base
            );
            if s.mean > max_kld || s.same_top_pct < min_top {
                failures.push(format!(
                    "{name} {path:?}: mean KLD {:.5} (gate {max_kld}), same top-1 {:.2}% (gate {min_top}%)",
                    s.mean, s.same_top_pct
                ));
            }
        }
        std::fs::remove_file(&base).ok();
        assert!(failures.is_empty(), "quality gates failed:\n{}", failures.join("\n"));
    });
}
