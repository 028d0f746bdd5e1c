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
    /// Also time the decode kernels at SmolLM2-135M shapes (random Q4_1 weights), each
    /// dispatched back to back in one pass, with wgpu's shader checks on and off.
    #[arg(long)]
    kernels: bool,
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
    let (resolve, staging) = stamp_buffers(gpu)?;
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
    if cli.kernels && !gpu.caps.has_timestamps {
        return Err(aura::Error::Unsupported(
            "--kernels times kernels with GPU timestamps, which this adapter does not have".into(),
        ));
    }
    if cli.kernels {
        // Shader checks on vs off (WG 64), then the matvec workgroup size (checks off).
        for (checks, wg) in [(false, 32), (false, 64), (false, 128), (false, 256)] {
            let engine = Engine::new(aura::Options { profile: true, shader_checks: checks, ..cli.model.options()? })
                .await
                .or(Engine::new(aura::Options { shader_checks: checks, ..cli.model.options()? }).await)?;
            let label = format!("shader checks {}, WG {wg}", if checks { "on" } else { "off" });
            kernel_table(&engine.gpu, &label, wg, cli.dispatches.min(128) as usize, cli.passes).await?;
        }
        let engine = Engine::new(aura::Options { profile: true, ..cli.model.options()? }).await?;
        sequences(&engine.gpu, cli.passes).await?;
    }
    Ok(())
}

/// One decode kernel at fixed shapes: its pipeline key, params, the read-only inputs
/// (shared) and the outputs (one set per dispatch when independent), and its grid.
struct Case {
    name: String,
    key: aura::gpu::registry::PipelineKey,
    params: Vec<u8>,
    inputs: Vec<u64>,
    outputs: Vec<u64>,
    groups: [u32; 3],
}

fn q4_1_weights(rows: usize, cols: usize) -> Vec<u8> {
    let mut st = 0x9e3779b97f4a7c15u64;
    let mut out = Vec::with_capacity(rows * cols / 32 * 20);
    for _ in 0..rows * cols / 32 {
        out.extend_from_slice(&half::f16::from_f32(0.01).to_le_bytes());
        out.extend_from_slice(&half::f16::from_f32(-0.08).to_le_bytes());
        for _ in 0..16 {
            st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            out.push((st >> 56) as u8);
        }
    }
    out
}

