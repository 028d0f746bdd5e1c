//! CPU twins of the WGSL kernels, in f32.
use half::f16;

use crate::model::config::RopeStyle;

/// embed.wgsl: one dequantized row of the table.
pub fn embed(table: &[f32], hidden: usize, token: u32) -> Vec<f32> {
    table[token as usize * hidden..(token as usize + 1) * hidden].to_vec()
}

/// rmsnorm.wgsl
pub fn rmsnorm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let ss: f32 = x.iter().map(|v| v * v).sum();
    let r = 1.0 / (ss / x.len() as f32 + eps).sqrt();
    x.iter().zip(w).map(|(v, w)| v * r * w).collect()
}

/// matvec.wgsl: y = W x, W row-major [rows][k].
pub fn matvec(w: &[f32], x: &[f32]) -> Vec<f32> {
    let k = x.len();
    w.chunks_exact(k).map(|row| dot(row, x)).collect()
}

/// Dot product with 8 independent partial sums (lets the compiler vectorize).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The host cos/sin table the rope_kv kernel reads: [positions][head_dim/2] of (cos, sin).
pub fn rope_table(positions: usize, head_dim: usize, theta: f32) -> Vec<[f32; 2]> {
    let half = head_dim / 2;
    let mut t = Vec::with_capacity(positions * half);
    for pos in 0..positions {
        for i in 0..half {
            let a = pos as f64 * crate::kv::centering::rope_freq(theta, head_dim, i);
            t.push([a.cos() as f32, a.sin() as f32]);
        }
    }
    t
}

/// The RoPE table as a session binds it: `rope_table(positions, ..)`, then its first
/// `tile` rows again, transposed two pairs at a time ([head_dim / 4][tile][2]: pairs 2jp and
/// 2jp + 1 of offset o at (jp tile + o) 2), so that AURA attention's key centering reads
/// the angles of a tile's offsets coalesced (one 16-byte load per thread and two pairs,
/// consecutive across the threads) instead of a 256-byte row per thread; then key
/// centering's fit (`kv::centering`) for a tile of `kv::centering::FIT_TILE` rows: per RoPE
/// pair its eight coefficients (two vec4s) when `tile` is that tile.
pub fn rope_table_gpu(positions: usize, head_dim: usize, theta: f32, tile: usize) -> Vec<[f32; 2]> {
    let mut t = rope_table(positions, head_dim, theta);
    let first = rope_table(tile, head_dim, theta);
    let half = head_dim / 2;
    for jp in 0..half / 2 {
        for o in 0..tile {
            t.extend_from_slice(&first[o * half + 2 * jp..o * half + 2 * jp + 2]);
        }
    }
    if tile == crate::kv::centering::FIT_TILE {
        for c in crate::kv::centering::centering_fit(theta, head_dim).coeffs {
            t.extend(c.chunks(2).map(|w| [w[0], w[1]]));
        }
    }
    t
}

/// rope_kv.wgsl's rotation of one head vector in place.
pub fn rope(x: &mut [f32], pos: usize, theta: f32, style: RopeStyle) {
    let hd = x.len();
    let half = hd / 2;
    for i in 0..half {
        let freq = (theta as f64).powf(-2.0 * i as f64 / hd as f64);
        let a = pos as f64 * freq;
        let (c, s) = (a.cos() as f32, a.sin() as f32);
        let (i0, i1) = match style {
            RopeStyle::Adjacent => (2 * i, 2 * i + 1),
            RopeStyle::Halves => (i, i + half),
        };
        let (a0, a1) = (x[i0], x[i1]);
        x[i0] = a0 * c - a1 * s;
        x[i1] = a0 * s + a1 * c;
    }
}

/// Round through f16, as the f16 KV cache stores values.
pub fn round_f16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// attn_decode.wgsl (+ attn_merge): softmax(q·K^T · scale) V for one query head over
/// `kv_len` rows of a cache laid out [capacity][hd] for its kv head.
pub fn attention(q: &[f32], k: &[f32], v: &[f32], hd: usize, kv_len: usize, scale: f32) -> Vec<f32> {
    let scores: Vec<f32> =
        (0..kv_len).map(|t| q.iter().zip(&k[t * hd..(t + 1) * hd]).map(|(a, b)| a * scale * b).sum()).collect();
    let m = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let p: Vec<f32> = scores.iter().map(|s| (s - m).exp()).collect();
    let l: f32 = p.iter().sum();
    let mut o = vec![0f32; hd];
    for t in 0..kv_len {
        for i in 0..hd {
            o[i] += p[t] * v[t * hd + i];
        }
    }
    o.iter_mut().for_each(|x| *x /= l);
    o
}

/// silu_mul.wgsl
pub fn silu_mul(g: &[f32], u: &[f32]) -> Vec<f32> {
    g.iter().zip(u).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect()
}

/// argmax.wgsl: the first index of the largest value (NaN never wins; 0 when nothing
/// exceeds -3.4e38).
pub fn argmax(x: &[f32]) -> u32 {
    let (mut best, mut idx) = (-3.4e38f32, 0u32);
    for (i, &v) in x.iter().enumerate() {
        if v > best {
            (best, idx) = (v, i as u32);
        }
    }
    idx
}

/// matvec_norm.wgsl: y = W rmsnorm(x, nw) over a stacked matrix W (the kernel then splits
/// y's rows into its outputs).
pub fn matvec_norm(w: &[f32], x: &[f32], nw: &[f32], eps: f32) -> Vec<f32> {
    matvec(w, &rmsnorm(x, nw, eps))
}

/// matvec_glu.wgsl: silu(Wg xn) * (Wu xn) with xn = rmsnorm(x, nw) and W = Wg rows | Wu rows.
pub fn matvec_glu(w: &[f32], x: &[f32], nw: &[f32], eps: f32) -> Vec<f32> {
    let y = matvec_norm(w, x, nw, eps);
    let ffn = y.len() / 2;
    silu_mul(&y[..ffn], &y[ffn..])
}

/// Normalized mean squared error ||a-b||^2 / ||b||^2 and max abs error.
pub fn compare(a: &[f32], b: &[f32]) -> (f64, f64) {
    let mut num = 0f64;
    let mut den = 0f64;
    let mut mx = 0f64;
    for (x, y) in a.iter().zip(b) {
        let d = (*x as f64) - (*y as f64);
        num += d * d;
        den += (*y as f64) * (*y as f64);
        mx = mx.max(d.abs());
    }
    (num / den.max(1e-30), mx)
}

/// The output projection as `attn_merge_oproj` folds it into the split-K merge: head h's
/// slice part_h = Wo[:, h hd .. (h + 1) hd] o_h (each row's dot in dim order), then
/// x += sum_h part_h, added in head order. `wo` is [rows][n_heads hd] (rows = x.len()),
/// `o` the heads' attention rows [n_heads][hd].
pub fn oproj_heads(wo: &[f32], o: &[f32], hd: usize, x: &mut [f32]) {
    let (rows, k) = (x.len(), o.len());
    assert_eq!(wo.len(), rows * k);
    let parts: Vec<Vec<f32>> = (0..k / hd)
        .map(|h| (0..rows).map(|r| dot(&wo[r * k + h * hd..][..hd], &o[h * hd..][..hd])).collect())
        .collect();
    for (r, xr) in x.iter_mut().enumerate() {
        let mut a = 0.0f32;
        for p in &parts {
            a += p[r];
        }
        *xr += a;
    }
}
