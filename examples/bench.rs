//! Decode and prompt-processing throughput over a grid of context depth x KV scheme x
//! attention path. Depth is reached with `Session::assume_filled` (cache contents don't
//! affect speed). Decode is timed two ways: `host` (a step, read the logits back, argmax
//! on the host: one round trip per token, as llama-bench's tg does) and `gpu` (argmax on
//! the GPU, steps queued 8 per submission, ids read back a chunk behind).
mod common;

use std::sync::atomic::Ordering;
use std::time::Instant;

use aura::gpu::dispatch::DISPATCHES;
use aura::kv::scheme::KvScheme;
use aura::model::synthetic::{llama_gguf, Shape};
use aura::model::tensor::WeightType;
use aura::session::Stage;
use aura::{AttentionPath, Engine, HostModel, Model, Session, SessionOptions};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Decode and prompt-processing tokens/s over depth x KV scheme x attention path (median of --runs)")]
struct Cli {
    /// Context depths (tokens already in the cache).
    #[arg(long, default_value = "0,1024,4096,16384", value_delimiter = ',')]
    depths: Vec<usize>,
    /// KV schemes.
    #[arg(long, default_value = "f16,aura8v4,aura4v4,aura4v2,aura3v3", value_delimiter = ',')]
    schemes: Vec<String>,
    /// Attention paths: auto, single, two-pass[:BLOCK] (BLOCK 16, 32 or a multiple of 64), mirror.
    #[arg(long, default_value = "auto", value_delimiter = ',')]
    paths: Vec<String>,
    /// Decode loops to time: host, gpu (comma list).
    #[arg(long, default_value = "host,gpu", value_delimiter = ',')]
    loops: Vec<String>,
    /// Decode steps timed per run.
    #[arg(long, default_value_t = 128)]
    tokens: usize,
    /// Runs per cell (median reported), after one warm-up run.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Prompt lengths for prompt-processing (prefill) throughput; 0 to skip.
    #[arg(long, default_value = "512", value_delimiter = ',')]
    prefill: Vec<usize>,
    /// Random weights with a real model's shapes instead of --model: smollm2-135m, llama-1b, llama-8b.
    #[arg(long)]
    synthetic: Option<String>,
    /// Also time each cell with a PerplexityTap consuming every step's logits (host loop),
    /// to show what a tap costs (the forward has no tap hook, so no tap = no cost).
    #[arg(long)]
    tap: bool,
    /// GPU timestamps per stage of a decode step (embed, norm+qkv, attention, o-proj, ffn,
    /// head): GPU ms per step, µs per dispatch, and the share of the wall time that is GPU time.
    #[arg(long)]
    profile: bool,
    /// Also time the GPU loop with each stage of the step left out in turn (qkv, attention,
    /// o-proj, ffn, down, head; outputs are then wrong, timing only): what each stage costs
    /// inside a real step, barriers included, without timestamps.
    #[arg(long)]
    ablate: bool,
    /// Every kernel returns as soon as it starts (outputs are garbage): the tok/s then measure
    /// the floor of dispatches, barriers and recording alone, to set against a normal run's
    /// step (the share of the step that is kernel time).
    #[arg(long)]
    empty_kernels: bool,
    /// Write results as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    #[command(flatten)]
    model: common::ModelArgs,
}

fn main() {
    common::run_main(run(Cli::parse()));
}

