//! Perplexity of a text file in windows (llama.cpp's perplexity-tool method).
mod common;

use std::time::Instant;

use aura::telemetry::{perplexity_windows, PerplexityTap};
use aura::{Engine, Model, SessionOptions};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Perplexity of a text in windows of --ctx tokens, scored on the second half of each window")]
struct Cli {
    /// Text file to score.
    #[arg(long, default_value = "/usr/share/common-licenses/GPL-3")]
    text: std::path::PathBuf,
    /// Window length in tokens.
    #[arg(long, default_value_t = 512)]
    window: usize,
    /// Score at most this many windows (default: all).
    #[arg(long)]
    max_windows: Option<usize>,
    #[command(flatten)]
    model: common::ModelArgs,
}

fn main() {
    common::run_main(run(Cli::parse()));
}

async fn run(cli: Cli) -> aura::Result<()> {
    let text = common::read_text(&cli.text)?;
    let engine = Engine::new(cli.model.options()?).await?;
    eprintln!("adapter: {}", engine.describe());
    let model = Model::load(&engine, &cli.model.model_path()?)?;
    let mut tokens = model.tokenizer.encode(&text, false)?;
    if let Some(m) = cli.max_windows {
        tokens.truncate(m * cli.window);
    }
    let total = tokens.len() / cli.window;
    let bar = common::Progress::new(total as u64, "{bar:40} {pos}/{len} windows, {elapsed} elapsed, eta {eta}");
    let mut tap = PerplexityTap::default();
    let t = Instant::now();
    let opts = SessionOptions { capacity: cli.window, ..Default::default() };
    let windows =
        perplexity_windows(&model, &tokens, cli.window, opts, &mut tap, |d, _| bar.set_position(d as u64)).await?;
    bar.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{}: {} windows of {} tokens, {} scored: PPL = {:.4} ({:.1} tok/s, {:.1} s)",
        cli.text.display(),
        windows,
        cli.window,
        tap.count,
        tap.ppl(),
        (windows * cli.window) as f64 / secs,
        secs
    );
    Ok(())
}
