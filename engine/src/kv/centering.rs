//! Key centering's score term over a 64-row attention tile, with the slow RoPE pairs
//! fitted by one polynomial.
//!
//! With key centering the cache holds R_pos (k − μ), and every score adds back
//! q · R_pos μ = Σ_j cos(pos θ_j) A_j + sin(pos θ_j) B_j over the RoPE pairs j (A_j, B_j:
//! products of q's and μ's pair j). Over one tile (pos = t0 + o, o = 0 .. 63) turned to
//! the tile's centre c = t0 + 32 that is Σ_j cos(x θ_j) A'_j + sin(x θ_j) B'_j with
//! x = o − 32 ∈ [−32, 31]. A pair whose angle moves little over a tile (x θ_j small, the
//! high j) is a smooth function of x: cos(x θ_j) and sin(x θ_j) are fitted (least squares
//! over the tile's 64 offsets, f64) by even and odd polynomials of degree 7 in u = x / 32,
//! so all those pairs together cost eight coefficients per (query head, tile) and a
//! degree-7 Horner per row instead of four multiply-adds per pair and row. A pair is fitted
//! only where the fit is within `FIT_EPS` of its cosine and sine at every offset, the
//! angles' f32 rounding level: the fitted term differs from the exact one by at most
//! FIT_EPS · Σ (|A'_j| + |B'_j|) over the fitted pairs, far below what the 8-bit codebooks
//! leave (the kernels' tolerances are unchanged).
//! SmolLM2 (θ = 100000, head_dim 64): pairs 10 .. 31 are fitted, 10 stay exact.
//!
//! The GPU's copy (`reference::ops::rope_table_gpu`, after the table's transposed rows):
//! per RoPE pair j, two vec4s (c0, s1, c2, s3) and (c4, s5, c6, s7): coefficient k of u^k
//! multiplies A'_j when k is even (from the cosine's fit) and B'_j when odd (the sine's).
//! attn_decode_aura sums each fitted pair's coefficients into eight per query head in its
//! prologue (split-K blocks of exactly one tile: `kernels::aura_centering_cx`).

/// Zero the mean's first `quads` vec4s of RoPE pairs (pairs 0 .. 2 quads, the fastest) in
/// every head of `mu` ([heads][head_dim], pre-RoPE): adjacent pairs (2j, 2j + 1) or, with
/// `halves`, (j, j + head_dim / 2). `Options::aura_centering_slow_pairs`.
pub fn keep_slow_pairs(mu: &mut [f32], head_dim: usize, quads: usize, halves: bool) {
    for head in mu.chunks_mut(head_dim) {
        for j in 0..(2 * quads).min(head_dim / 2) {
            let (a, b) = if halves { (j, j + head_dim / 2) } else { (2 * j, 2 * j + 1) };
            head[a] = 0.0;
            head[b] = 0.0;
        }
    }
}

/// The tile the fit spans: attn_decode_aura's workgroup (`kernels::WG_AURA`).
pub const FIT_TILE: usize = 64;
/// Largest error of a fitted pair's cosine or sine at any offset of the tile (4 f32 ulps
/// at 1.0).
pub const FIT_EPS: f64 = 5e-7;
/// Coefficients per fitted pair (degree 7: eight, two vec4s).
pub const FIT_COEFFS: usize = 8;

/// The fit for one model's RoPE (θ, head_dim): per pair j, its eight coefficients (f32, as
/// the GPU holds them) and its largest error over the tile; `exact_quads`: the RoPE pairs
/// scored exactly, in vec4s of two pairs (pairs 0 .. 2 exact_quads − 1); the rest are
/// fitted. exact_quads = head_dim / 4 fits none.
#[derive(Clone, Debug)]
pub struct CenteringFit {
    pub coeffs: Vec<[f32; FIT_COEFFS]>,
    pub errors: Vec<f64>,
    pub exact_quads: usize,
}

/// RoPE frequency of pair j (`reference::ops::rope_table` builds the table from it).
pub fn rope_freq(theta: f32, head_dim: usize, j: usize) -> f64 {
    (theta as f64).powf(-2.0 * j as f64 / head_dim as f64)
}

/// Offset x (from the tile's centre) of row o of a tile, and u = x / 32.
fn tile_u(o: usize) -> f64 {
    let h = (FIT_TILE / 2) as f64;
    (o as f64 - h) / h
}