/// The GPU-sampling loop (`decode_greedy`) from `depth`: tokens/s (median of `runs` after a
/// warm-up) and dispatches per token.
async fn gpu_loop(s: &mut Session, depth: usize, tokens: usize, runs: usize) -> aura::Result<(f64, f64)> {
    let (mut times, mut dispatches) = (Vec::new(), 0.0);
    for run in 0..=runs {
        s.assume_filled(depth)?;
        let d0 = DISPATCHES.load(Ordering::Relaxed);
        let t = Instant::now();
        let out = s.decode_greedy(1, tokens, &mut |_| false).await?;
        if run > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
        assert_eq!(out.len(), tokens);
        dispatches = (DISPATCHES.load(Ordering::Relaxed) - d0) as f64 / tokens as f64;
    }
    Ok((tokens as f64 / median(times), dispatches))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn run(cli: Cli) -> aura::Result<()> {
    if cli.runs == 0 || cli.tokens == 0 {
        return Err(aura::Error::InvalidArgument("--runs and --tokens must be at least 1".into()));
    }
    for l in &cli.loops {
        if l != "host" && l != "gpu" {
            return Err(aura::Error::InvalidArgument(format!("--loops takes host and/or gpu, not `{l}`")));
        }
    }
    let opts = aura::Options { profile: cli.profile, empty_kernels: cli.empty_kernels, ..cli.model.options()? };
    let engine = Engine::new(opts).await?;
    if cli.empty_kernels {
        println!("EMPTY KERNELS: every kernel returns at once; these figures are the dispatch floor, not decoding.\n");
    }
    eprintln!("adapter: {}", engine.describe());
    let max_depth = cli.depths.iter().max().copied().unwrap_or(0);
    let prefill: Vec<usize> = cli.prefill.iter().copied().filter(|&n| n > 0).collect();
    let max_prefill = prefill.iter().max().copied().unwrap_or(0);
    let (model, label) = match cli.synthetic.as_deref() {
        Some(name) => {
            let mut shape = match name {
                "smollm2-135m" => Shape::smollm2_135m(),
                "llama-1b" => Shape::llama_1b(),
                "llama-8b" => Shape::llama_8b(),
                o => return Err(aura::Error::InvalidArgument(format!("unknown synthetic config `{o}`"))),
            };
            shape.context = shape.context.max(max_depth.max(max_prefill) + cli.tokens + 16);
            let bytes = llama_gguf(&shape, WeightType::Q4_1, WeightType::Q8_0, 1);
            (Model::new(&engine, HostModel::from_gguf_bytes(&bytes)?)?, format!("synthetic {name} (Q4_1, random)"))
        }
        None => {
            let p = cli.model.model_path()?;
            (Model::load(&engine, &p)?, p.display().to_string())
        }
    };
    println!("model: {label}\nadapter: {}\n", engine.describe());
    let mut rows = Vec::new();
    let mut prefill_rows = Vec::new();
    if !prefill.is_empty() {
        println!("| prompt tokens | kv | prefill tok/s |");
        println!("|---:|---|---:|");
        for &n in &prefill {
            for scheme in &cli.schemes {
                let kv = KvScheme::parse(scheme)?;
                let mut s =
                    Session::new(&model, SessionOptions { capacity: n + 8, attention: None, kv: Some(kv) }).await?;
                let ids: Vec<u32> = (0..n).map(|i| (i * 7919 % 30000 + 100) as u32).collect();
                let mut times = Vec::new();
                for run in 0..=cli.runs {
                    s.reset();
                    let t = Instant::now();
                    s.prefill(&ids).await?;
                    if run > 0 {
                        times.push(t.elapsed().as_secs_f64());
                    }
                }
                s.take_profile();
                let tps = n as f64 / median(times);
                println!("| {n} | {scheme} | {tps:.0} |");
                if cli.profile {
                    s.reset();
                    let chunk = n.min(aura::session::MAX_SLOTS);
                    for (label, k, us) in kernel_profile(&engine, &mut s, 0, chunk).await? {
                        println!("|   | kernel, one {chunk}-token prefill step: {label} x{k}: {us:.1} µs | |");
                    }
                }
                eprintln!("done: prefill {n} {scheme}: {tps:.0} tok/s");
                prefill_rows.push(serde_json::json!({"prompt_tokens": n, "kv": scheme, "tok_s": tps}));
            }
        }
        println!();
    }
    let host_col = cli.loops.iter().any(|l| l == "host");
    let gpu_col = cli.loops.iter().any(|l| l == "gpu");
    println!("| depth | kv | path | plan at depth | host loop tok/s | GPU-sampling loop tok/s | dispatches/token | KV B/token |");
    println!("|---:|---|---|---|---:|---:|---:|---:|");
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
                // Host loop: one submission and one logits read-back per token.
                let (mut host_tps, mut dispatches) = (None, 0.0);
                if host_col {
                    let mut times = Vec::new();
                    for run in 0..=cli.runs {
                        s.assume_filled(depth)?;
                        let mut tok = 1u32;
                        let d0 = DISPATCHES.load(Ordering::Relaxed);
                        let t = Instant::now();
                        for _ in 0..cli.tokens {
                            let l = s.step(tok).await?;
                            tok = aura::sample::argmax(&l);
                        }
                        if run > 0 {
                            times.push(t.elapsed().as_secs_f64());
                        }
                        dispatches = (DISPATCHES.load(Ordering::Relaxed) - d0) as f64 / cli.tokens as f64;
                    }
                    host_tps = Some(cli.tokens as f64 / median(times));
                }
                let profile = s.take_profile();
                let kernels =
                    if cli.profile && host_col { Some(kernel_profile(&engine, &mut s, depth, 0).await?) } else { None };
                // GPU-sampling loop: queued steps, ids read back a chunk behind.
                let mut gpu_tps = None;
                let mut ablation = Vec::new();
                if gpu_col {
                    let (tps, d) = gpu_loop(&mut s, depth, cli.tokens, cli.runs).await?;
                    (gpu_tps, dispatches) = (Some(tps), d);
                    if cli.ablate {
                        for stage in Stage::ALL {
                            s.set_ablation(&[stage]);
                            let (t, d) = gpu_loop(&mut s, depth, cli.tokens, cli.runs).await?;
                            ablation.push((stage, 1000.0 / tps - 1000.0 / t, dispatches - d));
                        }
                        s.set_ablation(&[]);
                    }
                }
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
                    tap_tps = Some(cli.tokens as f64 / median(tt));
                }
                let f = |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{v:.1}"));
                println!(
                    "| {depth} | {scheme} | {path} | {plan:?} | {} | {} | {dispatches:.0} | {} |",
                    f(host_tps),
                    f(gpu_tps),
                    s.kv_bytes_per_token()
                );
                if let (Some(t), Some(h)) = (tap_tps, host_tps) {
                    println!(
                        "|   | with PerplexityTap (host loop) | | | {t:.1} ({:+.1}%) | | | |",
                        100.0 * (t / h - 1.0)
                    );
                }
                if let Some(p) = &profile {
                    let total: f64 = p.iter().map(|x| x.1).sum();
                    let parts: Vec<String> =
                        p.iter().map(|(n, ms)| format!("{n} {:.3} ms ({:.0}%)", ms, 100.0 * ms / total)).collect();
                    let wall_ms = host_tps.map_or(0.0, |t| 1000.0 / t);
                    println!(
                        "|   | profile | GPU {:.3} ms/step = {:.2} µs/dispatch; {:.0}% of the host loop's {:.3} ms/token: {} | | | | |",
                        total,
                        1000.0 * total / dispatches.max(1.0),
                        100.0 * total / wall_ms.max(1e-9),
                        wall_ms,
                        parts.join(", ")
                    );
                }
                if !ablation.is_empty() {
                    let parts: Vec<String> = ablation
                        .iter()
                        .map(|(st, ms, n)| {
                            format!(
                                "{st:?} {:.0} µs/token ({n:.0} dispatches, {:.1} µs each)",
                                1000.0 * ms,
                                1000.0 * ms / n
                            )
                        })
                        .collect();
                    println!(
                        "|   | ablation | GPU loop {:.0} µs/token; left out, each stage saves: {} | | | | |",
                        1.0e6 / gpu_tps.unwrap_or(1.0),
                        parts.join(", ")
                    );
                }
                if let Some(k) = &kernels {
                    for (label, n, us) in k {
                        println!(
                            "|   | kernel | {label} x{n}: {us:.1} µs/step ({:.2} µs each) | | | | |",
                            us / *n as f64
                        );
                    }
                }
                eprintln!("done: depth {depth} {scheme} {path}: host {} / gpu {} tok/s", f(host_tps), f(gpu_tps));
                rows.push(serde_json::json!({"depth": depth, "kv": scheme, "path": path, "plan": format!("{plan:?}"),
                    "host_loop_tok_s": host_tps, "gpu_loop_tok_s": gpu_tps, "dispatches_per_token": dispatches,
                    "kv_bytes_per_token": s.kv_bytes_per_token(), "profile_ms": profile, "tap_tok_s": tap_tps}));
            }
        }
    }
    if let Some(p) = cli.json {
        let doc =
            serde_json::json!({"adapter": engine.describe(), "model": label, "decode": rows, "prefill": prefill_rows});
        std::fs::write(&p, serde_json::to_string_pretty(&doc).unwrap())
            .map_err(|e| aura::Error::Io { path: p.display().to_string(), message: e.to_string() })?;
    }
    Ok(())
}

