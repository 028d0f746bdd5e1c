//! Logits consumers. `LogitsTap::consume` is the one seam; perplexity over
//! windows (llama.cpp's perplexity-tool method) is built on it.
use crate::error::{Error, Result};
use crate::session::{Session, SessionOptions};
use crate::Model;

/// Receives the logits of a position and the token that actually followed it.
pub trait LogitsTap {
    fn consume(&mut self, position: usize, next_token: u32, logits: &[f32]);
}

/// log p(token) under softmax(logits), in f64.
pub fn log_prob(logits: &[f32], token: u32) -> f64 {
    let m = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = logits.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln() + m;
    logits[token as usize] as f64 - lse
}

/// Accumulates negative log-likelihood.
#[derive(Default, Debug, Clone)]
pub struct PerplexityTap {
    pub nll: f64,
    pub count: usize,
}

impl LogitsTap for PerplexityTap {
    fn consume(&mut self, _position: usize, next_token: u32, logits: &[f32]) {
        self.nll -= log_prob(logits, next_token);
        self.count += 1;
    }
}

impl PerplexityTap {
    pub fn ppl(&self) -> f64 {
        (self.nll / self.count.max(1) as f64).exp()
    }
}

/// Score `tokens` in non-overlapping windows of `ctx` tokens, each evaluated from an
/// empty cache, scoring predictions from the second half of each window (positions
/// ctx/2 .. ctx-2 predict the next token), like llama.cpp's perplexity tool.
/// `progress(done, total)` is called after each window.
pub async fn perplexity_windows(
    model: &Model,
    tokens: &[u32],
    ctx: usize,
    opts: SessionOptions,
    tap: &mut dyn LogitsTap,
    mut progress: impl FnMut(usize, usize),
) -> Result<usize> {
    if ctx < 4 {
        return Err(Error::InvalidArgument(format!("window of {ctx} tokens is too small")));
    }
    let windows = tokens.len() / ctx;
    if windows == 0 {
        return Err(Error::InvalidArgument(format!("text has {} tokens, fewer than one window of {ctx}", tokens.len())));
    }
    let mut session = Session::new(model, SessionOptions { capacity: ctx, ..opts }).await?;
    let vocab = model.config.vocab;
    let first = ctx / 2;
    for w in 0..windows {
        let win = &tokens[w * ctx..(w + 1) * ctx];
        session.reset();
        let logits = session.forward(win, Some(first)).await?;
        for j in first..ctx - 1 {
            let row = &logits[(j - first) * vocab..(j - first + 1) * vocab];
            tap.consume(w * ctx + j, win[j + 1], row);
        }
        progress(w + 1, windows);
    }
    Ok(windows)
}
