//! The decode plan predicate: a pure function from the cache scheme, shapes, kv_len
//! and options to the attention path of one step.
use crate::kv::scheme::KvScheme;
use crate::options::AttentionPath;

/// Whether split-K can run blocks of `b` tokens: 16 and 32 (part of a 64-token tile, the
/// other threads idle) or a positive multiple of the 64-token tile.
pub fn valid_split_block(b: u32) -> bool {
    b == 16 || b == 32 || (b > 0 && b.is_multiple_of(64))
}

/// How split-K attention merges its partials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeMode {
    /// The last block of each head (KV group) to finish merges, in the same dispatch.
    Fused,
    /// An `attn_merge` dispatch follows the blocks.
    Dispatch,
    /// Per step: fused where measured faster (dense caches up to `DENSE_FUSED_MAX_KV` rows,
    /// compressed caches' multi-token steps up to `COMPRESSED_FUSED_MAX_BLOCKS` blocks),
    /// else the dispatch (compressed one-token steps always: `COMPRESSED_HEAD_MAX_BLOCKS`).
    /// Measured on Vulkan (H200); the other backends default to `Dispatch`.
    Auto,
}

impl MergeMode {
    /// Whether a session in this mode may run the fused (`true`) or dispatch (`false`) merge.
    pub fn allows(self, fused: bool) -> bool {
        match self {
            MergeMode::Fused => fused,
            MergeMode::Dispatch => !fused,
            MergeMode::Auto => true,
        }
    }
}

/// Split-K block sizes a dense session can pick per step with the merge dispatch (a
/// pipeline each).
pub const DENSE_SPLIT_BLOCKS: [u32; 5] = [64, 128, 256, 512, 1024];
/// Dense 2-pass with the merge dispatch aims at no more than this many blocks per query
/// head: small blocks keep every workgroup's serial work short, and the merge spreads the
/// blocks over a wide workgroup. Measured on an H200 (Vulkan, SmolLM2 shapes, GPU loop
/// tok/s), blocks of 64 / 128 / 256: depth 4096 565 / 547 / 474, depth 16384 497 / 450 / 418.
pub const DENSE_TARGET_BLOCKS: u32 = 512;
/// Split-K block sizes a dense session can pick with the fused merge: half tiles too, since
/// the merge is cheap when there are few blocks.
pub const DENSE_FUSED_SPLIT_BLOCKS: [u32; 7] = [16, 32, 64, 128, 256, 512, 1024];
/// With the fused merge, one workgroup (64 threads) merges a head's blocks, so fewer,
/// longer blocks pay: H200, SmolLM2 shapes, GPU loop tok/s, fused merge, blocks of
/// 32 / 64 / 128 / 256: depth 4096 669 / 619 / 602 / 551 (129 / 65 / 33 / 17 blocks),
/// depth 16384 420 / 497 / 548 / 528 (513 / 257 / 129 / 65 blocks). At most 256 blocks
/// picks the best of these at both depths (129 blocks each).
pub const DENSE_FUSED_TARGET_BLOCKS: u32 = 256;
/// In `MergeMode::Auto`, dense split-K merges in its last block (one query head per
/// workgroup) up to this many cache rows; beyond, it runs GQA-group workgroups (K and V
/// read once per group) and the merge dispatch. H200, SmolLM2 shapes, GPU loop tok/s,
/// one head and the fused merge / a group and the merge dispatch: depth 1024 963 / 927,
/// 4096 863 / 882, 8192 802 / 856, 16384 675 / 786. Since the merge dispatch also applies
/// the output projection on Vulkan (session 9) and merges in one pass (session 10): depth
/// 1024 995 / 994, 2048 917 / 987, 3072 827 / 958, 4096 889 / 945.
pub const DENSE_FUSED_MAX_KV: usize = 1024;
/// Compressed caches use one split block (measured on an H200 at 16k, decode tok/s with
/// blocks 64 / 128 / 256: aura8v4 123 / 118 / 90, aura4v4 122 / 119 / 87).
pub const DEFAULT_COMPRESSED_SPLIT_BLOCK: u32 = 64;
/// Multi-token (prefill) compressed steps: the kernel's last block of each query head
/// merges it (one head per workgroup with the fused merge), so past this many blocks the
/// merge dispatch (GQA-group workgroups) wins. Measured on one-token steps, which since
/// session 13 take the merge dispatch instead (`COMPRESSED_HEAD_MAX_BLOCKS`): H200, aura4v4,
/// 64-token blocks, GPU loop tok/s, the fused encode on both paths (session 7), fused /
/// dispatch: depth 2048 (33 blocks) 821 / 761, 4096 (65)
/// 797 / 764, 6144 (97) 765 / 737, 8192 (129) 650 / 752, 10240 (161) 741 (dispatch). (At
/// 129 blocks SmolLM2's nine one-head workgroups per block, 1161, no longer fit one wave
/// at the fused-encode kernel's registers.) Session 6, with the encoder: 160.
pub const COMPRESSED_FUSED_MAX_BLOCKS: u32 = 112;

