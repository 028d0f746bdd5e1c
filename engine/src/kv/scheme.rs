//! `KvScheme`: how the KV cache stores K and V (dense, or AURA with per-K/V bit widths),
//! its name grammar, and its memory cost per token.
use crate::error::{Error, Result};

/// Bit widths an AURA cache may use for K or V (each has a Lloyd–Max codebook).
pub const AURA_BITS: [u8; 4] = [2, 3, 4, 8];

/// Storage scheme of the KV cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvScheme {
    /// Dense rows: f16, or f32 on devices without shader-f16.
    F16,
    /// AURA compressed rows: rotated, Lloyd–Max quantized indices + one γ per row.
    Aura { k_bits: u8, v_bits: u8 },
}

/// u32 words holding one packed row of `head_dim` indices of `bits` bits each.
pub fn row_words(head_dim: usize, bits: u32) -> usize {
    (head_dim * bits as usize).div_ceil(32)
}

const ACCEPTED: &str = "`f16`, `dense`, or `aura{K}v{V}` with K, V in {2, 3, 4, 8} (e.g. `aura4v4`, `aura8v2`)";

fn parse_bits(s: &str) -> Option<u8> {
    // Exact spellings only: no signs, spaces or leading zeros, so names stay canonical.
    match s {
        "2" => Some(2),
        "3" => Some(3),
        "4" => Some(4),
        "8" => Some(8),
        _ => None,
    }
}

impl KvScheme {
    /// Every scheme the CLI and benchmarks offer, densest first.
    pub const PRESETS: [KvScheme; 8] = [
        KvScheme::F16,
        KvScheme::Aura { k_bits: 8, v_bits: 8 },
        KvScheme::Aura { k_bits: 8, v_bits: 4 },
        KvScheme::Aura { k_bits: 8, v_bits: 2 },
        KvScheme::Aura { k_bits: 4, v_bits: 4 },
        KvScheme::Aura { k_bits: 4, v_bits: 2 },
        KvScheme::Aura { k_bits: 3, v_bits: 3 },
        KvScheme::Aura { k_bits: 2, v_bits: 2 },
    ];

    /// Parses `f16` | `dense` | `aura{K}v{V}` (K, V ∈ {2, 3, 4, 8}).
    pub fn parse(s: &str) -> Result<KvScheme> {
        let bad = || Error::InvalidArgument(format!("unknown KV scheme `{s}`: expected {ACCEPTED}"));
        match s {
            "f16" | "dense" => return Ok(KvScheme::F16),
            _ => {}
        }
        let rest = s.strip_prefix("aura").ok_or_else(bad)?;
        let (k, v) = rest.split_once('v').ok_or_else(bad)?;
        match (parse_bits(k), parse_bits(v)) {
            (Some(k_bits), Some(v_bits)) => Ok(KvScheme::Aura { k_bits, v_bits }),
            _ => Err(bad()),
        }
    }

    /// Canonical name: `f16`, `aura8v4`. `parse(name())` round-trips.
    pub fn name(&self) -> String {
        match self {
            KvScheme::F16 => "f16".to_string(),
            KvScheme::Aura { k_bits, v_bits } => format!("aura{k_bits}v{v_bits}"),
        }
    }

    pub fn is_compressed(&self) -> bool {
        matches!(self, KvScheme::Aura { .. })
    }

    /// Auto-asymmetric K (opt-in only): K -> 8 bits when the GQA group (query heads per KV
    /// head) is >= 6, since one K row then feeds that many scores. Dense is unchanged.
    pub fn with_auto_asymmetric_k(self, group: usize) -> KvScheme {
        match self {
            KvScheme::Aura { v_bits, .. } if group >= 6 => KvScheme::Aura { k_bits: 8, v_bits },
            other => other,
        }
    }

    /// Bytes per token for all layers, K and V.
    /// Dense: `2 · n_layers · n_kv · hd · elem` (elem 2 with f16, else 4).
    /// AURA: `n_layers · n_kv · (row_words(hd, kb)·4 + γ + row_words(hd, vb)·4 + γ)`
    /// (γ 2 bytes with f16, else 4).
    pub fn bytes_per_token(&self, n_layers: usize, n_kv_heads: usize, head_dim: usize, f16: bool) -> u64 {
        let elem: u64 = if f16 { 2 } else { 4 };
        let heads = n_layers as u64 * n_kv_heads as u64;
        match *self {
            KvScheme::F16 => 2 * heads * head_dim as u64 * elem,
            KvScheme::Aura { k_bits, v_bits } => {
                let k = row_words(head_dim, k_bits as u32) as u64 * 4 + elem;
                let v = row_words(head_dim, v_bits as u32) as u64 * 4 + elem;
                heads * (k + v)
            }
        }
    }

    /// Bits per stored K/V value including γ, averaged over K and V:
    /// `(row_words·32 + γ bits) / hd` per side. Dense: 16 (f16) or 32.
    pub fn bits_per_value(&self, head_dim: usize, f16: bool) -> f64 {
        let elem_bits = if f16 { 16.0 } else { 32.0 };
        match *self {
            KvScheme::F16 => elem_bits,
            KvScheme::Aura { k_bits, v_bits } => {
                let side = |b: u8| (row_words(head_dim, b as u32) as f64 * 32.0 + elem_bits) / head_dim as f64;
                (side(k_bits) + side(v_bits)) / 2.0
            }
        }
    }
}

impl std::fmt::Display for KvScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::str::FromStr for KvScheme {
    type Err = Error;
    fn from_str(s: &str) -> Result<KvScheme> {
        KvScheme::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_name_round_trip() {
        for s in KvScheme::PRESETS {
            assert_eq!(KvScheme::parse(&s.name()).unwrap(), s);
        }
        assert_eq!(KvScheme::parse("dense").unwrap(), KvScheme::F16);
        assert_eq!(KvScheme::parse("aura3v8").unwrap(), KvScheme::Aura { k_bits: 3, v_bits: 8 });
        for bad in
            ["aura5v4", "aura4", "q8", "", "aura", "aurav", "aura4v", "aura+4v4", "aura04v4", "AURA4V4", "aura4v4 "]
        {
            assert!(matches!(KvScheme::parse(bad), Err(Error::InvalidArgument(_))), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(row_words(64, 3), 6);
        assert_eq!(row_words(128, 3), 12);
        assert_eq!(KvScheme::F16.bytes_per_token(30, 3, 64, true), 23040);
        // aura4v4, hd 64: 8 words = 32 B + 2 B γ per side.
        assert_eq!(KvScheme::Aura { k_bits: 4, v_bits: 4 }.bytes_per_token(30, 3, 64, true), 90 * 68);
        assert!((KvScheme::Aura { k_bits: 4, v_bits: 4 }.bits_per_value(64, true) - 4.25).abs() < 1e-12);
        assert_eq!(
            KvScheme::Aura { k_bits: 4, v_bits: 2 }.with_auto_asymmetric_k(6),
            KvScheme::Aura { k_bits: 8, v_bits: 2 }
        );
        assert_eq!(
            KvScheme::Aura { k_bits: 4, v_bits: 2 }.with_auto_asymmetric_k(5),
            KvScheme::Aura { k_bits: 4, v_bits: 2 }
        );
        assert_eq!(KvScheme::F16.with_auto_asymmetric_k(8), KvScheme::F16);
    }
}
