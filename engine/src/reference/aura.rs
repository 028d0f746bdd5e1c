//! CPU twin of the AURA kernels: encode a head row into packed Lloyd–Max indices + γ,
//! decode it, and run decode attention directly on packed rows in the rotated domain.
//! The format is DESIGN.md "AURA compressed KV cache"; kernels must match it bit for bit.
//!
//! Arithmetic (f32) is fixed here so GPU twins can mirror it:
//! - norm = sqrt of the sum of squares accumulated in index order;
//! - u_i = y_i · (√d / norm) (one multiply by a per-row factor);
//! - γ = norm / sqrt(Σ c[idx_i]²) (index order), rounded through f16 when stored as f16.
//!
//! Indices of values that land within an ulp of a boundary may differ by one between
//! twins that round differently; that moves one coordinate to a neighbouring centroid.
use crate::kv::codebook::{quantize, Codebook};
use crate::kv::rotation::{rotate, unrotate};
use crate::kv::scheme::row_words;

/// One encoded head row: `row_words(d, bits)` packed index words and its γ.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedRow {
    pub words: Vec<u32>,
    pub gamma: f32,
}

/// Mask of the low `bits` bits (bits ≤ 32).
fn mask(bits: u32) -> u32 {
    if bits >= 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    }
}

/// Packs `indices` (each < 2^bits; higher bits are dropped) into `row_words(n, bits)`
/// words: index i occupies bits [i·b, i·b + b) of the row bitstream, and stream bit p is
/// bit p % 32 of word p / 32 (3-bit indices straddle words).
pub fn pack(indices: &[u32], bits: u32) -> Vec<u32> {
    assert!((1..=32).contains(&bits), "pack: bits must be in 1..=32, got {bits}");
    let m = mask(bits);
    let mut words = vec![0u32; row_words(indices.len(), bits)];
    for (i, &v) in indices.iter().enumerate() {
        debug_assert!(v <= m, "pack: index {v} does not fit in {bits} bits");
        let v = v & m;
        let p = i * bits as usize;
        let (w, off) = (p / 32, (p % 32) as u32);
        words[w] |= v << off;
        if off + bits > 32 {
            words[w + 1] |= v >> (32 - off);
        }
    }
    words
}

/// Inverse of `pack`: the first `d` indices of the bitstream in `words`.
pub fn unpack(words: &[u32], bits: u32, d: usize) -> Vec<u32> {
    assert!((1..=32).contains(&bits), "unpack: bits must be in 1..=32, got {bits}");
    assert!(words.len() >= row_words(d, bits), "unpack: {} words hold fewer than {d} indices", words.len());
    let m = mask(bits);
    (0..d)
        .map(|i| {
            let p = i * bits as usize;
            let (w, off) = (p / 32, (p % 32) as u32);
            let mut v = words[w] >> off;
            if off + bits > 32 {
                v |= words[w + 1] << (32 - off);
            }
            v & m
        })
        .collect()
}

/// Sum of squares in index order, then sqrt (the order the kernels use).
fn l2(x: impl Iterator<Item = f32>) -> f32 {
    x.fold(0f32, |acc, v| acc + v * v).sqrt()
}

/// Rounds γ the way it is stored: through f16 when the device stores f16, else unchanged.
pub fn store_gamma(gamma: f32, gamma_f16: bool) -> f32 {
    if gamma_f16 {
        half::f16::from_f32(gamma).to_f32()
    } else {
        gamma
    }
}

/// Encodes one head row (length d, a power of two) with sign vector `signs` and codebook
/// `cb`. A zero or non-finite row is stored as all `quantize(0)` indices with γ = 0, so it
/// decodes to zeros.
pub fn encode_row(x: &[f32], signs: &[f32], cb: &Codebook, gamma_f16: bool) -> EncodedRow {
    let d = x.len();
    let norm = l2(x.iter().copied());
    if !(norm.is_finite() && norm > 0.0) {
        let zero = quantize(cb, 0.0);
        return EncodedRow { words: pack(&vec![zero; d], cb.bits), gamma: 0.0 };
    }
    // 1-2. rotate, scale to unit-variance coordinates.
    let y = rotate(x, signs);
    let scale = (d as f32).sqrt() / norm;
    // 3. quantize against the Lloyd–Max boundaries.
    let idx: Vec<u32> = y.iter().map(|&v| quantize(cb, v * scale)).collect();
    // 4. matched norm: γ·c[idx] has exactly ‖x‖.
    let cnorm = l2(idx.iter().map(|&i| cb.centroids[i as usize]));
    let gamma = store_gamma(norm / cnorm, gamma_f16);
    // 5. bit-pack.
    EncodedRow { words: pack(&idx, cb.bits), gamma }
}