/// One-token compressed steps in `MergeMode::Auto` run split-K with the merge dispatch (the
/// output projection folded in where `Options::fused_oproj` allows) from the first row on
/// (when the KV heads alone do not fill the GPU: `MIN_PARALLEL_WORKGROUPS`), one query head
/// per workgroup up to this many blocks and a GQA group per workgroup past them.
/// (`MergeMode::Dispatch`, the other backends' default, keeps single-pass up to
/// `COMPRESSED_SINGLE_PASS_MAX_TILES` tiles and the group: not measured there.) H200, aura4v4, 64-row blocks,
/// GPU loop tok/s (session 13), head / group workgroups with the merge dispatch: depth 4096
/// (65 blocks) 962 / 897, 5120 864 / 884, 6144 849 / 884, 8192 854 / 899, 16384 692 / 862;
/// against the fused merge with one head per workgroup, which Auto ran before: depth 256
/// 1027 (head, dispatch) / 993, 1024 1013 / 970, 2048 1005 / 968, 4096 962 / 932; and
/// against single-pass: depth 0 1032 / 1014, 128 1036 / 895.
pub const COMPRESSED_HEAD_MAX_BLOCKS: u32 = 72;

/// The dense split block for a step whose last token sees `kv_len` rows: the smallest
/// block of the mode's list giving at most its target blocks per head.
pub fn auto_dense_block(kv_len: usize, fused: bool) -> u32 {
    let (blocks, target): (&[u32], u32) = if fused {
        (&DENSE_FUSED_SPLIT_BLOCKS, DENSE_FUSED_TARGET_BLOCKS)
    } else {
        (&DENSE_SPLIT_BLOCKS, DENSE_TARGET_BLOCKS)
    };
    let want = (kv_len as u32).div_ceil(target);
    blocks.iter().copied().find(|&b| b >= want).unwrap_or(blocks[blocks.len() - 1])
}

/// With at least this many workgroups, single-pass attention alone fills a GPU.
pub const MIN_PARALLEL_WORKGROUPS: u32 = 64;

/// Dense single-pass (with the merge dispatch) is kept while the context fits in this many
/// 64-token tiles (one workgroup per query head walks them serially). H200 measurements
/// bracket the crossover: at depth 0 single-pass is faster (312 vs 287 tok/s), at 4096
/// 2-pass is 9x faster (140 vs 16); the crossover in between is not measured yet. With the
/// fused merge, split-K runs from the second 16-token block on: depth 0, 128 tokens,
/// single-pass 722 tok/s vs fused 16-token blocks 752.
pub const SINGLE_PASS_MAX_TILES: u32 = 8;

/// Compressed single-pass runs one workgroup per KV head (3 for SmolLM2 vs 9 dense),
/// so it switches to 2-pass sooner: depth 0 single 207 vs 2-pass 199 tok/s (aura4v4),
/// depth 4096 10 vs 97.
pub const COMPRESSED_SINGLE_PASS_MAX_TILES: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    pub block: u32,
    pub n_blocks: u32,
    /// The last block merges (no merge dispatch).
    pub merge: bool,
    /// One query head per workgroup (else several heads of a GQA group, their K/V rows read
    /// once: see `Options::head_per_workgroup`).
    pub per_head: bool,
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

/// What a session fixes for the plan of every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanInputs {
    pub scheme: KvScheme,
    pub path: AttentionPath,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    /// A split block forced by the caller (`AttentionPath::TwoPass { block }`), else
    /// `auto_dense_block` for dense attention and `DEFAULT_COMPRESSED_SPLIT_BLOCK` for the
    /// compressed kernels.
    pub block: Option<u32>,
    /// How split-K merges (see `MergeMode`).
    pub merge: MergeMode,
    /// Forced workgroup shape (`Options::head_per_workgroup`); None: one head per workgroup
    /// with the fused merge, a group with the merge dispatch, but for one-token compressed
    /// steps in `MergeMode::Auto` up to `COMPRESSED_HEAD_MAX_BLOCKS` blocks (one head).
    pub head_per_workgroup: Option<bool>,
}

