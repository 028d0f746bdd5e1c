//! The AURA rotation: a seeded random-sign diagonal followed by a normalized Sylvester
//! Walsh–Hadamard transform. Orthonormal, so row norms and dot products are preserved,
//! and it spreads every row's energy evenly so coordinates look ≈ N(0, ‖x‖²/d).

/// Which half of the KV cache a sign vector belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvKind {
    K = 0,
    V = 1,
}

/// Seed tag "AURA" in the high 32 bits; the low bits hold `layer << 1 | kind`.
const SEED_TAG: u64 = 0x4155_5241_0000_0000;

/// One splitmix64 step (Steele, Lea & Flood), wrapping arithmetic.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The ±1 sign vector of length `d` for (`layer`, `kind`): element i is −1 when the top bit
/// of the i-th splitmix64 output is set. The kernels receive this vector; it is not
/// recomputed on the GPU.
pub fn signs(layer: usize, kind: KvKind, d: usize) -> Vec<f32> {
    let mut state = SEED_TAG ^ (((layer as u64) << 1) | kind as u64);
    (0..d).map(|_| if splitmix64(&mut state) >> 63 == 1 { -1.0 } else { 1.0 }).collect()
}

/// In-place unnormalized Sylvester-ordered Walsh–Hadamard transform: butterflies with
/// h = 1, 2, 4, …, pairs (j, j + h) → (a + b, a − b). Panics unless `x.len()` is a power of
/// two (a programming error: head dims are validated when the cache is created).
pub fn fwht(x: &mut [f32]) {
    let d = x.len();
    assert!(d.is_power_of_two(), "fwht: length {d} is not a power of two");
    let mut h = 1;
    while h < d {
        for start in (0..d).step_by(2 * h) {
            for j in start..start + h {
                let (a, b) = (x[j], x[j + h]);
                x[j] = a + b;
                x[j + h] = a - b;
            }
        }
        h *= 2;
    }
}

/// 1/√d in f32, the normalization both directions use.
fn inv_sqrt(d: usize) -> f32 {
    1.0 / (d as f32).sqrt()
}

/// y = (1/√d) · H · (s ⊙ x).
pub fn rotate(x: &[f32], s: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), s.len(), "rotate: row and sign lengths differ");
    let mut y: Vec<f32> = x.iter().zip(s).map(|(x, s)| x * s).collect();
    fwht(&mut y);
    let k = inv_sqrt(y.len());
    y.iter_mut().for_each(|v| *v *= k);
    y
}

/// x = s ⊙ (H · y) / √d, the exact inverse of `rotate` (H² = d·I, s² = 1).
pub fn unrotate(y: &[f32], s: &[f32]) -> Vec<f32> {
    assert_eq!(y.len(), s.len(), "unrotate: row and sign lengths differ");
    let mut x = y.to_vec();
    fwht(&mut x);
    let k = inv_sqrt(x.len());
    x.iter_mut().zip(s).for_each(|(v, s)| *v = *v * k * s);
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(d: usize, seed: u64) -> Vec<f32> {
        let mut st = seed;
        (0..d).map(|_| (splitmix64(&mut st) >> 40) as f32 / (1u64 << 24) as f32 - 0.5).collect()
    }

    fn norm(x: &[f32]) -> f64 {
        x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt()
    }

    #[test]
    fn splitmix_reference_value() {
        // splitmix64 seeded with 0: first output 0xe220a8397b1dcdaf (published test vector).
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn fwht_small() {
        let mut x = [1.0, 2.0, 3.0, 4.0];
        fwht(&mut x);
        assert_eq!(x, [10.0, -2.0, -4.0, 0.0]);
    }

    #[test]
    fn orthonormal_and_invertible() {
        for d in [64, 128, 256, 512] {
            let s = signs(3, KvKind::V, d);
            for seed in 0..8 {
                let x = row(d, seed * 7 + d as u64);
                let y = rotate(&x, &s);
                assert!((norm(&y) - norm(&x)).abs() <= 1e-6 * norm(&x), "d {d}: norm changed");
                let back = unrotate(&y, &s);
                for (a, b) in back.iter().zip(&x) {
                    assert!((a - b).abs() < 1e-6, "d {d}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn signs_are_seeded_per_layer_and_kind() {
        let d = 512;
        assert_eq!(signs(0, KvKind::K, d), signs(0, KvKind::K, d));
        assert_ne!(signs(0, KvKind::K, d), signs(0, KvKind::V, d));
        assert_ne!(signs(0, KvKind::K, d), signs(1, KvKind::K, d));
        assert_ne!(signs(1, KvKind::V, d), signs(2, KvKind::K, d));
        // A shorter vector is a prefix of a longer one (same stream).
        assert_eq!(signs(5, KvKind::K, 64)[..], signs(5, KvKind::K, 128)[..64]);
        for layer in 0..32 {
            for kind in [KvKind::K, KvKind::V] {
                let s = signs(layer, kind, d);
                assert!(s.iter().all(|&v| v == 1.0 || v == -1.0));
                let neg = s.iter().filter(|&&v| v < 0.0).count();
                // Binomial(512, 1/2): sd ≈ 11.3; ±64 is > 5 sd.
                assert!((192..=320).contains(&neg), "layer {layer} {kind:?}: {neg} negatives");
            }
        }
    }
}