/// Least squares of f over the tile's offsets in the basis u^k, k in `ks`: the normal
/// equations (at most 4 x 4) by Gaussian elimination with partial pivoting.
fn lsq(ks: &[usize; 4], f: impl Fn(f64) -> f64) -> [f64; 4] {
    let mut a = [[0f64; 5]; 4];
    for o in 0..FIT_TILE {
        let u = tile_u(o);
        let b: Vec<f64> = ks.iter().map(|&k| u.powi(k as i32)).collect();
        let y = f(u);
        for r in 0..4 {
            for c in 0..4 {
                a[r][c] += b[r] * b[c];
            }
            a[r][4] += b[r] * y;
        }
    }
    for c in 0..4 {
        let p = (c..4).max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs())).unwrap();
        a.swap(c, p);
        for r in 0..4 {
            if r != c {
                let m = a[r][c] / a[c][c];
                for k in c..5 {
                    a[r][k] -= m * a[c][k];
                }
            }
        }
    }
    [0, 1, 2, 3].map(|r| a[r][4] / a[r][r])
}

/// The polynomial of coefficients `w` (u^0 .. u^7, f64) at u: even terms (cosine) and odd
/// terms (sine) apart.
fn eval_parts(w: &[f32; FIT_COEFFS], u: f64) -> (f64, f64) {
    let (mut c, mut s) = (0.0, 0.0);
    for (k, &wk) in w.iter().enumerate() {
        let t = wk as f64 * u.powi(k as i32);
        if k % 2 == 0 {
            c += t;
        } else {
            s += t;
        }
    }
    (c, s)
}

/// The fit for RoPE base `theta` and `head_dim` (even).
pub fn centering_fit(theta: f32, head_dim: usize) -> CenteringFit {
    let pairs = head_dim / 2;
    let h = (FIT_TILE / 2) as f64;
    let mut coeffs = Vec::with_capacity(pairs);
    let mut errors = Vec::with_capacity(pairs);
    for j in 0..pairs {
        let w = rope_freq(theta, head_dim, j) * h;
        let c = lsq(&[0, 2, 4, 6], |u| (u * w).cos());
        let s = lsq(&[1, 3, 5, 7], |u| (u * w).sin());
        let co: [f32; FIT_COEFFS] = std::array::from_fn(|k| if k % 2 == 0 { c[k / 2] } else { s[k / 2] } as f32);
        let err = (0..FIT_TILE)
            .map(|o| {
                let u = tile_u(o);
                let (pc, ps) = eval_parts(&co, u);
                (pc - (u * w).cos()).abs().max((ps - (u * w).sin()).abs())
            })
            .fold(0.0, f64::max);
        coeffs.push(co);
        errors.push(err);
    }
    // The first vec4 of pairs from which every pair fits.
    let quads = pairs / 2;
    let exact_quads = (0..=quads).find(|&q| errors[2 * q..].iter().all(|&e| e <= FIT_EPS)).unwrap_or(quads);
    CenteringFit { coeffs, errors, exact_quads }
}

