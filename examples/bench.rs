//! Decode throughput over a grid of context depth x KV scheme x attention path.
//! Depth is reached with `Session::assume_filled` (cache contents don't affect speed).
mod common;

use std::time::Instant;

use aura::kv::scheme::KvScheme;
use aura::model::synthetic::{llama_gguf, Shape};
use aura::model::tensor::WeightType;
use aura::{AttentionPath, Engine, HostModel, Model, Session, SessionOptions};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Decode tokens/s over depth x KV scheme x attention path (median of --runs)")]
struct Cli {
    /// Context depths (tokens already in the cache).
    #[arg(long, default_value = "0,4096,16384", value_delimiter = ',')]
    depths: Vec<usize>,
    /// KV schemes.
    #[arg(long, default_value = "f16,aura8v4,aura4v4,aura4v2", value_delimiter = ',')]
    schemes: Vec<String>,
    /// Attention paths: auto, single, two-pass[:BLOCK], mirror.
    #[arg(long, default_value = "single,two-pass", value_delimiter = ',')]
    paths: Vec<String>,
    /// Decode steps timed per run.
    #[arg(long, default_value_t = 64)]
    tokens: usize,
    /// Runs per cell (median reported), after one warm-up run.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Random weights with a real model's shapes instead of --model: smollm2-135m, llama-1b, llama-8b.
    #[arg(long)]
    synthetic: Option<String>,
    /// Also time each cell with a PerplexityTap consuming every step's logits, to show
    /// what a tap costs (the forward itself has no tap hook, so no tap = no cost).
    #[arg(long)]
    tap: bool,
    /// GPU timestamps per stage of a decode step (embed, norm+qkv, attention, o-proj, ffn, head).
    #[arg(long)]
    profile: bool,
    /// Write results as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    #[command(flatten)]
    model: common::ModelArgs,
}

fn main() {
    common::run_main(run(Cli::parse()));
}

async fn run(cli: Cli) -> aura::Result<()> {
    let engine = Engine::new(aura::Options { profile: cli.profile, ..cli.model.options()? }).await?;
    eprintln!("adapter: {}", engine.describe());
    let model = match cli.synthetic.as_deref() {
        Some(name) => {
            let shape = match name {
                "smollm2-135m" => Shape::smollm2_135m(),
                "llama-1b" => Shape::llama_1b(),
                "llama-8b" => Shape::llama_8b(),
                o => return Err(aura::Error::InvalidArgument(format!("unknown synthetic config `{o}`"))),
            };
            let mut shape = shape;
            shape.context = shape.context.max(cli.depths.iter().max().copied().unwrap_or(0) + cli.tokens + 16);
            Model::new(
                &engine,
                HostModel::from_gguf_bytes(&llama_gguf(&shape, WeightType::Q4_1, WeightType::Q8_0, 1))?,
            )?
        }
        None => Model::load(&engine, &cli.model.model_path()?)?,
    };
    let mut rows = Vec::new();
    println!("| depth | kv | path | plan at depth | decode tok/s | KV B/token |");
    println!("|---:|---|---|---|---:|---:|");
    for &depth in &cli.depths {
        for scheme in &cli.schemes {
            let kv = KvScheme::parse(scheme)?;
            for path in &cli.paths {
                let path_v = AttentionPath::parse(path)?;
                if path_v == AttentionPath::Mirror && !kv.is_compressed() {
                    continue;
                }
                let capacity = depth + cli.tokens + 8;
                let mut s =
                    Session::new(&model, SessionOptions { capacity, attention: Some(path_v), kv: Some(kv) }).await?;
                let plan = s.plan_for(depth + 1);
                let mut times = Vec::new();
                for run in 0..=cli.runs {
                    s.assume_filled(depth)?;
                    let mut tok = 1u32;
                    let t = Instant::now();
                    for _ in 0..cli.tokens {
                        let l = s.step(tok).await?;
                        tok = aura::sample::argmax(&l);
                    }
                    if run > 0 {
                        times.push(t.elapsed().as_secs_f64());
                    }
                }
                times.sort_by(f64::total_cmp);
                let mut tap_tps = None;
                if cli.tap {
                    use aura::telemetry::LogitsTap;
                    let mut tap = aura::telemetry::PerplexityTap::default();
                    let mut tt = Vec::new();
                    for run in 0..=cli.runs {
                        s.assume_filled(depth)?;
                        let mut tok = 1u32;
                        let t = Instant::now();
                        for i in 0..cli.tokens {
                            let l = s.step(tok).await?;
                            tok = aura::sample::argmax(&l);
                            tap.consume(depth + i, tok, &l);
                        }
                        if run > 0 {
                            tt.push(t.elapsed().as_secs_f64());
                        }
                    }
                    tt.sort_by(f64::total_cmp);
                    tap_tps = Some(cli.tokens as f64 / tt[tt.len() / 2]);
                }
                let profile = s.take_profile();
                let tps = cli.tokens as f64 / times[times.len() / 2];
                println!("| {depth} | {scheme} | {path} | {plan:?} | {tps:.1} | {} |", s.kv_bytes_per_token());
                if let Some(t) = tap_tps {
                    println!("|   | with PerplexityTap | | | {t:.1} ({:+.1}%) | |", 100.0 * (t / tps - 1.0));
                }
                if let Some(p) = &profile {
                    let total: f64 = p.iter().map(|x| x.1).sum();
                    let parts: Vec<String> =
                        p.iter().map(|(n, ms)| format!("{n} {:.3} ms ({:.0}%)", ms, 100.0 * ms / total)).collect();
                    println!("|   | profile | GPU {:.3} ms/step: {} |", total, parts.join(", "));
                }
                eprintln!("done: depth {depth} {scheme} {path}: {tps:.1} tok/s");
                rows.push(serde_json::json!({"depth": depth, "kv": scheme, "path": path, "plan": format!("{plan:?}"), "tok_s": tps, "kv_bytes_per_token": s.kv_bytes_per_token(), "profile_ms": profile}));
            }
        }
    }
    if let Some(p) = cli.json {
        let doc = serde_json::json!({"adapter": engine.describe(), "rows": rows});
        std::fs::write(&p, serde_json::to_string_pretty(&doc).unwrap())
            .map_err(|e| aura::Error::Io { path: p.display().to_string(), message: e.to_string() })?;
    }
    Ok(())
}