/// The row in the rotated domain: ŷ_i = γ · c[idx_i].
pub fn decode_rotated(words: &[u32], gamma: f32, cb: &Codebook, d: usize) -> Vec<f32> {
    unpack(words, cb.bits, d).iter().map(|&i| gamma * cb.centroids[i as usize]).collect()
}

/// The reconstructed row: unrotate(ŷ).
pub fn decode_row(words: &[u32], gamma: f32, signs: &[f32], cb: &Codebook, d: usize) -> Vec<f32> {
    unrotate(&decode_rotated(words, gamma, cb, d), signs)
}

/// A packed cache for one layer and one of K/V.
/// words: `[n_kv_heads][capacity][row_words(d, bits)]`, gamma: `[n_kv_heads][capacity]`.
/// `capacity` is the row stride; readers loop to `kv_len` ≤ capacity.
#[derive(Clone, Debug)]
pub struct PackedCache {
    pub bits: u32,
    pub d: usize,
    pub capacity: usize,
    pub n_kv_heads: usize,
    pub words: Vec<u32>,
    pub gamma: Vec<f32>,
}

impl PackedCache {
    /// A zeroed cache (every row decodes to index 0 with γ = 0, i.e. zeros).
    pub fn new(bits: u32, d: usize, capacity: usize, n_kv_heads: usize) -> Self {
        let rw = row_words(d, bits);
        PackedCache {
            bits,
            d,
            capacity,
            n_kv_heads,
            words: vec![0; n_kv_heads * capacity * rw],
            gamma: vec![0.0; n_kv_heads * capacity],
        }
    }

    pub fn row_words(&self) -> usize {
        row_words(self.d, self.bits)
    }

    /// Row slot index; panics when out of range (a caller bug, as with slice indexing).
    fn slot(&self, head: usize, pos: usize) -> usize {
        assert!(head < self.n_kv_heads, "PackedCache: head {head} >= n_kv_heads {}", self.n_kv_heads);
        assert!(pos < self.capacity, "PackedCache: pos {pos} >= capacity {}", self.capacity);
        head * self.capacity + pos
    }

    pub fn write(&mut self, head: usize, pos: usize, row: &EncodedRow) {
        let rw = self.row_words();
        assert_eq!(row.words.len(), rw, "PackedCache::write: row has {} words, expected {rw}", row.words.len());
        let s = self.slot(head, pos);
        self.words[s * rw..(s + 1) * rw].copy_from_slice(&row.words);
        self.gamma[s] = row.gamma;
    }

    pub fn row(&self, head: usize, pos: usize) -> (&[u32], f32) {
        let rw = self.row_words();
        let s = self.slot(head, pos);
        (&self.words[s * rw..(s + 1) * rw], self.gamma[s])
    }
}

/// Key centering in the AURA format: a pre-RoPE mean key `mu` (one per layer and KV head)
/// is taken out before encoding, so a K row at position `pos` stores R_pos (k - mu) and a
/// score adds `q . R_pos mu` back — exact, whatever the position. `table` is the RoPE
/// (cos, sin) table `[positions][d/2]` the GPU uses; `halves` picks HF's (j, j + d/2)
/// pairs instead of GGUF's (2j, 2j + 1).
pub struct KeyCentering<'a> {
    pub mu: &'a [f32],
    pub table: &'a [[f32; 2]],
    pub halves: bool,
}

impl KeyCentering<'_> {
    /// R_pos mu, in f32 as the kernels compute it.
    pub fn rotated(&self, pos: usize) -> Vec<f32> {
        let d = self.mu.len();
        let mut out = vec![0f32; d];
        for (j, &[c, s]) in self.table[pos * d / 2..][..d / 2].iter().enumerate() {
            let (ia, ib) = if self.halves { (j, j + d / 2) } else { (2 * j, 2 * j + 1) };
            let (a, b) = (self.mu[ia], self.mu[ib]);
            out[ia] = a * c - b * s;
            out[ib] = a * s + b * c;
        }
        out
    }
}

