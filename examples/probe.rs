//! What a dispatch costs on this adapter, apart from any kernel's work: N one-workgroup
//! dispatches of a trivial kernel in one compute pass, each depending on the previous one
//! (same buffer: wgpu puts a barrier between them) or independent (N buffers: no
//! barriers), timed by wall clock over repeated submissions and, where the adapter has
//! them, by GPU timestamps around the pass.
mod common;

use std::time::Instant;

use aura::Engine;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Per-dispatch cost in one compute pass: dependent vs independent trivial dispatches")]
struct Cli {
    /// Dispatches per pass.
    #[arg(long, default_value_t = 256)]
    dispatches: u32,
    /// Passes timed (median reported), after 3 warm-up passes.
    #[arg(long, default_value_t = 20)]
    passes: usize,
    #[command(flatten)]
    model: common::ModelArgs,
}

/// One thread, a dependent chain of 2^16 FMAs (plus the loop's own overhead): a serial
/// single-thread latency figure, for comparing adapters, not a clock measurement.
const CLOCK_KERNEL: &str = "@group(0) @binding(0) var<storage, read_write> b: array<f32>;
@compute @workgroup_size(1)
fn main() { var x = b[0]; for (var i = 0u; i < 65536u; i = i + 1u) { x = fma(x, 1.0000001, 0.5); } b[0] = x; }";

const KERNEL: &str = "@group(0) @binding(0) var<storage, read_write> b: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) i: u32) { b[i] = b[i] + 1u; }";

fn main() {
    common::run_main(run(Cli::parse()));
}

async fn run(cli: Cli) -> aura::Result<()> {
    if cli.dispatches == 0 || cli.passes == 0 {
        return Err(aura::Error::InvalidArgument("--dispatches and --passes must be at least 1".into()));
    }
    let engine = Engine::new(aura::Options { profile: true, ..cli.model.options()? })
        .await
        .or(Engine::new(cli.model.options()?).await)?;
    println!("adapter: {}", engine.describe());
    let gpu = &engine.gpu;
    let dev = &gpu.device;
    let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("probe"),
        source: wgpu::ShaderSource::Wgsl(KERNEL.into()),
    });
    let pipe = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("probe"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let layout = pipe.get_bind_group_layout(0);
    let n = cli.dispatches as usize;
    let bufs: Vec<wgpu::Buffer> =
        (0..n).map(|_| gpu.buffer("probe", 256, wgpu::BufferUsages::STORAGE)).collect::<aura::Result<_>>()?;
    let groups: Vec<wgpu::BindGroup> = bufs
        .iter()
        .map(|b| {
            dev.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &layout,
                entries: &[wgpu::BindGroupEntry { binding: 0, resource: b.as_entire_binding() }],
            })
        })
        .collect();
    let stamps = gpu.caps.has_timestamps && gpu.options.profile;
    let qs = stamps.then(|| {
        dev.create_query_set(&wgpu::QuerySetDescriptor { label: None, ty: wgpu::QueryType::Timestamp, count: 2 })
    });
    let resolve = gpu.buffer("resolve", 16, wgpu::BufferUsages::QUERY_RESOLVE)?;
    let staging = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    println!("| dispatches per pass | kind | wall µs/dispatch | GPU µs/dispatch (timestamps) | host µs/dispatch (record + submit) |");
    println!("|---:|---|---:|---:|---:|");
    for dependent in [true, false] {
        let (mut wall, mut gpu_t, mut host) = (Vec::new(), Vec::new(), Vec::new());
        for p in 0..cli.passes + 3 {
            let t = Instant::now();
            let mut enc = dev.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: qs.as_ref().map(|q| wgpu::ComputePassTimestampWrites {
                        query_set: q,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    }),
                });
                pass.set_pipeline(&pipe);
                for i in 0..n {
                    pass.set_bind_group(0, &groups[if dependent { 0 } else { i }], &[]);
                    pass.dispatch_workgroups(1, 1, 1);
                }
            }
            if let Some(q) = &qs {
                enc.resolve_query_set(q, 0..2, &resolve, 0);
                enc.copy_buffer_to_buffer(&resolve, 0, &staging, 0, 16);
            }
            gpu.queue.submit([enc.finish()]);
            let recorded = t.elapsed().as_secs_f64();
            let raw = gpu.map_read(&staging).await?;
            let w = t.elapsed().as_secs_f64();
            if p >= 3 {
                wall.push(w * 1e6 / n as f64);
                host.push(recorded * 1e6 / n as f64);
                if qs.is_some() {
                    let ts: &[u64] = bytemuck::cast_slice(&raw);
                    let ns = ts[1].saturating_sub(ts[0]) as f64 * gpu.queue.get_timestamp_period() as f64;
                    gpu_t.push(ns / 1e3 / n as f64);
                }
            }
        }
        let med = |mut v: Vec<f64>| -> String {
            if v.is_empty() {
                return "—".into();
            }
            v.sort_by(f64::total_cmp);
            format!("{:.2}", v[v.len() / 2])
        };
        let kind = if dependent { "dependent (one buffer, barriers)" } else { "independent (own buffers)" };
        println!("| {n} | {kind} | {} | {} | {} |", med(wall), med(gpu_t), med(host));
    }
    // Shader clock: one thread's dependent FMA chain.
    let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("clock"),
        source: wgpu::ShaderSource::Wgsl(CLOCK_KERNEL.into()),
    });
    let pipe = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("clock"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipe.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry { binding: 0, resource: bufs[0].as_entire_binding() }],
    });
    let mut times = Vec::new();
    for p in 0..8 {
        let t = Instant::now();
        let mut enc = dev.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipe);
            pass.set_bind_group(0, &bg, &[]);
            for _ in 0..16 {
                pass.dispatch_workgroups(1, 1, 1);
            }
        }
        enc.copy_buffer_to_buffer(&bufs[0], 0, &staging, 0, 16);
        gpu.queue.submit([enc.finish()]);
        gpu.map_read(&staging).await?;
        if p >= 2 {
            times.push(t.elapsed().as_secs_f64() / 16.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let t = times[times.len() / 2];
    println!(
        "\nserial: one thread's loop of 65536 dependent FMAs in {:.1} µs ({:.1} ns per iteration)",
        t * 1e6,
        t * 1e9 / 65536.0
    );
    Ok(())
}
