use aura::gpu::registry::StepUniform;
use aura::kernels::*;
use aura::model::tensor::WeightType;
use aura::reference::quant::quantize;
use std::time::Instant;
fn main() {
    let e = pollster::block_on(aura::Engine::new(aura::Options {
        backend: Some(aura::Backend::Vulkan),
        subgroups: std::env::args().nth(1).map(|s| s == "sg"),
        ..Default::default()
    }))
    .unwrap();
    let g = &e.gpu;
    let st = wgpu::BufferUsages::STORAGE;
    for (ty, rows, k, tt, t) in [
        (WeightType::Q4_1, 1536usize, 576usize, 8u32, 32u32),
        (WeightType::Q4_1, 1536, 576, 16, 32),
        (WeightType::Q4_1, 1536, 576, 4, 32),
        (WeightType::Q4_1, 1536, 576, 1, 32),
        (WeightType::Q4_1, 1536, 576, 1, 1),
        (WeightType::Q8_0, 49152, 576, 8, 32),
    ] {
        let w: Vec<f32> = (0..rows * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let wb = g.buffer_init("w", &quantize(ty, &w), st).unwrap();
        let x = g.buffer("x", (32 * k * 4) as u64, st).unwrap();
        let y = g.buffer("y", (32 * rows * 4) as u64, st).unwrap();
        let p = MatvecParams { rows: rows as u32, accumulate: 0, out_stride: rows as u32, _pad: 0 };
        let key = if tt > 1 { matmul_key(e.variant(), ty, k, tt) } else { matvec_key(e.variant(), ty, k, tt) };
        let mut gr = grid((rows as u32).div_ceil(if tt > 1 { 64 } else { 4 }), 65535);
        gr[2] = t.div_ceil(tt);
        let step = StepUniform { n_tokens: t, ..StepUniform::single(0) };
        pollster::block_on(g.run_once(&key, bytemuck::bytes_of(&p), &[&wb, &x, &y], gr, step)).unwrap();
        g.device.poll(wgpu::PollType::Wait { submission_index: None, timeout: None }).unwrap();
        let t0 = Instant::now();
        for _ in 0..5 {
            pollster::block_on(g.run_once(&key, bytemuck::bytes_of(&p), &[&wb, &x, &y], gr, step)).unwrap();
        }
        g.device.poll(wgpu::PollType::Wait { submission_index: None, timeout: None }).unwrap();
        let dt = t0.elapsed().as_secs_f64() / 5.0;
        println!(
            "{ty:?} {rows}x{k} tt={tt} T={t}: {:.2} ms, {:.2} GMAC/s",
            dt * 1e3,
            (rows * k) as f64 * t as f64 / dt / 1e9
        );
    }
}