/// CPU twin of attn_decode_aura's centering term over one tile starting at `t0` (one query
/// head): `ab` the coefficients (A_j, B_j) per pair, `table` the RoPE table (positions up
/// to t0 + 32 at least), the first `exact_quads` vec4s of pairs exact from the offsets'
/// angles, the rest through the fit turned to the tile's centre. Returns the term at each
/// of the tile's 64 rows.
pub fn tile_term(ab: &[[f32; 2]], table: &[[f32; 2]], t0: usize, fit: &CenteringFit, exact_quads: usize) -> Vec<f32> {
    let pairs = ab.len();
    let row = |pos: usize, j: usize| table[pos * pairs + j];
    let turn = |e: [f32; 2], cs: [f32; 2]| [cs[0] * e[0] + cs[1] * e[1], cs[0] * e[1] - cs[1] * e[0]];
    let at_start: Vec<[f32; 2]> = (0..pairs).map(|j| turn(ab[j], row(t0, j))).collect();
    // The fitted pairs' coefficients summed, turned on by 32 rows (the offset's angles).
    let mut poly = [0f32; FIT_COEFFS];
    for j in 2 * exact_quads..pairs {
        let [a, b] = turn(at_start[j], row(FIT_TILE / 2, j));
        for (k, p) in poly.iter_mut().enumerate() {
            *p += fit.coeffs[j][k] * if k % 2 == 0 { a } else { b };
        }
    }
    (0..FIT_TILE)
        .map(|o| {
            let exact: f32 = (0..2 * exact_quads)
                .map(|j| {
                    let [c, s] = row(o, j);
                    c * at_start[j][0] + s * at_start[j][1]
                })
                .sum();
            let u = tile_u(o) as f32;
            exact + poly.iter().rev().fold(0.0, |acc, &p| acc * u + p)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::ops::rope_table;

    /// keep_slow_pairs zeroes exactly the first 2 quads pairs of each head, by convention.
    #[test]
    fn keep_slow_pairs_zeroes_the_fast_pairs() {
        let hd = 16;
        for halves in [false, true] {
            let mut mu: Vec<f32> = (1..=2 * hd).map(|x| x as f32).collect();
            keep_slow_pairs(&mut mu, hd, 1, halves);
            for (h, head) in mu.chunks(hd).enumerate() {
                for (i, &x) in head.iter().enumerate() {
                    let pair = if halves { i % (hd / 2) } else { i / 2 };
                    let want = if pair < 2 { 0.0 } else { (h * hd + i + 1) as f32 };
                    assert_eq!(x, want, "halves {halves} head {h} dim {i}");
                }
            }
        }
        let mut mu = vec![1.0; 8];
        keep_slow_pairs(&mut mu, 8, 0, false);
        assert!(mu.iter().all(|&x| x == 1.0), "no quads: unchanged");
    }

    /// SmolLM2's RoPE (θ 1e5, head_dim 64) fits pairs 10 .. 31; Llama's usual 1e4 and
    /// larger head dims fit fewer or more, never the fastest pairs.
    #[test]
    fn fitted_pairs_by_model() {
        assert_eq!(centering_fit(100000.0, 64).exact_quads, 5);
        assert_eq!(centering_fit(10000.0, 64).exact_quads, 7);
        for (theta, hd) in [(10000.0, 128), (500000.0, 128), (10000.0, 256), (1e6, 256)] {
            let f = centering_fit(theta, hd);
            assert!(f.exact_quads >= 2 && f.exact_quads < hd / 4, "θ {theta} hd {hd}: {}", f.exact_quads);
            assert!(f.errors[2 * f.exact_quads..].iter().all(|&e| e <= FIT_EPS));
            // Pair 0 turns a full radian per row: never fitted.
            assert!(f.errors[0] > 1e-2);
        }
    }

    /// The tile's term through the fit equals the exact sum over every pair (f64) within
    /// the bound the fit states, at tiles near the start, deep, and at random coefficients.
    #[test]
    fn tile_term_matches_the_exact_sum() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        for (theta, hd) in [(100000.0f32, 64usize), (10000.0, 64), (10000.0, 128), (500000.0, 128)] {
            let fit = centering_fit(theta, hd);
            let table = rope_table(16384 + 64, hd, theta);
            for t0 in [0usize, 64, 4096, 16320] {
                let ab: Vec<[f32; 2]> = (0..hd / 2).map(|_| [rnd() as f32 * 3.0, rnd() as f32 * 3.0]).collect();
                let mag: f64 = ab.iter().map(|e| (e[0].abs() + e[1].abs()) as f64).sum();
                for quads in [fit.exact_quads, hd / 4] {
                    let got = tile_term(&ab, &table, t0, &fit, quads);
                    for (o, g) in got.iter().enumerate() {
                        let want: f64 = (0..hd / 2)
                            .map(|j| {
                                let a = (t0 + o) as f64 * rope_freq(theta, hd, j);
                                a.cos() * ab[j][0] as f64 + a.sin() * ab[j][1] as f64
                            })
                            .sum();
                        // The fit's bound plus f32 rounding of the table and the sums.
                        let tol = FIT_EPS * mag + 2e-6 * mag;
                        assert!(
                            (*g as f64 - want).abs() <= tol,
                            "θ {theta} hd {hd} t0 {t0} o {o} quads {quads}: {g} vs {want} (tol {tol})"
                        );
                    }
                }
            }
        }
    }
}
