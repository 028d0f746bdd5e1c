//! The KV cache format: dense or AURA compressed (see DESIGN.md, "AURA compressed KV cache").
//!
//! - `scheme`: `KvScheme` (names, presets, bytes per token) and `row_words`.
//! - `codebook`: Lloyd–Max N(0, 1) codebooks and `quantize`.
//! - `rotation`: seeded signs + Walsh–Hadamard rotation.
//! - `centering`: key centering's score term over a tile, the slow RoPE pairs fitted.
//!
//! The CPU twin of the encode/decode/attention kernels is `reference::aura`.
pub mod centering;
pub mod codebook;
pub mod rotation;
pub mod scheme;

pub use codebook::{codebook, lloyd_max, quantize, try_codebook, Codebook};
pub use rotation::{fwht, rotate, signs, unrotate, KvKind};
pub use scheme::{row_words, KvScheme, AURA_BITS};

use crate::error::{Error, Result};

/// Largest head dim the AURA kernels are built for (one workgroup-shared row).
pub const MAX_AURA_HEAD_DIM: usize = 512;

/// Checks that `scheme` can store rows of `head_dim`: AURA needs a power of two (for the
/// Walsh–Hadamard rotation) no larger than `MAX_AURA_HEAD_DIM`; dense takes any size.
pub fn check_head_dim(scheme: KvScheme, head_dim: usize) -> Result<()> {
    match scheme {
        KvScheme::F16 => Ok(()),
        KvScheme::Aura { .. } if head_dim.is_power_of_two() && head_dim <= MAX_AURA_HEAD_DIM => Ok(()),
        KvScheme::Aura { .. } => Err(Error::InvalidArgument(format!(
            "KV scheme {} needs a power-of-two head dim <= {MAX_AURA_HEAD_DIM}, the model has {head_dim}",
            scheme.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_dim_check() {
        let a = KvScheme::Aura { k_bits: 4, v_bits: 4 };
        assert!(check_head_dim(a, 64).is_ok());
        assert!(check_head_dim(a, 512).is_ok());
        assert!(check_head_dim(a, 96).is_err());
        assert!(check_head_dim(a, 1024).is_err());
        assert!(check_head_dim(a, 0).is_err());
        assert!(check_head_dim(KvScheme::F16, 96).is_ok());
    }
}
