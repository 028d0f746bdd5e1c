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
    /// Print, for every generated position, the N largest logits it was chosen from, one
    /// line `top: {"pos":i,"id":chosen,"logit":l,"top":[[id,logit],..]}` each (for comparing
    /// backends numerically; decodes through per-step logit read-backs).
    #[arg(long, value_name = "N")]
    print_top: Option<usize>,
    /// Teacher-force this continuation (comma-separated token ids) instead of sampling:
    /// each is fed in turn, so --print-top shows this engine's logits along another run's
    /// tokens. Implies --ignore-eos and --max-tokens = their count.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    force_ids: Option<Vec<u32>>,
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
    let forced = cli.force_ids.as_deref();
    let max_tokens = forced.map_or(cli.max_tokens, |f| f.len());
    let ignore_eos = cli.ignore_eos || forced.is_some();
    if let Some(f) = forced {
        let vocab = model.config.vocab;
        if let Some(bad) = f.iter().find(|&&id| id as usize >= vocab) {
            return Err(aura::Error::InvalidArgument(format!("--force-ids: {bad} is past the vocabulary ({vocab})")));
        }
    }
    let capacity = cli.model.ctx.unwrap_or(model.config.context_length.min(4096));
    if ids.len() + max_tokens > capacity {
        return Err(aura::Error::ContextOverflow { needed: ids.len() + max_tokens, capacity });
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
    if cli.sample.greedy && forced.is_none() && cli.print_top.is_none() {
        // Greedy: argmax on the GPU, steps queued ahead of the id read-back.
        let first = sampler.sample(&logits);
        if max_tokens > 0 && (ignore_eos || !tok.is_stop(first)) {
            emit(first, &mut out)?;
            let mut err = None;
            let mut on_token = |id: u32| {
                if tok.is_stop(id) && !ignore_eos {
                    return true;
                }
                if let Err(e) = emit(id, &mut out) {
                    err = Some(e);
                    return true;
                }
                false
            };
            session.decode_greedy(first, max_tokens - 1, &mut on_token).await?;
            if let Some(e) = err {
                return Err(e);
            }
        }
    } else {
        for pos in 0..max_tokens {
            let next = match forced {
                Some(f) => f[pos],
                None => sampler.sample(&logits),
            };
            if let Some(n) = cli.print_top {
                let top: Vec<_> =
                    aura::sample::top_n(&logits, n).into_iter().map(|(i, l)| serde_json::json!([i, l])).collect();
                let line = serde_json::json!({ "pos": pos, "id": next, "logit": logits[next as usize], "top": top });
                // stderr: stdout carries the streamed text.
                eprintln!("top: {line}");
            }
            if tok.is_stop(next) && !ignore_eos {
                break;
            }
            emit(next, &mut out)?;
            if out.len() == max_tokens {
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