/// Decode attention of one query head over `kv_len` packed rows of `kv_head`, the way the
/// compressed kernels do it:
/// q̃ = rotate(q, sK) · scale; score_t = γK_t · Σ_i q̃_i · cK[idxK_t,i] (+ scale · q · R_t μ
/// with key centering); p = softmax(scores) (max-subtracted); õ = Σ_t p_t · γV_t · cV[idxV_t]; o = unrotate(õ, sV).
/// `own`: the query's own row (kv_len − 1) exact, as the kernels take it, its (k after
/// RoPE, v) instead of the cache's copy: score = scale · q · k, õ += p · rotate(v, sV)
/// (None: that row from the cache too, as the dequant mirror attends).
/// Reads only rows < kv_len (< kv_len − 1 with `own`). Returns zeros when kv_len is 0.
#[allow(clippy::too_many_arguments)]
pub fn attention_packed(
    q: &[f32],
    k: &PackedCache,
    v: &PackedCache,
    kv_head: usize,
    kv_len: usize,
    sk: &[f32],
    sv: &[f32],
    cbk: &Codebook,
    cbv: &Codebook,
    scale: f32,
    centering: Option<&KeyCentering>,
    own: Option<(&[f32], &[f32])>,
) -> Vec<f32> {
    let d = q.len();
    assert!(k.d == d && v.d == d, "attention_packed: head dims q {d}, K {}, V {}", k.d, v.d);
    assert!(k.bits == cbk.bits && v.bits == cbv.bits, "attention_packed: codebook widths do not match the caches");
    assert!(kv_len <= k.capacity && kv_len <= v.capacity, "attention_packed: kv_len {kv_len} exceeds capacity");
    if let Some((ko, vo)) = own {
        assert!(
            ko.len() == d && vo.len() == d,
            "attention_packed: own row lengths {} / {}, head dim {d}",
            ko.len(),
            vo.len()
        );
    }
    if kv_len == 0 {
        return vec![0.0; d];
    }
    let exact = |t: usize| own.filter(|_| t + 1 == kv_len);
    let qr: Vec<f32> = rotate(q, sk).iter().map(|x| x * scale).collect();
    let scores: Vec<f32> = (0..kv_len)
        .map(|t| {
            if let Some((ko, _)) = exact(t) {
                return ko.iter().zip(q).map(|(k, q)| k * q).sum::<f32>() * scale;
            }
            let (words, gamma) = k.row(kv_head, t);
            let dot: f32 = unpack(words, k.bits, d).iter().zip(&qr).map(|(&i, q)| q * cbk.centroids[i as usize]).sum();
            let shift =
                centering.map_or(0.0, |kc| kc.rotated(t).iter().zip(q).map(|(m, q)| m * q).sum::<f32>() * scale);
            gamma * dot + shift
        })
        .collect();
    let m = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let p: Vec<f32> = scores.iter().map(|s| (s - m).exp()).collect();
    let l: f32 = p.iter().sum();
    let mut o = vec![0f32; d];
    for (t, &pt) in p.iter().enumerate() {
        if let Some((_, vo)) = exact(t) {
            o.iter_mut().zip(rotate(vo, sv)).for_each(|(oi, x)| *oi += pt * x);
            continue;
        }
        let (words, gamma) = v.row(kv_head, t);
        let w = pt * gamma;
        for (oi, &i) in o.iter_mut().zip(&unpack(words, v.bits, d)) {
            *oi += w * cbv.centroids[i as usize];
        }
    }
    o.iter_mut().for_each(|x| *x /= l);
    unrotate(&o, sv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::codebook::codebook;
    use crate::kv::rotation::{signs, KvKind};

    #[test]
    fn pack_three_bit_straddle() {
        // 0..=7 repeating at 3 bits: every 8 indices fill 24 bits with 0xFAC688 and the
        // stream repeats every 3 words; index 10 straddles words 0/1, index 21 words 1/2.
        let idx: Vec<u32> = (0..32).map(|i| i % 8).collect();
        let w = pack(&idx, 3);
        assert_eq!(w, vec![0x88FA_C688, 0xC688_FAC6, 0xFAC6_88FA]);
        assert_eq!(unpack(&w, 3, 32), idx);
    }

    #[test]
    fn zero_and_nonfinite_rows_decode_to_zero() {
        let cb = codebook(4);
        let s = signs(0, KvKind::K, 64);
        for x in [vec![0.0; 64], vec![f32::NAN; 64], vec![f32::INFINITY; 64]] {
            let r = encode_row(&x, &s, cb, true);
            assert_eq!(r.gamma, 0.0);
            assert!(unpack(&r.words, 4, 64).iter().all(|&i| i == quantize(cb, 0.0)));
            assert!(decode_row(&r.words, r.gamma, &s, cb, 64).iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn one_hot_row_round_trips_norm() {
        let cb = codebook(2);
        let s = signs(1, KvKind::V, 128);
        let mut x = vec![0.0f32; 128];
        x[5] = 3.0;
        let r = encode_row(&x, &s, cb, false);
        let y = decode_row(&r.words, r.gamma, &s, cb, 128);
        let n = l2(y.iter().copied());
        assert!((n - 3.0).abs() < 1e-5, "{n}");
        // A one-hot row rotates to ±3/√d everywhere: 2-bit keeps it exactly.
        assert!((y[5] - 3.0).abs() < 1e-5);
    }
}
