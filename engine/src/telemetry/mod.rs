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
        return Err(Error::InvalidArgument(format!(
            "text has {} tokens, fewer than one window of {ctx}",
            tokens.len()
        )));
    }
    let mut session = Session::new(model, SessionOptions { capacity: ctx, ..opts }).await?;
    let vocab = model.config.vocab;
    let first = scored_positions(ctx).start;
    for w in 0..windows {
        let win = &tokens[w * ctx..(w + 1) * ctx];
        session.reset();
        let logits = session.forward(win, Some(first)).await?;
        for j in scored_positions(ctx) {
            let row = &logits[(j - first) * vocab..(j - first + 1) * vocab];
            tap.consume(w * ctx + j, win[j + 1], row);
        }
        progress(w + 1, windows);
    }
    Ok(windows)
}

/// The positions of a window of `ctx` tokens whose predictions (of the token after each)
/// a perplexity run scores: the second half, ctx/2 .. ctx-2, as llama.cpp's perplexity tool.
pub fn scored_positions(ctx: usize) -> std::ops::Range<usize> {
    ctx / 2..ctx - 1
}

/// Fan one logits stream out to several taps.
pub struct Taps<'a>(pub Vec<&'a mut dyn LogitsTap>);

impl LogitsTap for Taps<'_> {
    fn consume(&mut self, position: usize, next_token: u32, logits: &[f32]) {
        for t in self.0.iter_mut() {
            t.consume(position, next_token, logits);
        }
    }
}

/// log-softmax in f64.
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let m = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = logits.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln() + m;
    logits.iter().map(|&x| x as f64 - lse).collect()
}

/// KL(p_base || p_cand) over the full vocabulary, f64 log-softmax.
pub fn kl_divergence(base: &[f32], cand: &[f32]) -> f64 {
    let (lb, lc) = (log_softmax(base), log_softmax(cand));
    lb.iter().zip(&lc).map(|(b, c)| b.exp() * (b - c)).sum::<f64>().max(0.0)
}

/// Per-position KLD and agreement statistics of a candidate against a baseline.
#[derive(Default, Debug, Clone)]
pub struct KldStats {
    pub kld: Vec<f64>,
    pub same_top: usize,
    pub nll_base: f64,
    pub nll_cand: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KldSummary {
    pub count: usize,
    pub mean: f64,
    pub median: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub same_top_pct: f64,
    pub ppl_base: f64,
    pub ppl_cand: f64,
}

impl KldStats {
    pub fn add(&mut self, base: &[f32], cand: &[f32], next_token: u32) {
        self.kld.push(kl_divergence(base, cand));
        self.same_top += (crate::sample::argmax(base) == crate::sample::argmax(cand)) as usize;
        self.nll_base -= log_prob(base, next_token);
        self.nll_cand -= log_prob(cand, next_token);
    }

