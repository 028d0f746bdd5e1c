//! The decode plan predicate: a pure function from the cache scheme, shapes, kv_len
//! and options to the attention path of one step.
use crate::kv::scheme::KvScheme;
use crate::options::AttentionPath;

/// Tokens per split-K block when 2-pass is chosen without a block size (a multiple of
/// the 64-token tile). Measured on an H200 (Vulkan), SmolLM2 shapes at 16k context,
/// decode tok/s with blocks 64 / 128 / 256: dense f16 136 / 145 / 129, aura8v4
/// 123 / 118 / 90, aura4v4 122 / 119 / 87, aura4v2 127 / 126 / 98.
pub const DEFAULT_SPLIT_BLOCK: u32 = 128;
/// Compressed caches favour smaller blocks (see the measurements above).
pub const DEFAULT_COMPRESSED_SPLIT_BLOCK: u32 = 64;

/// The split block for a scheme when none is forced.
pub fn default_split_block(scheme: KvScheme) -> u32 {
    if scheme.is_compressed() {
        DEFAULT_COMPRESSED_SPLIT_BLOCK
    } else {
        DEFAULT_SPLIT_BLOCK
    }
}

/// With at least this many workgroups, single-pass attention alone fills a GPU.
pub const MIN_PARALLEL_WORKGROUPS: u32 = 64;

/// Dense single-pass is kept while the context fits in this many 64-token tiles
/// (one workgroup per query head walks them serially). H200 measurements bracket the
/// crossover: at depth 0 single-pass is faster (312 vs 287 tok/s), at 4096 2-pass is
/// 9x faster (140 vs 16); the crossover in between is not measured yet.
pub const SINGLE_PASS_MAX_TILES: u32 = 8;

/// Compressed single-pass runs one workgroup per KV head (3 for SmolLM2 vs 9 dense),
/// so it switches to 2-pass sooner: depth 0 single 207 vs 2-pass 199 tok/s (aura4v4),
/// depth 4096 10 vs 97.
pub const COMPRESSED_SINGLE_PASS_MAX_TILES: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    pub block: u32,
    pub n_blocks: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodePlan {
    /// Dense f16/f32 cache; `split` = 2-pass split-K.
    Dense { split: Option<Split> },
    /// Online softmax over all tokens, one workgroup per KV group, packed cache.
    CompressedSinglePass,
    /// Partials per (group, block) + merge, packed cache.
    CompressedTwoPass(Split),
    /// Opt-in A/B path: new rows dequantized into a dense mirror, dense attention.
    DequantMirror { split: Option<Split> },
}

impl DecodePlan {
    /// Split-K blocks of the plan (0 for single-pass), as the step uniform carries them.
    pub fn n_blocks(self) -> u32 {
        match self {
            DecodePlan::Dense { split: Some(sp) }
            | DecodePlan::DequantMirror { split: Some(sp) }
            | DecodePlan::CompressedTwoPass(sp) => sp.n_blocks,
            DecodePlan::Dense { split: None }
            | DecodePlan::DequantMirror { split: None }
            | DecodePlan::CompressedSinglePass => 0,
        }
    }
}

/// Choose the attention path for one step whose last token sees `kv_len` rows.
/// `block` is the split size the session's pipelines were built for.
pub fn plan(
    scheme: KvScheme,
    path: AttentionPath,
    n_heads: usize,
    n_kv_heads: usize,
    kv_len: usize,
    block: u32,
) -> DecodePlan {
    let split = Split { block, n_blocks: (kv_len as u32).div_ceil(block) };
    let tiles = (kv_len as u32).div_ceil(64);
    let dense_auto =
        if (n_heads as u32) < MIN_PARALLEL_WORKGROUPS && tiles > SINGLE_PASS_MAX_TILES { Some(split) } else { None };
    match (scheme.is_compressed(), path) {
        (false, AttentionPath::SinglePass) => DecodePlan::Dense { split: None },
        (false, AttentionPath::TwoPass { .. }) => DecodePlan::Dense { split: Some(split) },
        (false, AttentionPath::Auto | AttentionPath::Mirror) => DecodePlan::Dense { split: dense_auto },
        (true, AttentionPath::SinglePass) => DecodePlan::CompressedSinglePass,
        (true, AttentionPath::TwoPass { .. }) => DecodePlan::CompressedTwoPass(split),
        (true, AttentionPath::Mirror) => DecodePlan::DequantMirror { split: dense_auto },
        (true, AttentionPath::Auto) => {
            if (n_kv_heads as u32) < MIN_PARALLEL_WORKGROUPS && tiles > COMPRESSED_SINGLE_PASS_MAX_TILES {
                DecodePlan::CompressedTwoPass(split)
            } else {
                DecodePlan::CompressedSinglePass
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_reachable_and_forceable() {
        let f16 = KvScheme::F16;
        let a44 = KvScheme::Aura { k_bits: 4, v_bits: 4 };
        let auto = AttentionPath::Auto;
        assert_eq!(plan(f16, auto, 9, 3, 10, 256), DecodePlan::Dense { split: None });
        assert_eq!(
            plan(f16, auto, 9, 3, 4096, 256),
            DecodePlan::Dense { split: Some(Split { block: 256, n_blocks: 16 }) }
        );
        assert_eq!(default_split_block(f16), 128);
        assert_eq!(default_split_block(a44), 64);
        assert_eq!(plan(f16, auto, 64, 8, 4096, 256), DecodePlan::Dense { split: None });
        assert_eq!(plan(f16, AttentionPath::SinglePass, 9, 3, 4096, 256), DecodePlan::Dense { split: None });
        assert_eq!(
            plan(f16, AttentionPath::TwoPass { block: 64 }, 9, 3, 65, 64),
            DecodePlan::Dense { split: Some(Split { block: 64, n_blocks: 2 }) }
        );
        assert_eq!(plan(a44, auto, 9, 3, 100, 256), DecodePlan::CompressedSinglePass);
        assert_eq!(plan(a44, auto, 9, 3, 300, 256), DecodePlan::CompressedTwoPass(Split { block: 256, n_blocks: 2 }));
        assert_eq!(plan(a44, AttentionPath::SinglePass, 9, 3, 5000, 256), DecodePlan::CompressedSinglePass);
        assert_eq!(plan(a44, AttentionPath::Mirror, 9, 3, 5, 256), DecodePlan::DequantMirror { split: None });
    }
}