async fn kernel_table(gpu: &aura::gpu::Gpu, label: &str, wg: u32, n: usize, passes: usize) -> aura::Result<()> {
    use aura::kernels::*;
    use aura::model::tensor::WeightType::Q4_1;
    let v = gpu.variant;
    let maxg = gpu.caps.max_workgroups_per_dim;
    let (h, ffn, kv, vocab) = (576usize, 1536usize, 192usize, 49152usize);
    let f = 4u64;
    let norm = |name: &str, rows: usize, groups: u32| Case {
        name: name.into(),
        key: matvec_norm_key(v, Q4_1, h, rows, 0, false),
        params: bytemuck::bytes_of(&MatvecNormParams {
            rows: rows as u32,
            n0: rows.min(h) as u32,
            n1: rows.min(h + kv) as u32,
            eps: 1e-5,
            stride0: h as u32,
            stride1: kv as u32,
            stride2: (rows.max(h + kv) - h - kv).max(1) as u32,
            capacity: 0,
        })
        .to_vec(),
        inputs: vec![(rows * h / 32 * 20) as u64, h as u64 * f, h as u64 * f],
        // y0, y1, y2, the unused RoPE table, the prefetch placeholder.
        outputs: vec![h as u64 * f, kv as u64 * f, (rows.max(h + kv) - h - kv).max(1) as u64 * f, 8, 4],
        groups: grid(groups, maxg),
    };
    let cases = vec![
        norm("matvec_norm q|k|v 960x576", h + 2 * kv, (h as u32 + 2 * kv as u32) / 4),
        norm("matvec_norm, 1 workgroup (4 rows)", 4, 1),
        Case {
            name: "matvec_glu gate|up 2x1536x576".into(),
            key: matvec_glu_key(v, Q4_1, h, ffn),
            params: bytemuck::bytes_of(&MatvecGluParams { ffn: ffn as u32, eps: 1e-5, _pad: [0; 2] }).to_vec(),
            inputs: vec![(2 * ffn * h / 32 * 20) as u64, h as u64 * f, h as u64 * f],
            outputs: vec![ffn as u64 * f, 4],
            groups: grid(ffn as u32 / 4, maxg),
        },
        Case {
            name: "matvec down 576x1536 (+= residual)".into(),
            key: matvec_key(v, Q4_1, ffn, h, 1),
            params: bytemuck::bytes_of(&MatvecParams {
                rows: h as u32,
                accumulate: 1,
                out_stride: h as u32,
                row_base: 0,
            })
            .to_vec(),
            inputs: vec![(h * ffn / 32 * 20) as u64, ffn as u64 * f],
            outputs: vec![h as u64 * f, 4],
            groups: grid(h as u32 / 4, maxg),
        },
        norm("matvec_norm LM head 49152x576", vocab, vocab as u32 / 4),
    ];
    println!("\n{label}: µs of GPU time per dispatch, {n} back to back in one pass");
    println!("| kernel | weights KB | dependent (barriers) | dependent, weights L2-cold | independent | GB/s (cold) |");
    println!("|---|---:|---:|---:|---:|---:|");
    let dev = &gpu.device;
    let step_bg = step_group(gpu)?;
    for mut c in cases {
        for k in c.key.consts.iter_mut() {
            if k.0 == "WG" {
                k.1 = wg;
            }
        }
        let p = gpu.pipeline(&c.key).await?;
        let params = gpu.buffer_init("params", &c.params, wgpu::BufferUsages::UNIFORM)?;
        let mut inputs = Vec::new();
        for (i, &size) in c.inputs.iter().enumerate() {
            let bytes = if i == 0 {
                let rows = (size / 20 * 32) as usize;
                q4_1_weights(rows, 1).into_iter().chain(std::iter::repeat(0)).take(size as usize).collect()
            } else {
                bytemuck::cast_slice(&vec![0.5f32; size as usize / 4]).to_vec()
            };
            inputs.push(gpu.buffer_init("in", &bytes, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC)?);
        }
        // Copies of the weights (up to 256 MB in all) for the L2-cold chain.
        let copies = (n as u64).min((256u64 << 20) / c.inputs[0]).max(1) as usize;
        let wcopies: Vec<wgpu::Buffer> = (0..copies)
            .map(|_| {
                let b = gpu.buffer("w", c.inputs[0], wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST)?;
                let mut enc = dev.create_command_encoder(&Default::default());
                enc.copy_buffer_to_buffer(&inputs[0], 0, &b, 0, c.inputs[0]);
                gpu.queue.submit([enc.finish()]);
                Ok(b)
            })
            .collect::<aura::Result<_>>()?;
        let mut binds = Vec::new();
        let mut cold = Vec::new();
        for i in 0..n {
            let outs: Vec<wgpu::Buffer> = c
                .outputs
                .iter()
                .map(|&s| gpu.buffer("out", s, wgpu::BufferUsages::STORAGE))
                .collect::<aura::Result<_>>()?;
            let mut res: Vec<&wgpu::Buffer> = vec![&params];
            res.extend(inputs.iter());
            res.extend(outs.iter());
            binds.push((gpu.bind(&p, &res), outs));
            let mut res: Vec<&wgpu::Buffer> = vec![&params, &wcopies[i % copies]];
            res.extend(inputs[1..].iter());
            res.extend(binds[0].1.iter());
            cold.push(gpu.bind(&p, &res));
        }
        let mut row = vec![];
        for mode in 0..3 {
            let seq: Vec<_> = (0..n)
                .map(|i| {
                    let bg = match mode {
                        0 => &binds[0].0,
                        1 => &cold[i],
                        _ => &binds[i].0,
                    };
                    (&p.pipeline, bg, c.groups)
                })
                .collect();
            row.push(time_seq(gpu, &seq, Some(&step_bg), passes).await?);
        }
        let kb = c.inputs[0] as f64 / 1e3;
        println!("| {} | {kb:.0} | {:.2} | {:.2} | {:.2} | {:.0} |", c.name, row[0], row[1], row[2], kb / row[1]);
    }
    Ok(())
}