    pub fn summary(&self) -> KldSummary {
        let n = self.kld.len();
        let mut s = self.kld.clone();
        s.sort_by(f64::total_cmp);
        let q = |f: f64| if n == 0 { 0.0 } else { s[((n as f64 - 1.0) * f).round() as usize] };
        KldSummary {
            count: n,
            mean: s.iter().sum::<f64>() / n.max(1) as f64,
            median: q(0.5),
            p99: q(0.99),
            p999: q(0.999),
            max: s.last().copied().unwrap_or(0.0),
            same_top_pct: 100.0 * self.same_top as f64 / n.max(1) as f64,
            ppl_base: (self.nll_base / n.max(1) as f64).exp(),
            ppl_cand: (self.nll_cand / n.max(1) as f64).exp(),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use raw::{KldTap, RawLogitsTap, RAW_LOGITS_MAGIC};

/// Raw logits files: a 32-byte header — magic `AURALGT1`, u32 version (1), u32 vocab,
/// u64 rows, u64 reserved (0) — then `rows` records of u32 position, u32 next token,
/// `vocab` f32 logits, all little-endian.
#[cfg(not(target_arch = "wasm32"))]
mod raw {
    use std::fs::File;
    use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
    use std::path::Path;

    use super::{KldStats, LogitsTap};
    use crate::error::{Error, Result};

    pub const RAW_LOGITS_MAGIC: &[u8; 8] = b"AURALGT1";

    fn io(path: &Path, e: std::io::Error) -> Error {
        Error::Io { path: path.display().to_string(), message: e.to_string() }
    }

    /// Writes every consumed row to a raw logits file.
    pub struct RawLogitsTap {
        path: std::path::PathBuf,
        out: BufWriter<File>,
        vocab: usize,
        rows: u64,
        error: Option<Error>,
    }

    impl RawLogitsTap {
        pub fn create(path: &Path, vocab: usize) -> Result<RawLogitsTap> {
            let mut out = BufWriter::new(File::create(path).map_err(|e| io(path, e))?);
            let mut h = Vec::with_capacity(32);
            h.extend_from_slice(RAW_LOGITS_MAGIC);
            h.extend_from_slice(&1u32.to_le_bytes());
            h.extend_from_slice(&(vocab as u32).to_le_bytes());
            h.extend_from_slice(&[0u8; 16]);
            out.write_all(&h).map_err(|e| io(path, e))?;
            Ok(RawLogitsTap { path: path.to_path_buf(), out, vocab, rows: 0, error: None })
        }

        /// Flush and patch the row count into the header.
        pub fn finish(mut self) -> Result<u64> {
            if let Some(e) = self.error.take() {
                return Err(e);
            }
            self.out.flush().map_err(|e| io(&self.path, e))?;
            let mut f = self.out.into_inner().map_err(|e| io(&self.path, e.into_error()))?;
            f.seek(SeekFrom::Start(16)).map_err(|e| io(&self.path, e))?;
            f.write_all(&self.rows.to_le_bytes()).map_err(|e| io(&self.path, e))?;
            Ok(self.rows)
        }
    }

    impl LogitsTap for RawLogitsTap {
        fn consume(&mut self, position: usize, next_token: u32, logits: &[f32]) {
            if self.error.is_some() {
                return;
            }
            debug_assert_eq!(logits.len(), self.vocab);
            let r = self
                .out
                .write_all(&(position as u32).to_le_bytes())
                .and_then(|_| self.out.write_all(&next_token.to_le_bytes()))
                .and_then(|_| self.out.write_all(bytemuck::cast_slice(logits)));
            match r {
                Ok(()) => self.rows += 1,
                Err(e) => self.error = Some(io(&self.path, e)),
            }
        }
    }

    /// Compares each consumed row against the next row of a recorded baseline file.
    pub struct KldTap {
        path: std::path::PathBuf,
        input: BufReader<File>,
        vocab: usize,
        rows: u64,
        row: Vec<f32>,
        pub stats: KldStats,
        error: Option<Error>,
    }

    impl KldTap {
        pub fn open(path: &Path) -> Result<KldTap> {
            let mut input = BufReader::new(File::open(path).map_err(|e| io(path, e))?);
            let mut h = [0u8; 32];
            input.read_exact(&mut h).map_err(|e| io(path, e))?;
            if &h[..8] != RAW_LOGITS_MAGIC || u32::from_le_bytes(h[8..12].try_into().unwrap()) != 1 {
                return Err(Error::Format(format!("{}: not an aura raw logits file", path.display())));
            }
            let vocab = u32::from_le_bytes(h[12..16].try_into().unwrap()) as usize;
            let rows = u64::from_le_bytes(h[16..24].try_into().unwrap());
            Ok(KldTap {
                path: path.to_path_buf(),
                input,
                vocab,
                rows,
                row: vec![0.0; vocab],
                stats: KldStats::default(),
                error: None,
            })
        }

        /// The statistics, or the first error met (baseline too short or mismatched).
        pub fn finish(self) -> Result<KldStats> {
            match self.error {
                Some(e) => Err(e),
                None => Ok(self.stats),
            }
        }
    }

    impl LogitsTap for KldTap {
        fn consume(&mut self, position: usize, next_token: u32, logits: &[f32]) {
            if self.error.is_some() {
                return;
            }
            if self.stats.kld.len() as u64 >= self.rows || logits.len() != self.vocab {
                self.error = Some(Error::Format(format!(
                    "{}: baseline has no row for position {position}",
                    self.path.display()
                )));
                return;
            }
            let mut rec = [0u8; 8];
            let r = self
                .input
                .read_exact(&mut rec)
                .and_then(|_| self.input.read_exact(bytemuck::cast_slice_mut(&mut self.row)));
            if let Err(e) = r {
                self.error = Some(io(&self.path, e));
                return;
            }
            let (pos, tok) =
                (u32::from_le_bytes(rec[..4].try_into().unwrap()), u32::from_le_bytes(rec[4..].try_into().unwrap()));
            if pos as usize != position || tok != next_token {
                self.error = Some(Error::Format(format!(
                    "baseline row is position {pos}/token {tok}, candidate is {position}/{next_token}"
                )));
                return;
            }
            let base = std::mem::take(&mut self.row);
            self.stats.add(&base, logits, next_token);
            self.row = base;
        }
    }
}
