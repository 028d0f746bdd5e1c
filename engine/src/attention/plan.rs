//! The decode plan predicate: a pure function from capabilities, shapes and
//! options to the attention path of one step.
use crate::options::AttentionPath;

/// Tokens per split-K block when 2-pass is chosen automatically.
/// Provisional: a multiple of the 64-token tile; to be re-tuned from GPU
/// measurements (issue: performance).
pub const DEFAULT_SPLIT_BLOCK: u32 = 256;

/// Below this many workgroups the single-pass kernel leaves most of a GPU idle,
/// and splitting the tokens pays for the extra merge dispatch. Provisional value:
/// single-pass runs one workgroup per query head, so with few heads a long
/// context is serial in one workgroup.
pub const MIN_PARALLEL_WORKGROUPS: u32 = 64;

/// Single-pass is kept while the context fits in this many 64-token tiles.
pub const SINGLE_PASS_MAX_TILES: u32 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodePlan {
    SinglePass,
    TwoPass { block: u32, n_blocks: u32 },
}

/// Choose the attention path for one decode step.
pub fn plan(path: AttentionPath, n_heads: usize, kv_len: usize) -> DecodePlan {
    let two = |block: u32| DecodePlan::TwoPass { block, n_blocks: (kv_len as u32).div_ceil(block) };
    match path {
        AttentionPath::SinglePass => DecodePlan::SinglePass,
        AttentionPath::TwoPass { block } => two(block),
        AttentionPath::Auto => {
            let tiles = (kv_len as u32).div_ceil(64);
            if (n_heads as u32) < MIN_PARALLEL_WORKGROUPS && tiles > SINGLE_PASS_MAX_TILES {
                two(DEFAULT_SPLIT_BLOCK)
            } else {
                DecodePlan::SinglePass
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_switches_to_two_pass_on_long_context() {
        assert_eq!(plan(AttentionPath::Auto, 9, 10), DecodePlan::SinglePass);
        assert_eq!(plan(AttentionPath::Auto, 9, 4096), DecodePlan::TwoPass { block: 256, n_blocks: 16 });
        assert_eq!(plan(AttentionPath::SinglePass, 9, 4096), DecodePlan::SinglePass);
        assert_eq!(plan(AttentionPath::TwoPass { block: 64 }, 9, 65), DecodePlan::TwoPass { block: 64, n_blocks: 2 });
    }
}