/// GPU µs per dispatch of a recorded sequence in one pass (median over passes).
async fn time_seq(
    gpu: &aura::gpu::Gpu,
    seq: &[(&wgpu::ComputePipeline, &wgpu::BindGroup, [u32; 3])],
    step: Option<&wgpu::BindGroup>,
    passes: usize,
) -> aura::Result<f64> {
    let dev = &gpu.device;
    let qs = dev.create_query_set(&wgpu::QuerySetDescriptor { label: None, ty: wgpu::QueryType::Timestamp, count: 2 });
    let (resolve, staging) = stamp_buffers(gpu)?;
    let mut t = Vec::new();
    for pass_i in 0..passes + 3 {
        let mut enc = dev.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &qs,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: Some(1),
                }),
            });
            for (p, bg, g) in seq {
                pass.set_pipeline(p);
                if let Some(s) = step {
                    pass.set_bind_group(1, s, &[0]);
                }
                pass.set_bind_group(0, *bg, &[]);
                pass.dispatch_workgroups(g[0], g[1], g[2]);
            }
        }
        enc.resolve_query_set(&qs, 0..2, &resolve, 0);
        enc.copy_buffer_to_buffer(&resolve, 0, &staging, 0, 16);
        gpu.queue.submit([enc.finish()]);
        let raw = gpu.map_read(&staging).await?;
        let ts: &[u64] = bytemuck::cast_slice(&raw);
        if pass_i >= 3 {
            t.push(
                ts[1].saturating_sub(ts[0]) as f64 * gpu.queue.get_timestamp_period() as f64 / 1e3 / seq.len() as f64,
            );
        }
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

