//! Interactive chat with the model's own chat template; tokens are streamed and
//! decode tokens/s printed after each reply. `/reset` starts over, `/quit` leaves.
mod common;

use std::io::{BufRead, Write};
use std::time::Instant;

use aura::model::tokenizer::ChatMessage;
use aura::{Engine, Model, Sampler, Session, SessionOptions};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Chat with a model through aura. Type a message; /reset clears the conversation, /quit exits.")]
struct Cli {
    /// Tokens per reply at most.
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// System prompt (default: the template's own).
    #[arg(long)]
    system: Option<String>,
    #[command(flatten)]
    model: common::ModelArgs,
    #[command(flatten)]
    sample: common::SampleArgs,
}

fn main() {
    common::run_main(run(Cli::parse()));
}

async fn run(cli: Cli) -> aura::Result<()> {
    let path = cli.model.model_path()?;
    let engine = Engine::new(cli.model.options()?).await?;
    eprintln!("adapter: {}", engine.describe());
    let model = Model::load(&engine, &path)?;
    let capacity = cli.model.ctx.unwrap_or(model.config.context_length.min(4096));
    let mut session = Session::new(&model, SessionOptions { capacity, ..Default::default() }).await?;
    eprintln!(
        "model: {} | context {} tokens | KV cache {} per token | /reset, /quit",
        path.display(),
        capacity,
        common::fmt_bytes(session.kv_bytes_per_token())
    );
    let tok = &model.tokenizer;
    let mut sampler = Sampler::new(cli.sample.config());
    let mut messages: Vec<ChatMessage> = Vec::new();
    if let Some(s) = &cli.system {
        messages.push(ChatMessage { role: "system".into(), content: s.clone() });
    }
    let base = messages.clone();
    // Tokens already in the KV cache (the rendered conversation so far).
    let mut cached: Vec<u32> = Vec::new();
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    loop {
        print!("> ");
        out.flush().ok();
        let mut line = String::new();
        if stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| aura::Error::Io { path: "stdin".into(), message: e.to_string() })?
            == 0
        {
            println!();
            break;
        }
        let line = line.trim();
        match line {
            "" => continue,
            "/quit" | "/exit" => break,
            "/reset" => {
                messages = base.clone();
                cached.clear();
                session.reset();
                println!("(conversation reset)");
                continue;
            }
            _ => {}
        }
        messages.push(ChatMessage { role: "user".into(), content: line.to_string() });
        let ids = tok.encode(&tok.render_chat(&messages, true)?, true)?;
        // Reuse the cached prefix; re-run from the first differing token.
        let common_len = cached.iter().zip(&ids).take_while(|(a, b)| a == b).count().min(ids.len() - 1);
        if ids.len() + cli.max_tokens > capacity {
            println!("(conversation too long for the {capacity}-token context: /reset to start over)");
            messages.pop();
            continue;
        }
        // Rows past the common prefix are stale; they are overwritten from here on.
        session.rewind(common_len.min(session.position()))?;
        let t0 = Instant::now();
        let mut logits = session.prefill(&ids[common_len..]).await?;
        let prefill = t0.elapsed().as_secs_f64();
        let mut reply = Vec::new();
        let mut stream = tok.stream_decoder();
        let t1 = Instant::now();
        loop {
            let next = sampler.sample(&logits);
            if tok.is_stop(next) || reply.len() >= cli.max_tokens {
                break;
            }
            reply.push(next);
            if let Some(s) = stream.push(next)? {
                print!("{s}");
                out.flush().ok();
            }
            logits = session.step(next).await?;
        }
        if let Some(s) = stream.flush()? {
            print!("{s}");
        }
        let secs = t1.elapsed().as_secs_f64();
        let text = tok.decode(&reply, true)?;
        println!();
        eprintln!(
            "[{} prompt tokens at {:.1} tok/s, {} reply tokens at {:.1} tok/s]",
            ids.len() - common_len,
            (ids.len() - common_len) as f64 / prefill,
            reply.len(),
            reply.len() as f64 / secs.max(1e-9)
        );
        messages.push(ChatMessage { role: "assistant".into(), content: text });
        cached = ids;
        cached.extend(&reply);
    }
    Ok(())
}
