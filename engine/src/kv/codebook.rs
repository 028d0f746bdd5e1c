//! Lloyd–Max scalar quantizers for N(0, 1): the AURA codebooks.
//!
//! After the AURA rotation every coordinate of a unit-scaled row is ≈ N(0, 1), so one
//! codebook per bit width serves every layer and head. The tables are computed by the
//! engine (f64, deterministic) rather than pasted in; tests pin them to published values.
//!
//! Solver: the Lloyd–Max optimality conditions (boundaries are midpoints of adjacent
//! centroids; each centroid is the conditional mean of its cell) are solved by Newton's
//! method on the fixed-point residual `F(c) = T(c) − c`, where `T` is one Lloyd step. `T`'s
//! Jacobian is tridiagonal (cell i depends on c[i−1], c[i], c[i+1]), so each Newton step is
//! one Thomas solve. Plain Lloyd iteration is correct too but contracts with a rate near
//! 1 − O(1/N²): for 256 levels it needs ~10⁶ sweeps to reach 1e-12; Newton needs < 20.
use crate::error::{Error, Result};
use std::sync::OnceLock;

/// A scalar quantizer for N(0, 1) with `2^bits` levels.
#[derive(Clone, Debug, PartialEq)]
pub struct Codebook {
    pub bits: u32,
    /// `2^bits` reconstruction levels, strictly ascending, symmetric (c[n−1−i] = −c[i]).
    pub centroids: Vec<f32>,
    /// `2^bits − 1` decision thresholds, midpoints of adjacent centroids (middle one 0.0).
    pub boundaries: Vec<f32>,
}

/// Largest bit width `lloyd_max` accepts (the engine uses at most 8).
pub const MAX_BITS: u32 = 12;
/// Newton stops when the largest centroid update is below this (f64, absolute).
const NEWTON_TOL: f64 = 1e-14;
/// Newton iteration cap; measured: every width 1..=12 converges in well under this.
const NEWTON_MAX_ITERS: usize = 100;

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Standard normal density; 0 at ±∞.
fn pdf(x: f64) -> f64 {
    if x.is_infinite() {
        0.0
    } else {
        INV_SQRT_2PI * libm::exp(-0.5 * x * x)
    }
}

/// Upper tail Q(x) = P(X > x), accurate far into both tails.
fn upper_tail(x: f64) -> f64 {
    0.5 * libm::erfc(x * std::f64::consts::FRAC_1_SQRT_2)
}

/// P(a < X < b) for a < b, computed from the tail that avoids cancellation.
fn cell_prob(a: f64, b: f64) -> f64 {
    if a >= 0.0 {
        upper_tail(a) - upper_tail(b)
    } else if b <= 0.0 {
        upper_tail(-b) - upper_tail(-a)
    } else {
        1.0 - upper_tail(b) - upper_tail(-a)
    }
}

/// φ(a) − φ(b) = ∫_a^b x φ(x) dx, via expm1 so narrow cells keep full precision.
fn pdf_diff(a: f64, b: f64) -> f64 {
    match (a.is_infinite(), b.is_infinite()) {
        (true, true) => 0.0,
        (true, false) => -pdf(b),
        (false, true) => pdf(a),
        (false, false) => -pdf(a) * libm::expm1(-0.5 * (b - a) * (b + a)),
    }
}

/// Conditional mean E[X | a < X < b] and the cell probability.
fn cell_mean(a: f64, b: f64) -> (f64, f64) {
    let p = cell_prob(a, b);
    (pdf_diff(a, b) / p, p)
}