/// Choose the attention path for a step of `n_tokens` tokens whose last token sees `kv_len`
/// rows. The dense auto path splits one-token steps with the fused merge from the second
/// block on; with the merge dispatch, and for multi-token (prefill) steps, it stays
/// single-pass while the context fits `SINGLE_PASS_MAX_TILES` tiles. A prefill step
/// already has n_tokens x n_heads workgroups, and the session runs 128 tokens per
/// single-pass step against 32 per split-K step (a 512-token prompt: 4 steps instead of 16).
///
/// One-token compressed steps in `MergeMode::Auto` run split-K with the merge dispatch at
/// every depth (with fewer than `MIN_PARALLEL_WORKGROUPS` KV heads; see
/// `COMPRESSED_HEAD_MAX_BLOCKS`); multi-token ones stay single-pass up to
/// `COMPRESSED_SINGLE_PASS_MAX_TILES` tiles, then merge in the last block up to
/// `COMPRESSED_FUSED_MAX_BLOCKS` blocks.
pub fn plan(inputs: &PlanInputs, kv_len: usize, n_tokens: usize) -> DecodePlan {
    let PlanInputs { scheme, path, n_heads, n_kv_heads, block, merge, head_per_workgroup } = *inputs;
    let n_of = |b: u32| (kv_len as u32).div_ceil(b);
    let tiles = n_of(64);
    // Dense (and the mirror): fused while the context is short enough (see MergeMode).
    let dense_fused = match merge {
        MergeMode::Fused => true,
        MergeMode::Dispatch => false,
        MergeMode::Auto => kv_len <= DENSE_FUSED_MAX_KV,
    };
    let db = block.unwrap_or_else(|| auto_dense_block(kv_len, dense_fused));
    let dense_split = Split {
        block: db,
        n_blocks: n_of(db),
        merge: dense_fused,
        per_head: head_per_workgroup.unwrap_or(dense_fused),
    };
    let dense_auto = if (n_heads as u32) >= MIN_PARALLEL_WORKGROUPS {
        None
    } else if dense_fused && n_tokens == 1 {
        (dense_split.n_blocks > 1).then_some(dense_split)
    } else {
        (tiles > SINGLE_PASS_MAX_TILES).then_some(dense_split)
    };
    let cb = block.unwrap_or(DEFAULT_COMPRESSED_SPLIT_BLOCK);
    let n = n_of(cb);
    let one = n_tokens == 1;
    let fused = match merge {
        MergeMode::Fused => true,
        MergeMode::Dispatch => false,
        MergeMode::Auto => !one && n <= COMPRESSED_FUSED_MAX_BLOCKS,
    };
    let auto_one = one && merge == MergeMode::Auto;
    let per_head = head_per_workgroup.unwrap_or(fused || (auto_one && n <= COMPRESSED_HEAD_MAX_BLOCKS));
    let split = Split { block: cb, n_blocks: n, merge: fused, per_head };
    match (scheme.is_compressed(), path) {
        (false, AttentionPath::SinglePass) => DecodePlan::Dense { split: None },
        (false, AttentionPath::TwoPass { .. }) => DecodePlan::Dense { split: Some(dense_split) },
        (false, AttentionPath::Auto | AttentionPath::Mirror) => DecodePlan::Dense { split: dense_auto },
        (true, AttentionPath::SinglePass) => DecodePlan::CompressedSinglePass,
        (true, AttentionPath::TwoPass { .. }) => DecodePlan::CompressedTwoPass(split),
        (true, AttentionPath::Mirror) => DecodePlan::DequantMirror { split: dense_auto },
        (true, AttentionPath::Auto) => {
            let deep = tiles > COMPRESSED_SINGLE_PASS_MAX_TILES || auto_one;
            if (n_kv_heads as u32) < MIN_PARALLEL_WORKGROUPS && deep {
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

    fn pl(
        scheme: KvScheme,
        path: AttentionPath,
        n_heads: usize,
        n_kv_heads: usize,
        kv_len: usize,
        block: Option<u32>,
        merge: MergeMode,
    ) -> DecodePlan {
        plan(&PlanInputs { scheme, path, n_heads, n_kv_heads, block, merge, head_per_workgroup: None }, kv_len, 1)
    }

    #[test]
    fn every_path_is_reachable_and_forceable() {
        use MergeMode::{Auto, Dispatch, Fused};
        let f16 = KvScheme::F16;
        let a44 = KvScheme::Aura { k_bits: 4, v_bits: 4 };
        let auto = AttentionPath::Auto;
        // Dense: one head per workgroup with the fused merge, a group with the dispatch.
        let sp = |block, n_blocks, merge| Some(Split { block, n_blocks, merge, per_head: merge });
        // Merge dispatch: single-pass up to 8 tiles, then at most 512 blocks of >= 64.
        assert_eq!(pl(f16, auto, 9, 3, 10, None, Dispatch), DecodePlan::Dense { split: None });
        assert_eq!(pl(f16, auto, 9, 3, 512, None, Dispatch), DecodePlan::Dense { split: None });
        assert_eq!(pl(f16, auto, 9, 3, 4096, Some(256), Dispatch), DecodePlan::Dense { split: sp(256, 16, false) });
        assert_eq!(pl(f16, auto, 9, 3, 4096, None, Dispatch), DecodePlan::Dense { split: sp(64, 64, false) });
        assert_eq!(pl(f16, auto, 9, 3, 16384, None, Dispatch), DecodePlan::Dense { split: sp(64, 256, false) });
        assert_eq!(pl(f16, auto, 9, 3, 65536, None, Dispatch), DecodePlan::Dense { split: sp(128, 512, false) });
        assert_eq!(pl(f16, auto, 9, 3, 1 << 20, None, Dispatch), DecodePlan::Dense { split: sp(1024, 1024, false) });
        assert_eq!(auto_dense_block(1, false), 64);
        assert_eq!(auto_dense_block(64 * 512 + 1, false), 128);
        // Fused merge (dense: Auto fuses up to DENSE_FUSED_MAX_KV rows): split from the
        // second 16-token block, at most 256 blocks per head.
        for m in [Auto, Fused] {
            assert_eq!(pl(f16, auto, 9, 3, 16, None, m), DecodePlan::Dense { split: None });
            assert_eq!(pl(f16, auto, 9, 3, 17, None, m), DecodePlan::Dense { split: sp(16, 2, true) });
            assert_eq!(pl(f16, auto, 9, 3, 1024, None, m), DecodePlan::Dense { split: sp(16, 64, true) });
        }
        assert_eq!(pl(f16, auto, 9, 3, 2048, None, Fused), DecodePlan::Dense { split: sp(16, 128, true) });
        assert_eq!(pl(f16, auto, 9, 3, 4097, None, Fused), DecodePlan::Dense { split: sp(32, 129, true) });
        assert_eq!(pl(f16, auto, 9, 3, 16385, None, Fused), DecodePlan::Dense { split: sp(128, 129, true) });
        assert_eq!(pl(f16, auto, 9, 3, 1 << 20, None, Fused), DecodePlan::Dense { split: sp(1024, 1024, true) });
        // Auto past DENSE_FUSED_MAX_KV: the merge dispatch's blocks.
        assert_eq!(DENSE_FUSED_MAX_KV, 1024);
        assert_eq!(pl(f16, auto, 9, 3, 1025, None, Auto), DecodePlan::Dense { split: sp(64, 17, false) });
        assert_eq!(pl(f16, auto, 9, 3, 16385, None, Auto), DecodePlan::Dense { split: sp(64, 257, false) });
        assert_eq!(auto_dense_block(4096, true), 16);
        assert_eq!(auto_dense_block(4097, true), 32);
        assert_eq!(pl(f16, auto, 64, 8, 4096, None, Auto), DecodePlan::Dense { split: None });
        assert_eq!(pl(f16, AttentionPath::SinglePass, 9, 3, 4096, None, Auto), DecodePlan::Dense { split: None });
        assert_eq!(
            pl(f16, AttentionPath::TwoPass { block: 64 }, 9, 3, 65, Some(64), Dispatch),
            DecodePlan::Dense { split: sp(64, 2, false) }
        );
        assert_eq!(
            pl(f16, AttentionPath::TwoPass { block: 16 }, 9, 3, 65, Some(16), Auto),
            DecodePlan::Dense { split: sp(16, 5, true) }
        );
        // Compressed one-token steps in Auto: split-K with the merge dispatch from the first
        // row, one head per workgroup up to 72 blocks, a group past them; forced fused
        // merge: single-pass up to 4 tiles, then the fused merge.
        let two = |block, n_blocks, merge, per_head| {
            DecodePlan::CompressedTwoPass(Split { block, n_blocks, merge, per_head })
        };
        assert_eq!(pl(a44, auto, 9, 3, 1, None, Auto), two(64, 1, false, true));
        assert_eq!(pl(a44, auto, 9, 3, 100, None, Auto), two(64, 2, false, true));
        assert_eq!(pl(a44, auto, 9, 3, 300, None, Auto), two(64, 5, false, true));
        assert_eq!(COMPRESSED_HEAD_MAX_BLOCKS, 72);
        assert_eq!(pl(a44, auto, 9, 3, 4608, None, Auto), two(64, 72, false, true));
        assert_eq!(pl(a44, auto, 9, 3, 4609, None, Auto), two(64, 73, false, false));
        assert_eq!(pl(a44, auto, 9, 3, 7169, None, Auto), two(64, 113, false, false));
        assert_eq!(pl(a44, auto, 9, 3, 100, None, Fused), DecodePlan::CompressedSinglePass);
        assert_eq!(pl(a44, auto, 9, 3, 7169, None, Fused), two(64, 113, true, true));
        // The merge dispatch forced (the other backends' default): single-pass up to 4
        // tiles, then split-K with GQA-group workgroups.
        assert_eq!(pl(a44, auto, 9, 3, 256, None, Dispatch), DecodePlan::CompressedSinglePass);
        assert_eq!(pl(a44, auto, 9, 3, 300, None, Dispatch), two(64, 5, false, false));
        assert_eq!(pl(a44, auto, 9, 3, 16384, None, Dispatch), two(64, 256, false, false));
        assert_eq!(pl(a44, auto, 9, 3, 300, Some(256), Auto), two(256, 2, false, true));
        assert_eq!(pl(a44, AttentionPath::SinglePass, 9, 3, 5000, None, Auto), DecodePlan::CompressedSinglePass);
        assert_eq!(pl(a44, AttentionPath::Mirror, 9, 3, 5, None, Auto), DecodePlan::DequantMirror { split: None });
        assert_eq!(
            pl(a44, AttentionPath::Mirror, 9, 3, 16384, None, Dispatch),
            DecodePlan::DequantMirror { split: sp(64, 256, false) }
        );
        assert_eq!(
            pl(a44, AttentionPath::Mirror, 9, 3, 1024, None, Auto),
            DecodePlan::DequantMirror { split: sp(16, 64, true) }
        );
        assert_eq!(
            pl(a44, AttentionPath::Mirror, 9, 3, 16384, None, Auto),
            DecodePlan::DequantMirror { split: sp(64, 256, false) }
        );
        // Prefill steps stay single-pass up to 8 tiles; one-token steps split from 17 rows.
        let inputs = |scheme, path, block| PlanInputs {
            scheme,
            path,
            n_heads: 9,
            n_kv_heads: 3,
            block,
            merge: Auto,
            head_per_workgroup: None,
        };
        let step = |kv, n| plan(&inputs(f16, auto, None), kv, n);
        assert_eq!(step(512, 128), DecodePlan::Dense { split: None });
        assert_eq!(step(512, 1), DecodePlan::Dense { split: sp(16, 32, true) });
        assert_eq!(step(513, 32), DecodePlan::Dense { split: sp(16, 33, true) });
        let forced = plan(&inputs(f16, AttentionPath::TwoPass { block: 64 }, Some(64)), 512, 128);
        assert_eq!(forced, DecodePlan::Dense { split: sp(64, 8, true) });
        let mirror = plan(&inputs(a44, AttentionPath::Mirror, None), 300, 128);
        assert_eq!(mirror, DecodePlan::DequantMirror { split: None });
        // Compressed prefill steps: single-pass up to 4 tiles, then the fused merge up to
        // 112 blocks, then the merge dispatch with GQA-group workgroups.
        let step = |kv, n| plan(&inputs(a44, auto, None), kv, n);
        assert_eq!(step(256, 128), DecodePlan::CompressedSinglePass);
        assert_eq!(step(300, 128), two(64, 5, true, true));
        assert_eq!(step(7168, 32), two(64, 112, true, true));
        assert_eq!(step(7169, 32), two(64, 113, false, false));
        // A forced workgroup shape holds on every path.
        for (kv, n) in [(300, 1), (300, 128), (16384, 1)] {
            for head in [true, false] {
                let inp = PlanInputs { head_per_workgroup: Some(head), ..inputs(a44, auto, None) };
                let DecodePlan::CompressedTwoPass(sp) = plan(&inp, kv, n) else { panic!("split-K at {kv}") };
                assert_eq!(sp.per_head, head);
                let inp = PlanInputs {
                    head_per_workgroup: Some(head),
                    ..inputs(f16, AttentionPath::TwoPass { block: 64 }, Some(64))
                };
                let DecodePlan::Dense { split: Some(sp) } = plan(&inp, kv, n) else { panic!("dense split-K at {kv}") };
                assert_eq!(sp.per_head, head);
            }
        }
    }
}