/// GPU time per kernel over one decode step at `depth` (or, with `prefill` > 0, one
/// prefill step of that many tokens): a timestamp before every dispatch (so each span
/// includes the barrier before the next), summed by pipeline label. Each timestamp also
/// costs some GPU time, so the spans overstate the kernels a little. The step's last
/// dispatch (the LM head, or the last layer's down projection in prefill) has no closing
/// stamp and is not listed.
async fn kernel_profile(
    engine: &aura::Engine,
    s: &mut Session,
    depth: usize,
    prefill: usize,
) -> aura::Result<Vec<(String, usize, f64)>> {
    use aura::gpu::dispatch::{KernelTimer, KERNEL_TIMER};
    let gpu = &engine.gpu;
    let cap = 4096u32;
    let queries = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("kernel_timer"),
        ty: wgpu::QueryType::Timestamp,
        count: cap,
    });
    s.assume_filled(depth)?;
    s.step(1).await?;
    KERNEL_TIMER.with(|t| *t.borrow_mut() = Some(KernelTimer { queries, capacity: cap, labels: Vec::new() }));
    let r = match prefill {
        0 => s.step(1).await,
        n => s.forward(&vec![1; n], None).await,
    };
    let timer = KERNEL_TIMER.with(|t| t.borrow_mut().take()).expect("timer installed");
    r?;
    let n = timer.labels.len() as u32;
    let resolve =
        gpu.buffer("resolve", n as u64 * 8, wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC)?;
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: n as u64 * 8,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    enc.resolve_query_set(&timer.queries, 0..n, &resolve, 0);
    enc.copy_buffer_to_buffer(&resolve, 0, &staging, 0, n as u64 * 8);
    gpu.queue.submit([enc.finish()]);
    let raw = gpu.map_read(&staging).await?;
    let ts: &[u64] = bytemuck::cast_slice(&raw);
    let period = gpu.queue.get_timestamp_period() as f64;
    let mut by: Vec<(String, usize, f64)> = Vec::new();
    for i in 0..(n as usize).saturating_sub(1) {
        let us = ts[i + 1].saturating_sub(ts[i]) as f64 * period / 1e3;
        match by.iter_mut().find(|e| e.0 == timer.labels[i]) {
            Some(e) => {
                e.1 += 1;
                e.2 += us;
            }
            None => by.push((timer.labels[i].clone(), 1, us)),
        }
    }
    Ok(by)
}
