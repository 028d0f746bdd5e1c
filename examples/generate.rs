//! One prompt in, text out, then prefill and decode tokens/s and KV bytes.
mod common;

use std::io::{Read, Write};
use std::time::Instant;

use aura::model::tokenizer::ChatMessage;
use aura::{Engine, Model, Sampler, Session, SessionOptions};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Generate text for one prompt with aura and report tokens/s")]
struct Cli {
    /// Prompt text; read from stdin when absent.
    #[arg(long)]
    prompt: Option<String>,
    /// Tokens to generate at most.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Feed the prompt as-is instead of through the model's chat template.
    #[arg(long)]
    raw: bool,
    /// Print the generated token ids after the text.
    #[arg(long)]
    print_ids: bool,
    /// Keep generating past end-of-sequence tokens (for throughput measurements).
    #[arg(long)]
    ignore_eos: bool,
    #[command(flatten)]
    model: common::ModelArgs,
    #[command(flatten)]
    sample: common::SampleArgs,
}

fn main() {
    common::run_main(run(Cli::parse()));
}

async fn run(cli: Cli) -> aura::Result<()> {
    let prompt = match cli.prompt.clone() {
        Some(p) => p,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| aura::Error::Io { path: "stdin".into(), message: e.to_string() })?;
            s
        }
    };
    let path = cli.model.model_path()?;
    let engine = Engine::new(cli.model.options()?).await?;
    eprintln!("adapter: {}", engine.describe());
    let t = Instant::now();
    let model = Model::load(&engine, &path)?;
    eprintln!("model: {} ({:.2} s to load)", path.display(), t.elapsed().as_secs_f64());
    let tok = &model.tokenizer;
    let text =
        if cli.raw { prompt } else { tok.render_chat(&[ChatMessage { role: "user".into(), content: prompt }], true)? };
    let ids = tok.encode(&text, true)?;
    let capacity = cli.model.ctx.unwrap_or(model.config.context_length.min(4096));
    if ids.len() + cli.max_tokens > capacity {
        return Err(aura::Error::ContextOverflow { needed: ids.len() + cli.max_tokens, capacity });
    }
    let mut session = Session::new(&model, SessionOptions { capacity, ..Default::default() }).await?;
    let mut sampler = Sampler::new(cli.sample.config());
    let t = Instant::now();
    let mut logits = session.prefill(&ids).await?;
    let prefill_s = t.elapsed().as_secs_f64();
    let mut out = Vec::new();
    let mut stream = tok.stream_decoder();
    let t = Instant::now();
    let stdout = std::io::stdout();
    let mut emit = |id: u32, out: &mut Vec<u32>| -> aura::Result<()> {
        out.push(id);
        if let Some(s) = stream.push(id)? {
            print!("{s}");
            stdout.lock().flush().ok();
        }
        Ok(())
    };
    if cli.sample.greedy {
        // Greedy: argmax on the GPU, steps queued ahead of the id read-back.
        let first = sampler.sample(&logits);
        if cli.max_tokens > 0 && (cli.ignore_eos || !tok.is_stop(first)) {
            emit(first, &mut out)?;
            let mut err = None;
            let mut on_token = |id: u32| {
                if tok.is_stop(id) && !cli.ignore_eos {
                    return true;
                }
                if let Err(e) = emit(id, &mut out) {
                    err = Some(e);
                    return true;
                }
                false
            };
            session.decode_greedy(first, cli.max_tokens - 1, &mut on_token).await?;
            if let Some(e) = err {
                return Err(e);
            }
        }
    } else {
        for _ in 0..cli.max_tokens {
            let next = sampler.sample(&logits);
            if tok.is_stop(next) && !cli.ignore_eos {
                break;
            }
            emit(next, &mut out)?;
            if out.len() == cli.max_tokens {
                break;
            }
            logits = session.step(next).await?;
        }
    }
    let decode_s = t.elapsed().as_secs_f64();
    println!();
    if cli.print_ids {
        println!("ids: {out:?}");
    }
    let decoded = out.len().saturating_sub(1).max(1);
    let c = &model.config;
    let dense =
        aura::kv::scheme::KvScheme::F16.bytes_per_token(c.n_layers, c.n_kv_heads, c.head_dim, engine.variant().f16);
    eprintln!(
        "prefill: {} tokens, {:.1} tok/s | decode: {} tokens, {:.1} tok/s",
        ids.len(),
        ids.len() as f64 / prefill_s,
        out.len(),
        decoded as f64 / decode_s,
    );
    eprintln!(
        "KV cache ({}): {} per token ({:.3}x of dense {} = {}), {} for {} tokens, {} allocated",
        session.scheme().name(),
        common::fmt_bytes(session.kv_bytes_per_token()),
        session.kv_bytes_per_token() as f64 / dense as f64,
        if engine.variant().f16 { "f16" } else { "f32" },
        common::fmt_bytes(dense),
        common::fmt_bytes(session.kv_bytes_per_token() * session.position() as u64),
        session.position(),
        common::fmt_bytes(session.kv_bytes_total()),
    );
    Ok(())
}