/// Where the in-context cost of a dispatch comes from: pipeline switches, cold weights
/// (L2 misses), and alternating real kernels, each as a dependent chain of 128.
async fn sequences(gpu: &aura::gpu::Gpu, passes: usize) -> aura::Result<()> {
    use aura::kernels::*;
    use aura::model::tensor::WeightType::Q4_1;
    let dev = &gpu.device;
    let n = 128usize;
    let trivial = |src: &str| {
        let m = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: None,
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: None,
            layout: None,
            module: &m,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        })
    };
    let pa = trivial(KERNEL);
    let pb = trivial(&KERNEL.replace("+ 1u", "+ 2u"));
    let shared = gpu.buffer("shared", 1 << 16, wgpu::BufferUsages::STORAGE)?;
    let bga = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pa.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry { binding: 0, resource: shared.as_entire_binding() }],
    });
    let bgb = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pb.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry { binding: 0, resource: shared.as_entire_binding() }],
    });
    println!("\nsequences (dependent chains of {n}, one pass): GPU µs per dispatch");
    println!("| sequence | µs |");
    println!("|---|---:|");
    let one: Vec<_> = (0..n).map(|_| (&pa, &bga, [1, 1, 1])).collect();
    println!("| trivial, one pipeline | {:.2} |", time_seq(gpu, &one, None, passes).await?);
    let alt: Vec<_> =
        (0..n).map(|i| if i % 2 == 0 { (&pa, &bga, [1, 1, 1]) } else { (&pb, &bgb, [1, 1, 1]) }).collect();
    println!("| trivial, two pipelines alternating | {:.2} |", time_seq(gpu, &alt, None, passes).await?);
    // A uniform read first: one shared buffer vs a buffer per dispatch.
    let pu = trivial("struct P { a: u32, b: u32, c: u32, d: u32 }\n@group(0) @binding(0) var<storage, read_write> b: array<u32>;\n@group(0) @binding(1) var<uniform> p: P;\n@compute @workgroup_size(64)\nfn main(@builtin(local_invocation_index) i: u32) { b[i + p.a] = b[i + p.b] + 1u; }");
    let ubufs: Vec<wgpu::Buffer> =
        (0..n).map(|_| gpu.buffer_init("u", &[0u8; 16], wgpu::BufferUsages::UNIFORM)).collect::<aura::Result<_>>()?;
    let ubg: Vec<wgpu::BindGroup> = ubufs
        .iter()
        .map(|u| {
            dev.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pu.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: shared.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: u.as_entire_binding() },
                ],
            })
        })
        .collect();
    let us: Vec<_> = (0..n).map(|_| (&pu, &ubg[0], [1, 1, 1])).collect();
    println!("| trivial + uniform read, one uniform buffer | {:.2} |", time_seq(gpu, &us, None, passes).await?);
    let ud: Vec<_> = (0..n).map(|i| (&pu, &ubg[i], [1, 1, 1])).collect();
    println!(
        "| trivial + uniform read, a uniform buffer per dispatch | {:.2} |",
        time_seq(gpu, &ud, None, passes).await?
    );
    // Six read-write bindings, each written (six buffer barriers per dispatch).
    let p6 = trivial("@group(0) @binding(0) var<storage, read_write> b0: array<u32>;\n@group(0) @binding(1) var<storage, read_write> b1: array<u32>;\n@group(0) @binding(2) var<storage, read_write> b2: array<u32>;\n@group(0) @binding(3) var<storage, read_write> b3: array<u32>;\n@group(0) @binding(4) var<storage, read_write> b4: array<u32>;\n@group(0) @binding(5) var<storage, read_write> b5: array<u32>;\n@compute @workgroup_size(64)\nfn main(@builtin(local_invocation_index) i: u32) { b0[i] += 1u; b1[i] += 1u; b2[i] += 1u; b3[i] += 1u; b4[i] += 1u; b5[i] += 1u; }");
    let six: Vec<wgpu::Buffer> =
        (0..6).map(|_| gpu.buffer("six", 1024, wgpu::BufferUsages::STORAGE)).collect::<aura::Result<_>>()?;
    let bg6 = dev.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &p6.get_bind_group_layout(0),
        entries: &(0..6)
            .map(|i| wgpu::BindGroupEntry { binding: i as u32, resource: six[i].as_entire_binding() })
            .collect::<Vec<_>>(),
    });
    let s6: Vec<_> = (0..n).map(|_| (&p6, &bg6, [1, 1, 1])).collect();
    println!("| trivial, six read-write buffers written | {:.2} |", time_seq(gpu, &s6, None, passes).await?);

    // Real kernels with the step uniform.
    let v = gpu.variant;
    let maxg = gpu.caps.max_workgroups_per_dim;
    let (h, ffn, kv) = (576usize, 1536usize, 192usize);
    let step_bg = step_group(gpu)?;
    // Placeholders: matvec_norm's RoPE table, the prefetch binding.
    let spare: Vec<wgpu::Buffer> =
        (0..2).map(|_| gpu.buffer("spare", 8, wgpu::BufferUsages::STORAGE)).collect::<aura::Result<_>>()?;
    let regions = 128usize;
    let big = gpu.buffer_init("w", &q4_1_weights(h * regions, ffn), wgpu::BufferUsages::STORAGE)?;
    let xf = gpu.buffer_init("x", bytemuck::cast_slice(&vec![0.5f32; ffn]), wgpu::BufferUsages::STORAGE)?;
    let y = gpu.buffer("y", 4 * ffn as u64, wgpu::BufferUsages::STORAGE)?;
    let pdown = gpu.pipeline(&matvec_key(v, Q4_1, ffn, h, 1)).await?;
    let down_bg: Vec<wgpu::BindGroup> = (0..regions)
        .map(|r| {
            let prm = MatvecParams { rows: h as u32, accumulate: 1, out_stride: h as u32, row_base: (r * h) as u32 };
            Ok(gpu.bind(&pdown, &[&aura::gpu::dispatch::uniform(gpu, prm)?, &big, &xf, &y, &spare[1]]))
        })
        .collect::<aura::Result<_>>()?;
    let g = grid(h as u32 / 4, maxg);
    let hot: Vec<_> = (0..n).map(|_| (&pdown.pipeline, &down_bg[0], g)).collect();
    println!("| matvec down, same weights (L2-hot) | {:.2} |", time_seq(gpu, &hot, Some(&step_bg), passes).await?);
    // Same weights, but each dispatch its own (equal) params uniform buffer.
    let own_params: Vec<wgpu::BindGroup> = (0..n)
        .map(|_| {
            let prm = MatvecParams { rows: h as u32, accumulate: 1, out_stride: h as u32, row_base: 0 };
            Ok(gpu.bind(&pdown, &[&aura::gpu::dispatch::uniform(gpu, prm)?, &big, &xf, &y, &spare[1]]))
        })
        .collect::<aura::Result<_>>()?;
    let op: Vec<_> = (0..n).map(|i| (&pdown.pipeline, &own_params[i], g)).collect();
    println!(
        "| matvec down, same weights, own params uniform per dispatch | {:.2} |",
        time_seq(gpu, &op, Some(&step_bg), passes).await?
    );
    let cold: Vec<_> = (0..n).map(|i| (&pdown.pipeline, &down_bg[i % regions], g)).collect();
    println!(
        "| matvec down, 128 weight regions, 71 MB (L2-cold) | {:.2} |",
        time_seq(gpu, &cold, Some(&step_bg), passes).await?
    );
    // matvec_norm q|k|v writing y (as y0), alternating with the down matvec.
    let pn = gpu.pipeline(&matvec_norm_key(v, Q4_1, h, h + 2 * kv, 0, false)).await?;
    let wn = gpu.buffer_init("wn", &q4_1_weights(h + 2 * kv, h), wgpu::BufferUsages::STORAGE)?;
    let (y1, y2) = (
        gpu.buffer("y1", 4 * kv as u64, wgpu::BufferUsages::STORAGE)?,
        gpu.buffer("y2", 4 * kv as u64, wgpu::BufferUsages::STORAGE)?,
    );
    let prm = MatvecNormParams {
        rows: (h + 2 * kv) as u32,
        n0: h as u32,
        n1: (h + kv) as u32,
        eps: 1e-5,
        stride0: h as u32,
        stride1: kv as u32,
        stride2: kv as u32,
        capacity: 0,
    };

    let norm_bg =
        gpu.bind(&pn, &[&aura::gpu::dispatch::uniform(gpu, prm)?, &wn, &xf, &xf, &y, &y1, &y2, &spare[0], &spare[1]]);
    let gn = grid((h + 2 * kv) as u32 / 4, maxg);
    let mix: Vec<_> = (0..n)
        .map(|i| if i % 2 == 0 { (&pn.pipeline, &norm_bg, gn) } else { (&pdown.pipeline, &down_bg[0], g) })
        .collect();
    println!(
        "| matvec_norm q|k|v / matvec down alternating (L2-hot) | {:.2} |",
        time_seq(gpu, &mix, Some(&step_bg), passes).await?
    );
    let mixc: Vec<_> = (0..n)
        .map(|i| if i % 2 == 0 { (&pn.pipeline, &norm_bg, gn) } else { (&pdown.pipeline, &down_bg[i % regions], g) })
        .collect();
    println!("| same, down weights L2-cold | {:.2} |", time_seq(gpu, &mixc, Some(&step_bg), passes).await?);
    // The decode step's projections without attention: 30 layers of norm+q|k|v, o (+= x),
    // norm+gate|up+SwiGLU, down (+= x), each layer's weights in their own buffers (66 MB).
    let pglu = gpu.pipeline(&matvec_glu_key(v, Q4_1, h, ffn)).await?;
    let po = gpu.pipeline(&matvec_key(v, Q4_1, h, h, 1)).await?;
    let (q, kk, vv, att, act) = (
        gpu.buffer("q", 4 * h as u64, wgpu::BufferUsages::STORAGE)?,
        gpu.buffer("k", 4 * kv as u64, wgpu::BufferUsages::STORAGE)?,
        gpu.buffer("v", 4 * kv as u64, wgpu::BufferUsages::STORAGE)?,
        gpu.buffer_init("att", bytemuck::cast_slice(&vec![0.5f32; h]), wgpu::BufferUsages::STORAGE)?,
        gpu.buffer("act", 4 * ffn as u64, wgpu::BufferUsages::STORAGE)?,
    );
    let xres = gpu.buffer_init("x", bytemuck::cast_slice(&vec![0.5f32; h]), wgpu::BufferUsages::STORAGE)?;
    let nw = gpu.buffer_init("nw", bytemuck::cast_slice(&vec![1.0f32; h]), wgpu::BufferUsages::STORAGE)?;
    let ws: Vec<[wgpu::Buffer; 4]> = (0..30)
        .map(|_| {
            Ok([
                gpu.buffer_init("wqkv", &q4_1_weights(h + 2 * kv, h), wgpu::BufferUsages::STORAGE)?,
                gpu.buffer_init("wo", &q4_1_weights(h, h), wgpu::BufferUsages::STORAGE)?,
                gpu.buffer_init("wgu", &q4_1_weights(2 * ffn, h), wgpu::BufferUsages::STORAGE)?,
                gpu.buffer_init("wd", &q4_1_weights(h, ffn), wgpu::BufferUsages::STORAGE)?,
            ])
        })
        .collect::<aura::Result<_>>()?;
    // Bind groups per layer, without prefetch (placeholder) and with the engine's chain.
    let mut layer_bgs = Vec::new();
    for prefetch in [false, true] {
        for l in 0..30 {
            let [wqkv, wo, wgu, wd] = &ws[l];
            let next_qkv = ws.get(l + 1).map_or(&spare[1], |n| &n[0]);
            let prm_o = MatvecParams { rows: h as u32, accumulate: 1, out_stride: h as u32, row_base: 0 };
            let u = |x| aura::gpu::dispatch::uniform(gpu, x);
            let bg_qkv =
                gpu.bind(&pn, &[&u(prm)?, wqkv, &xres, &nw, &q, &kk, &vv, &spare[0], pick(prefetch, wo, &spare[1])]);
            let bg_o = gpu.bind(
                &po,
                &[&aura::gpu::dispatch::uniform(gpu, prm_o)?, wo, &att, &xres, pick(prefetch, wgu, &spare[1])],
            );
            let prm_g = MatvecGluParams { ffn: ffn as u32, eps: 1e-5, _pad: [0; 2] };
            let bg_g = gpu.bind(
                &pglu,
                &[&aura::gpu::dispatch::uniform(gpu, prm_g)?, wgu, &xres, &nw, &act, pick(prefetch, wd, &spare[1])],
            );
            let bg_d = gpu.bind(
                &pdown,
                &[&aura::gpu::dispatch::uniform(gpu, prm_o)?, wd, &act, &xres, pick(prefetch, next_qkv, &spare[1])],
            );
            layer_bgs.push([bg_qkv, bg_o, bg_g, bg_d]);
        }
    }
    let go = grid(h as u32 / 4, maxg);
    let gg = grid(ffn as u32 / 4, maxg);
    let pipes = [&pn.pipeline, &po.pipeline, &pglu.pipeline, &pdown.pipeline];
    let grids = [gn, go, gg, g];
    // The 30 layers' 4 projections in order, from one of the two sets of bind groups.
    let (plain, pf) = layer_bgs.split_at(30);
    let step_seq: Vec<_> = plain.iter().flat_map(|l| (0..4).map(move |k| (pipes[k], &l[k], grids[k]))).collect();
    println!(
        "| 30 layers x (norm+qkv, o, glu, down), own weight buffers (66 MB) | {:.2} |",
        time_seq(gpu, &step_seq, Some(&step_bg), passes).await?
    );
    let pf_seq: Vec<_> = pf.iter().flat_map(|l| (0..4).map(move |k| (pipes[k], &l[k], grids[k]))).collect();
    println!(
        "| same, each kernel prefetching the next one's weights into L2 | {:.2} |",
        time_seq(gpu, &pf_seq, Some(&step_bg), passes).await?
    );
    let hot_seq: Vec<_> = step_seq.iter().enumerate().map(|(i, e)| (e.0, &layer_bgs[0][i % 4], e.2)).collect();
    println!(
        "| same, layer 0's weights every time (L2-hot) | {:.2} |",
        time_seq(gpu, &hot_seq, Some(&step_bg), passes).await?
    );
    Ok(())
}

/// `b` when on, else the placeholder.
fn pick<'a>(on: bool, b: &'a wgpu::Buffer, none: &'a wgpu::Buffer) -> &'a wgpu::Buffer {
    if on {
        b
    } else {
        none
    }
}

/// The step uniform's bind group (group 1) for a one-token step at position 0.
fn step_group(gpu: &aura::gpu::Gpu) -> aura::Result<wgpu::BindGroup> {
    let align = gpu.caps.uniform_align as usize;
    let bytes = [bytemuck::bytes_of(&aura::gpu::registry::StepUniform::default()), &vec![0u8; align][..]].concat();
    let step_buf = gpu.buffer_init("step", &bytes, wgpu::BufferUsages::UNIFORM)?;
    Ok(gpu.registry.step_bind_group(&gpu.device, &step_buf))
}

/// The resolve and read-back buffers for a pass's two timestamps.
fn stamp_buffers(gpu: &aura::gpu::Gpu) -> aura::Result<(wgpu::Buffer, wgpu::Buffer)> {
    let resolve = gpu.buffer("resolve", 16, wgpu::BufferUsages::QUERY_RESOLVE)?;
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    Ok((resolve, staging))
}
