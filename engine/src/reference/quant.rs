//! CPU twin of the WGSL `load8` dequantizers (wgsl/common/quant_*.wgsl).
use half::{bf16, f16};

use crate::model::tensor::WeightType;

fn f16_at(b: &[u8], o: usize) -> f32 {
    f16::from_le_bytes([b[o], b[o + 1]]).to_f32()
}

/// Dequantize `n` elements stored as `ty` (n must be a whole number of blocks).
pub fn dequantize(ty: WeightType, bytes: &[u8], n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    match ty {
        WeightType::F32 => {
            out.extend(bytes[..n * 4].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        }
        WeightType::F16 => {
            out.extend(bytes[..n * 2].chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()))
        }
        WeightType::BF16 => {
            out.extend(bytes[..n * 2].chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()))
        }
        WeightType::Q8_0 => {
            for blk in bytes[..n / 32 * 34].chunks_exact(34) {
                let d = f16_at(blk, 0);
                out.extend(blk[2..34].iter().map(|&q| d * (q as i8) as f32));
            }
        }
        WeightType::Q4_0 => {
            for blk in bytes[..n / 32 * 18].chunks_exact(18) {
                let d = f16_at(blk, 0);
                let qs = &blk[2..18];
                out.extend(qs.iter().map(|&q| d * ((q & 15) as f32 - 8.0)));
                out.extend(qs.iter().map(|&q| d * ((q >> 4) as f32 - 8.0)));
            }
        }
        WeightType::Q4_1 => {
            for blk in bytes[..n / 32 * 20].chunks_exact(20) {
                let d = f16_at(blk, 0);
                let m = f16_at(blk, 2);
                let qs = &blk[4..20];
                out.extend(qs.iter().map(|&q| d * (q & 15) as f32 + m));
                out.extend(qs.iter().map(|&q| d * (q >> 4) as f32 + m));
            }
        }
    }
    out
}

/// Quantize f32 values into `ty` (round to nearest), for building test weights.
pub fn quantize(ty: WeightType, x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    match ty {
        WeightType::F32 => x.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        WeightType::F16 => x.iter().for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes())),
        WeightType::BF16 => x.iter().for_each(|v| out.extend_from_slice(&bf16::from_f32(*v).to_le_bytes())),
        WeightType::Q8_0 => {
            for b in x.chunks(32) {
                let amax = b.iter().fold(0f32, |a, v| a.max(v.abs()));
                let d = amax / 127.0;
                let id = if d > 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend(b.iter().map(|v| (v * id).round().clamp(-127.0, 127.0) as i8 as u8));
            }
        }
        WeightType::Q4_0 => {
            for b in x.chunks(32) {
                let mx = b.iter().fold(0f32, |a, &v| if v.abs() > a.abs() { v } else { a });
                let d = mx / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                let q = |v: f32| ((v * id + 8.5) as i32).clamp(0, 15) as u8;
                out.extend((0..16).map(|j| q(b[j]) | (q(b[j + 16]) << 4)));
            }
        }
        WeightType::Q4_1 => {
            for b in x.chunks(32) {
                let mn = b.iter().cloned().fold(f32::INFINITY, f32::min);
                let mx = b.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let d = (mx - mn) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend_from_slice(&f16::from_f32(mn).to_le_bytes());
                let q = |v: f32| (((v - mn) * id + 0.5) as i32).clamp(0, 15) as u8;
                out.extend((0..16).map(|j| q(b[j]) | (q(b[j + 16]) << 4)));
            }
        }
    }
    out
}
