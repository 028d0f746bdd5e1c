//! Quality of KV schemes: perplexity and KL divergence against a baseline scheme,
//! windows scored on their second half (llama.cpp's perplexity-tool method).
mod common;

use aura::kv::scheme::KvScheme;
use aura::telemetry::{perplexity_windows, KldTap, RawLogitsTap};
use aura::{AttentionPath, Engine, Model, SessionOptions};
use clap::Parser;

const DEFAULT_SCHEMES: &str = "f16,aura8v8,aura8v4,aura4v4,aura4v2,aura3v3,aura2v2";

#[derive(Parser, Debug)]
#[command(
    about = "PPL and KLD of KV schemes (--kv LIST, default every preset) against a baseline over a text, in windows of --ctx tokens"
)]
struct Cli {
    /// Text file to score.
    #[arg(long)]
    text: std::path::PathBuf,
    /// Window length in tokens (second half of each window is scored).
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// Baseline KV scheme.
    #[arg(long, default_value = "f16")]
    baseline: String,
    /// Attention paths for compressed candidates: single, two-pass, mirror, auto.
    #[arg(long = "path", default_value = "auto", value_delimiter = ',')]
    paths: Vec<String>,
    /// Score at most this many windows.
    #[arg(long)]
    max_windows: Option<usize>,
    /// Write the table as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    #[command(flatten)]
    model: common::ModelArgs,
}

fn main() {
    common::run_main(run(Cli::parse()));
}

async fn run(cli: Cli) -> aura::Result<()> {
    let text = common::read_text(&cli.text)?;
    // --kv is the list of candidate schemes here (default: every preset).
    let schemes: Vec<String> =
        cli.model.kv.as_deref().unwrap_or(DEFAULT_SCHEMES).split(',').map(|s| s.trim().to_string()).collect();
    let engine = Engine::new(aura::Options {
        kv: KvScheme::F16,
        ..common::ModelArgs { kv: None, ..cli.model.clone() }.options()?
    })
    .await?;
    eprintln!("adapter: {}", engine.describe());
    let model = Model::load(&engine, &cli.model.model_path()?)?;
    let mut tokens = model.tokenizer.encode(&text, false)?;
    if let Some(m) = cli.max_windows {
        tokens.truncate(m * cli.ctx);
    }
    let windows = tokens.len() / cli.ctx;
    let c = &model.config;
    let f16 = engine.variant().f16;
    let base_scheme = KvScheme::parse(&cli.baseline)?;
    let mut cells: Vec<(KvScheme, AttentionPath)> = Vec::new();
    for s in &schemes {
        let kv = KvScheme::parse(s)?;
        for p in &cli.paths {
            let path = AttentionPath::parse(p)?;
            if kv.is_compressed() || path == AttentionPath::Auto {
                cells.push((kv, path));
            }
        }
    }
    let bar = common::Progress::new(
        ((1 + cells.len()) * windows) as u64,
        "{bar:40} {pos}/{len} windows ({msg}) {elapsed} eta {eta}",
    );
    // Baseline once, recorded to a raw logits file.
    let tmp = std::env::temp_dir().join(format!("aura-kld-baseline-{}.bin", std::process::id()));
    let mut raw = RawLogitsTap::create(&tmp, c.vocab)?;
    bar.set_message(format!("baseline {}", base_scheme.name()));
    let opts = |kv, path| SessionOptions { capacity: cli.ctx, attention: Some(path), kv: Some(kv) };
    let done = std::cell::Cell::new(0u64);
    let tick = |_: usize, _: usize| {
        done.set(done.get() + 1);
        bar.set_position(done.get());
    };
    perplexity_windows(&model, &tokens, cli.ctx, opts(base_scheme, AttentionPath::Auto), &mut raw, tick).await?;
    raw.finish()?;
    let mut rows = Vec::new();
    let dense_bytes = KvScheme::F16.bytes_per_token(c.n_layers, c.n_kv_heads, c.head_dim, f16) as f64;
    for (kv, path) in &cells {
        bar.set_message(format!("{} {path:?}", kv.name()));
        let mut tap = KldTap::open(&tmp)?;
        perplexity_windows(&model, &tokens, cli.ctx, opts(*kv, *path), &mut tap, tick).await?;
        let s = tap.finish()?.summary();
        let bytes = kv.bytes_per_token(c.n_layers, c.n_kv_heads, c.head_dim, f16);
        rows.push((kv.name(), format!("{path:?}"), kv.bits_per_value(c.head_dim, f16), bytes, s));
    }
    bar.finish_and_clear();
    std::fs::remove_file(&tmp).ok();
    println!(
        "{} | {} windows of {} tokens, {} scored positions | baseline {}",
        engine.describe(),
        windows,
        cli.ctx,
        rows.first().map(|r| r.4.count).unwrap_or(0),
        base_scheme.name()
    );
    println!("| scheme | path | bits/value | KV B/token | PPL | ΔPPL % | mean KLD | median | p99 | p99.9 | max | same top-1 % |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, path, bits, bytes, s) in &rows {
        println!(
            "| {name} | {path} | {bits:.2} | {bytes} ({:.3}x) | {:.4} | {:+.2} | {:.5} | {:.5} | {:.4} | {:.4} | {:.4} | {:.2} |",
            *bytes as f64 / dense_bytes,
            s.ppl_cand,
            100.0 * (s.ppl_cand / s.ppl_base - 1.0),
            s.mean,
            s.median,
            s.p99,
            s.p999,
            s.max,
            s.same_top_pct
        );
    }
    if let Some(p) = &cli.json {
        let doc = serde_json::json!({
            "adapter": engine.describe(), "windows": windows, "ctx": cli.ctx, "baseline": base_scheme.name(),
            "rows": rows.iter().map(|(n, path, bits, bytes, s)| serde_json::json!({"scheme": n, "path": path, "bits_per_value": bits, "kv_bytes_per_token": bytes, "summary": s})).collect::<Vec<_>>(),
        });
        std::fs::write(p, serde_json::to_string_pretty(&doc).unwrap())
            .map_err(|e| aura::Error::Io { path: p.display().to_string(), message: e.to_string() })?;
    }
    Ok(())
}