/// Inverse CDF by bisection (only used for the starting point; 200 halvings of [−40, 40]
/// reach f64 resolution).
fn inv_cdf(p: f64) -> f64 {
    let (mut lo, mut hi) = (-40.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if upper_tail(-mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Cell edges for centroids `c`: (−∞, b_0, …, b_{n−2}, +∞) with b_i the midpoints.
fn edges(c: &[f64]) -> Vec<f64> {
    let mut e = Vec::with_capacity(c.len() + 1);
    e.push(f64::NEG_INFINITY);
    e.extend(c.windows(2).map(|w| 0.5 * (w[0] + w[1])));
    e.push(f64::INFINITY);
    e
}

/// One Lloyd step: the conditional mean of every cell.
pub(crate) fn lloyd_step(c: &[f64]) -> Vec<f64> {
    let e = edges(c);
    (0..c.len()).map(|i| cell_mean(e[i], e[i + 1]).0).collect()
}

/// One damped Newton step on F(c) = T(c) − c. Returns the new centroids, or None when no
/// step length keeps the centroids ordered and reduces the residual.
fn newton_step(c: &[f64]) -> Option<Vec<f64>> {
    let n = c.len();
    let e = edges(c);
    let (mut lower, mut diag, mut upper, mut rhs) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for i in 0..n {
        let (a, b) = (e[i], e[i + 1]);
        let (m, p) = cell_mean(a, b);
        // ∂m/∂a = φ(a)(m − a)/P, ∂m/∂b = φ(b)(b − m)/P; each edge moves by half a centroid step.
        let da = if a.is_infinite() { 0.0 } else { pdf(a) * (m - a) / p };
        let db = if b.is_infinite() { 0.0 } else { pdf(b) * (b - m) / p };
        lower[i] = 0.5 * da;
        upper[i] = 0.5 * db;
        diag[i] = 0.5 * (da + db) - 1.0;
        rhs[i] = -(m - c[i]);
    }
    // Thomas algorithm (the system is diagonally dominant: da + db < 2 for log-concave φ).
    for i in 1..n {
        let w = lower[i] / diag[i - 1];
        diag[i] -= w * upper[i - 1];
        rhs[i] -= w * rhs[i - 1];
    }
    let mut delta = vec![0.0; n];
    delta[n - 1] = rhs[n - 1] / diag[n - 1];
    for i in (0..n - 1).rev() {
        delta[i] = (rhs[i] - upper[i] * delta[i + 1]) / diag[i];
    }
    let residual = |c: &[f64]| lloyd_step(c).iter().zip(c).map(|(t, c)| (t - c).abs()).fold(0.0, f64::max);
    let r0 = residual(c);
    let mut step = 1.0;
    for _ in 0..40 {
        let next: Vec<f64> = c.iter().zip(&delta).map(|(c, d)| c + step * d).collect();
        if next.windows(2).all(|w| w[0] < w[1]) && residual(&next) <= r0 {
            return Some(next);
        }
        step *= 0.5;
    }
    None
}

/// Lloyd–Max centroids in f64 for `2^bits` levels (ascending, exactly symmetric).
pub(crate) fn lloyd_max_f64(bits: u32) -> Vec<f64> {
    let n = 1usize << bits;
    // Start from the high-resolution optimum: point density ∝ φ^{1/3}, i.e. quantiles of
    // N(0, 3). Newton converges from there for every width measured (1..=12 bits).
    let mut c: Vec<f64> = (0..n).map(|i| 3f64.sqrt() * inv_cdf((i as f64 + 0.5) / n as f64)).collect();
    for _ in 0..NEWTON_MAX_ITERS {
        let next = match newton_step(&c) {
            Some(next) => next,
            None => lloyd_step(&c), // safeguard: a plain Lloyd step never diverges
        };
        let change = next.iter().zip(&c).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        c = next;
        if change < NEWTON_TOL {
            break;
        }
    }
    // Symmetric by construction: average each mirrored pair.
    for i in 0..n / 2 {
        let v = 0.5 * (c[n - 1 - i] - c[i]);
        c[i] = -v;
        c[n - 1 - i] = v;
    }
    c
}

/// Computes the Lloyd–Max codebook for N(0, 1) with `2^bits` levels.
///
/// Panics if `bits` is outside `1..=MAX_BITS` (a programming error: callers validate the
/// width through `KvScheme::parse` or `try_codebook`).
pub fn lloyd_max(bits: u32) -> Codebook {
    assert!((1..=MAX_BITS).contains(&bits), "lloyd_max: bits must be in 1..={MAX_BITS}, got {bits}");
    let c = lloyd_max_f64(bits);
    let n = c.len();
    let mut boundaries: Vec<f32> = c.windows(2).map(|w| (0.5 * (w[0] + w[1])) as f32).collect();
    boundaries[n / 2 - 1] = 0.0; // exact by symmetry; pin it against rounding
    Codebook { bits, centroids: c.iter().map(|&x| x as f32).collect(), boundaries }
}

/// The cached codebook for a width the engine uses (2, 3, 4 or 8 bits).
pub fn try_codebook(bits: u32) -> Result<&'static Codebook> {
    static CACHE: [OnceLock<Codebook>; 4] = [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match bits {
        2 => 0,
        3 => 1,
        4 => 2,
        8 => 3,
        _ => return Err(Error::InvalidArgument(format!("AURA codebook bits must be 2, 3, 4 or 8, got {bits}"))),
    };
    Ok(CACHE[slot].get_or_init(|| lloyd_max(bits)))
}

/// The cached codebook for `bits` ∈ {2, 3, 4, 8}.
///
/// Panics for any other width: that is a programming error, since every `KvScheme` that
/// parses has valid widths. Use `try_codebook` where the width is not yet validated.
pub fn codebook(bits: u32) -> &'static Codebook {
    match try_codebook(bits) {
        Ok(cb) => cb,
        Err(e) => panic!("{e}"),
    }
}

/// Index of the cell holding `u`: the number of boundaries strictly below `u`.
/// (NaN compares below nothing, so it maps to 0.) The kernels count the same way.
pub fn quantize(cb: &Codebook, u: f32) -> u32 {
    cb.boundaries.partition_point(|&b| b < u) as u32
}

/// Mean squared error E[(X − Q(X))²] for X ~ N(0, 1) of the quantizer given by the f32
/// tables (cells from `boundaries`, reconstruction at `centroids`), in f64.
pub fn mse(cb: &Codebook) -> f64 {
    let n = cb.centroids.len();
    let mut e = vec![f64::NEG_INFINITY];
    e.extend(cb.boundaries.iter().map(|&b| b as f64));
    e.push(f64::INFINITY);
    (0..n)
        .map(|i| {
            let (a, b, c) = (e[i], e[i + 1], cb.centroids[i] as f64);
            let p = cell_prob(a, b);
            let first = pdf_diff(a, b); // ∫ x φ
                                        // ∫ x² φ over (a, b) = P + aφ(a) − bφ(b) (the x·φ terms vanish at ±∞).
            let xa = if a.is_infinite() { 0.0 } else { a * pdf(a) };
            let xb = if b.is_infinite() { 0.0 } else { b * pdf(b) };
            let second = p + xa - xb;
            second - 2.0 * c * first + c * c * p
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_widths_match_known_values() {
        let c2 = &codebook(2).centroids;
        for (got, want) in c2.iter().zip([-1.5104, -0.4528, 0.4528, 1.5104]) {
            assert!((got - want).abs() < 1e-3, "2-bit {got} vs {want}");
        }
        let c3 = &codebook(3).centroids;
        let want3 = [-2.1520, -1.3439, -0.7560, -0.2451, 0.2451, 0.7560, 1.3439, 2.1520];
        for (got, want) in c3.iter().zip(want3) {
            assert!((got - want).abs() < 1e-3, "3-bit {got} vs {want}");
        }
        // 1 bit: ±√(2/π).
        let c1 = lloyd_max(1);
        assert!((c1.centroids[1] as f64 - (2.0 / std::f64::consts::PI).sqrt()).abs() < 1e-7);
    }

    #[test]
    fn is_a_lloyd_fixed_point_and_symmetric() {
        for bits in [1, 2, 3, 4, 5, 6, 7, 8] {
            let c = lloyd_max_f64(bits);
            let t = lloyd_step(&c);
            let change = t.iter().zip(&c).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(change < 1e-12, "bits {bits}: Lloyd step moves centroids by {change:e}");
            let cb = lloyd_max(bits);
            let n = cb.centroids.len();
            assert_eq!(cb.boundaries.len(), n - 1);
            for i in 0..n {
                assert_eq!(cb.centroids[i], -cb.centroids[n - 1 - i]);
            }
            assert!(cb.centroids.windows(2).all(|w| w[0] < w[1]));
            assert!(cb.boundaries.windows(2).all(|w| w[0] < w[1]));
            for i in 0..n - 1 {
                assert!(cb.centroids[i] < cb.boundaries[i] && cb.boundaries[i] < cb.centroids[i + 1]);
            }
        }
    }

    #[test]
    fn quantize_counts_boundaries() {
        let cb = codebook(2);
        assert_eq!(quantize(cb, -10.0), 0);
        assert_eq!(quantize(cb, 0.0), 1); // 0 is a boundary: not strictly below
        assert_eq!(quantize(cb, 1e-7), 2);
        assert_eq!(quantize(cb, 10.0), 3);
        assert_eq!(quantize(cb, f32::INFINITY), 3);
        assert_eq!(quantize(cb, f32::NAN), 0);
        for (i, &c) in cb.centroids.iter().enumerate() {
            assert_eq!(quantize(cb, c), i as u32);
        }
    }

    #[test]
    fn bad_widths_are_errors() {
        assert!(try_codebook(5).is_err());
        assert!(try_codebook(0).is_err());
        assert!(try_codebook(8).is_ok());
    }
}
