//! The decode plan predicate: a pure function from the cache scheme, shapes, kv_len
//! and options to the attention path of one step.
use crate::kv::scheme::KvScheme;
use crate::options::AttentionPath;

/// Split-K block sizes a dense session can pick per step (a pipeline each; multiples of
/// the 64-token tile).
pub const DENSE_SPLIT_BLOCKS: [u32; 5] = [64, 128, 256, 512, 1024];
/// Dense 2-pass aims at no more than this many blocks per query head: small blocks keep
/// every workgroup's serial work short, and the merge spreads the blocks over a wide
/// workgroup. Measured on an H200 (Vulkan, SmolLM2 shapes, GPU loop tok/s), blocks of
/// 64 / 128 / 256: depth 4096 565 / 547 / 474, depth 16384 497 / 450 / 418.
pub const DENSE_TARGET_BLOCKS: u32 = 512;
/// Compressed caches use one split block (measured on an H200 at 16k, decode tok/s with
/// blocks 64 / 128 / 256: aura8v4 123 / 118 / 90, aura4v4 122 / 119 / 87).
pub const DEFAULT_COMPRESSED_SPLIT_BLOCK: u32 = 64;

/// The dense split block for a step whose last token sees `kv_len` rows: the smallest of
/// `DENSE_SPLIT_BLOCKS` giving at most `DENSE_TARGET_BLOCKS` blocks.
pub fn auto_dense_block(kv_len: usize) -> u32 {
    let want = (kv_len as u32).div_ceil(DENSE_TARGET_BLOCKS);
    DENSE_SPLIT_BLOCKS.into_iter().find(|&b| b >= want).unwrap_or(DENSE_SPLIT_BLOCKS[DENSE_SPLIT_BLOCKS.len() - 1])
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
/// `block`: a split block forced by the caller (`AttentionPath::TwoPass { block }`), else
/// `auto_dense_block` for dense attention and `DEFAULT_COMPRESSED_SPLIT_BLOCK` for the
/// compressed kernels.
pub fn plan(
    scheme: KvScheme,
    path: AttentionPath,
    n_heads: usize,
    n_kv_heads: usize,
    kv_len: usize,
    block: Option<u32>,
) -> DecodePlan {
    let split_of = |b: u32| Split { block: b, n_blocks: (kv_len as u32).div_ceil(b) };
    let split = split_of(block.unwrap_or(DEFAULT_COMPRESSED_SPLIT_BLOCK));
    let dense_split = split_of(block.unwrap_or_else(|| auto_dense_block(kv_len)));
    let tiles = (kv_len as u32).div_ceil(64);
    let dense_auto = if (n_heads as u32) < MIN_PARALLEL_WORKGROUPS && tiles > SINGLE_PASS_MAX_TILES {
        Some(dense_split)
    } else {
        None
    };
    match (scheme.is_compressed(), path) {
        (false, AttentionPath::SinglePass) => DecodePlan::Dense { split: None },
        (false, AttentionPath::TwoPass { .. }) => DecodePlan::Dense { split: Some(dense_split) },
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
        assert_eq!(plan(f16, auto, 9, 3, 10, None), DecodePlan::Dense { split: None });
        assert_eq!(
            plan(f16, auto, 9, 3, 4096, Some(256)),
            DecodePlan::Dense { split: Some(Split { block: 256, n_blocks: 16 }) }
        );
        // Adaptive dense blocks: at most 512 blocks per head.
        assert_eq!(
            plan(f16, auto, 9, 3, 4096, None),
            DecodePlan::Dense { split: Some(Split { block: 64, n_blocks: 64 }) }
        );
        assert_eq!(
            plan(f16, auto, 9, 3, 16384, None),
            DecodePlan::Dense { split: Some(Split { block: 64, n_blocks: 256 }) }
        );
        assert_eq!(
            plan(f16, auto, 9, 3, 65536, None),
            DecodePlan::Dense { split: Some(Split { block: 128, n_blocks: 512 }) }
        );
        assert_eq!(
            plan(f16, auto, 9, 3, 1 << 20, None),
            DecodePlan::Dense { split: Some(Split { block: 1024, n_blocks: 1024 }) }
        );
        assert_eq!(auto_dense_block(1), 64);
        assert_eq!(auto_dense_block(64 * 512 + 1), 128);
        assert_eq!(plan(f16, auto, 64, 8, 4096, None), DecodePlan::Dense { split: None });
        assert_eq!(plan(f16, AttentionPath::SinglePass, 9, 3, 4096, None), DecodePlan::Dense { split: None });
        assert_eq!(
            plan(f16, AttentionPath::TwoPass { block: 64 }, 9, 3, 65, Some(64)),
            DecodePlan::Dense { split: Some(Split { block: 64, n_blocks: 2 }) }
        );
        assert_eq!(plan(a44, auto, 9, 3, 100, None), DecodePlan::CompressedSinglePass);
        assert_eq!(plan(a44, auto, 9, 3, 300, None), DecodePlan::CompressedTwoPass(Split { block: 64, n_blocks: 5 }));
        assert_eq!(
            plan(a44, auto, 9, 3, 300, Some(256)),
            DecodePlan::CompressedTwoPass(Split { block: 256, n_blocks: 2 })
        );
        assert_eq!(plan(a44, AttentionPath::SinglePass, 9, 3, 5000, None), DecodePlan::CompressedSinglePass);
        assert_eq!(plan(a44, AttentionPath::Mirror, 9, 3, 5, None), DecodePlan::DequantMirror { split: None });
        assert_eq!(
            plan(a44, AttentionPath::Mirror, 9, 3, 16384, None),
            DecodePlan::DequantMirror { split: Some(Split { block: 64, n_blocks: 256 }) }
        );
    }
}
