//! Params structs matching each WGSL `struct Params` field for field, and the
//! shape constants each kernel is specialized on.
use bytemuck::{Pod, Zeroable};

use crate::gpu::registry::{Kernel, PipelineKey};
use crate::gpu::Variant;
use crate::model::tensor::WeightType;

/// Threads per workgroup for the row kernels (matvec, embed). 64 is a multiple of
/// every subgroup size we meet (8 lavapipe, 32 NVIDIA, 64 AMD wave64).
pub const WG_ROWS: u32 = 64;
/// Threads for single-workgroup reductions (rmsnorm) and elementwise kernels.
pub const WG_WIDE: u32 = 256;
/// Threads of a decode mat-vec workgroup (4 rows each) for a matrix of `rows` rows of `k`
/// elements: 256 when a row has many 8-element units (K > 1024), else 32 (3 units per
/// thread at K = 576) for tall matrices and 64 for small ones, which would otherwise leave
/// too few threads for their loads and the next kernel's prefetch. Measured on an H200
/// (Vulkan, `probe --kernels`, dependent chains with weights cold in L2), µs per dispatch
/// with WG 32 / 64 / 128 / 256: norm + q|k|v 960x576 5.19 / 6.16 / 5.56 / 5.91, norm +
/// gate|up 2x1536x576 7.35 / 9.72 / 8.65 / 9.51, LM head 49152x576 22.5 / 33.2 / 42.9 /
/// 84.5, down 576x1536 7.11 / 7.10 / 5.93 / 4.86; in a decode step (`bench --profile`) the
/// 576x576 o-projection took 15.1 µs at WG 32 against 12.3 at 64.
pub fn matvec_wg(k: usize, rows: usize) -> u32 {
    match (k > 1024, rows < 768) {
        (true, _) => 256,
        (false, true) => 64,
        (false, false) => 32,
    }
}

/// Rows computed by one matvec workgroup (fixed in matvec.wgsl).
pub const MATVEC_ROWS: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct EmbedParams {
    pub rows: u32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct RmsNormParams {
    pub eps: f32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct MatvecParams {
    pub rows: u32,
    pub accumulate: u32,
    pub out_stride: u32,
    /// First row of the matrix in the weight buffer (stacked matrices).
    pub row_base: u32,
}

/// `matvec_norm`: y = W rmsnorm(x) over stacked rows, split into up to three outputs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct MatvecNormParams {
    /// Rows of the stacked matrix.
    pub rows: u32,
    /// Rows [0, n0) go to y0, [n0, n1) to y1, [n1, rows) to y2 (multiples of 4).
    pub n0: u32,
    pub n1: u32,
    pub eps: f32,
    /// Row strides (per token) of y0, y1, y2.
    pub stride0: u32,
    pub stride1: u32,
    pub stride2: u32,
    /// KV cache rows per head (`KV_OUT`: y1 and y2 are the k and v caches).
    pub capacity: u32,
}

/// `matvec_glu`: act = silu(Wg xn) * (Wu xn) with xn = rmsnorm(x); W = gate rows | up rows.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct MatvecGluParams {
    pub ffn: u32,
    pub eps: f32,
    pub _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct RopeKvParams {
    pub n_heads: u32,
    pub n_kv_heads: u32,
    pub capacity: u32,
    pub halves: u32,
    /// Write k/v into the dense cache (0 when the cache is AURA-compressed).
    pub write_cache: u32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct KvEncodeParams {
    pub n_kv_heads: u32,
    pub capacity: u32,
    pub bits: u32,
    pub row_words: u32,
    pub word_off: u32,
    pub gamma_off: u32,
    pub s_off: u32,
    pub c_off: u32,
    pub b_off: u32,
    /// f32 offset in `consts` of this layer's pre-RoPE key means [n_kv][hd] (K only).
    pub mu_off: u32,
    /// 1: encode x - R_pos mu (key centering; attention adds q . R_pos mu back).
    pub has_mu: u32,
    /// RoPE pairs are (i, i + hd/2) (HF) instead of (2i, 2i+1) (GGUF).
    pub halves: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct KvDequantParams {
    pub n_kv_heads: u32,
    pub capacity: u32,
    pub bits: u32,
    pub row_words: u32,
    pub word_off: u32,
    pub gamma_off: u32,
    pub s_off: u32,
    pub c_off: u32,
    /// Key centering (K only): add R_pos mu back; see `KvEncodeParams`.
    pub mu_off: u32,
    pub has_mu: u32,
    pub halves: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct AttnAuraParams {
    pub n_heads: u32,
    pub capacity: u32,
    pub max_blocks: u32,
    pub scale: f32,
    pub v_word_off: u32,
    pub v_gamma_off: u32,
    pub ck_off: u32,
    pub cv_off: u32,
    /// Key centering: every score adds scale * q . R_pos mu; see `KvEncodeParams`.
    pub mu_off: u32,
    pub has_mu: u32,
    pub halves: u32,
    /// vec4 index of the split-K partial o rows in the attention output buffer.
    pub po_off: u32,
    /// Query heads per KV head (the kernel's G, heads per workgroup, divides it).
    pub group: u32,
    /// f32 offsets of the step's k and v rows in the q|k|v buffer (the fused encode).
    pub k_off: u32,
    pub v_off: u32,
    /// f32 offsets of the K and V boundaries in the layer constants (the fused encode).
    pub bk_off: u32,
    pub bv_off: u32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct AttnParams {
    pub n_heads: u32,
    pub group: u32,
    pub capacity: u32,
    pub max_blocks: u32,
    pub scale: f32,
    /// vec4 index of the split-K partial o rows in the attention output buffer.
    pub po_off: u32,
    pub _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct MergeParams {
    pub n_heads: u32,
    pub max_blocks: u32,
    /// vec4 index of the split-K partial o rows in the attention output buffer.
    pub po_off: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct MergeOprojParams {
    pub n_heads: u32,
    pub max_blocks: u32,
    /// vec4 index of the split-K partial o rows in the attention output buffer.
    pub po_off: u32,
    /// Wo's rows (the hidden size) and its first row in the bound weights.
    pub rows: u32,
    pub row_base: u32,
    /// The finished-head counter of the step's token t is common/merge.wgsl's `ctr0 + t`.
    pub ctr0: u32,
    pub _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct SiluMulParams {
    pub n: u32,
    pub _pad: [u32; 3],
}

/// Bytes of one row of `k` elements stored as `ty`.
pub fn row_bytes(ty: WeightType, k: usize) -> u32 {
    (k / ty.block_elems() * ty.block_bytes()) as u32
}

pub fn embed_key(v: Variant, ty: WeightType, hidden: usize) -> PipelineKey {
    PipelineKey {
        kernel: Kernel::Embed,
        weight: Some(ty),
        variant: v,
        consts: vec![("WG", WG_ROWS), ("K", hidden as u32), ("ROW_BYTES", row_bytes(ty, hidden))],
    }
}

/// Tokens per thread in the prefill matmul: each weight unit is dequantized once
/// per 8 tokens.
pub const PREFILL_TOKEN_TILE: u32 = 8;

/// Prefill projection: one weight row per thread, `tt` tokens per thread.
pub fn matmul_key(v: Variant, ty: WeightType, k: usize, tt: u32) -> PipelineKey {
    PipelineKey {
        kernel: Kernel::Matmul,
        weight: Some(ty),
        variant: v,
        consts: vec![("WG", WG_ROWS), ("K", k as u32), ("ROW_BYTES", row_bytes(ty, k)), ("TT", tt)],
    }
}

/// `tt` tokens per workgroup (1 = decode matvec, `matvec_wg` threads for `rows` rows; the
/// tiled prefill keeps WG_ROWS).
pub fn matvec_key(v: Variant, ty: WeightType, k: usize, rows: usize, tt: u32) -> PipelineKey {
    let wg = if tt == 1 { matvec_wg(k, rows) } else { WG_ROWS };
    PipelineKey {
        kernel: Kernel::Matvec,
        weight: Some(ty),
        variant: v,
        consts: vec![("WG", wg), ("K", k as u32), ("ROW_BYTES", row_bytes(ty, k)), ("TT", tt)],
    }
}

/// Decode projection with the RMSNorm folded in (stacked rows, split outputs).
/// `rope_hd` > 0 also applies RoPE (adjacent pairs, head_dim `rope_hd`) to y0 and y1
/// (q | k | v); then `kv_out` makes y1 and y2 the KV caches (kv_t, written at the token's
/// position) instead of f32 scratch rows. `rope_hd` 0: plain outputs.
pub fn matvec_norm_key(v: Variant, ty: WeightType, k: usize, rows: usize, rope_hd: usize, kv_out: bool) -> PipelineKey {
    PipelineKey {
        kernel: Kernel::MatvecNorm,
        weight: Some(ty),
        variant: v,
        consts: vec![
            ("WG", matvec_wg(k, rows)),
            ("K", k as u32),
            ("ROW_BYTES", row_bytes(ty, k)),
            ("ROPE_HD", rope_hd as u32),
            ("KV_OUT", (kv_out && rope_hd > 0) as u32),
        ],
    }
}

/// Decode gate/up + SwiGLU with the RMSNorm folded in.
/// `ffn` gate rows (and as many up rows).
pub fn matvec_glu_key(v: Variant, ty: WeightType, k: usize, ffn: usize) -> PipelineKey {
    PipelineKey {
        kernel: Kernel::MatvecGlu,
        weight: Some(ty),
        variant: v,
        consts: vec![("WG", matvec_wg(k, 2 * ffn)), ("K", k as u32), ("ROW_BYTES", row_bytes(ty, k))],
    }
}

/// GPU greedy sampling (one workgroup).
pub fn argmax_key(v: Variant) -> PipelineKey {
    PipelineKey { kernel: Kernel::Argmax, weight: None, variant: v, consts: vec![("WG", WG_WIDE)] }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ArgmaxParams {
    pub vocab: u32,
    pub _pad: [u32; 3],
}

/// Workgroup grid for `n` workgroups, folded into y when x would exceed the limit.
pub fn grid(n: u32, max_per_dim: u32) -> [u32; 3] {
    if n <= max_per_dim {
        [n.max(1), 1, 1]
    } else {
        let y = n.div_ceil(max_per_dim);
        [n.div_ceil(y), y, 1]
    }
}

pub fn rmsnorm_key(v: Variant, n: usize) -> PipelineKey {
    PipelineKey { kernel: Kernel::RmsNorm, weight: None, variant: v, consts: vec![("WG", WG_WIDE), ("N", n as u32)] }
}

pub fn rope_kv_key(v: Variant, head_dim: usize) -> PipelineKey {
    PipelineKey {
        kernel: Kernel::RopeKv,
        weight: None,
        variant: v,
        consts: vec![("WG", WG_ROWS), ("HD", head_dim as u32)],
    }
}

/// Threads for attention: at least one per head-dim lane.
pub fn attn_wg(head_dim: usize) -> u32 {
    (head_dim as u32).max(64)
}

/// Dense attention serving `heads` query heads of one KV head per workgroup (1, or a
/// divisor of the GQA group: see `dense_heads_per_workgroup`). `block == 0` is the
/// single-pass kernel; `merge` (split-K): the last block to finish merges the partials, so
/// no `attn_merge` dispatch follows.
pub fn attn_key(v: Variant, head_dim: usize, heads: usize, block: u32, merge: bool) -> PipelineKey {
    PipelineKey {
        kernel: Kernel::AttnDecode,
        weight: None,
        variant: v,
        consts: vec![
            ("WG", attn_wg(head_dim)),
            ("HD", head_dim as u32),
            ("G", heads as u32),
            ("BLOCK", block),
            ("MERGE", (merge && block > 0) as u32),
        ],
    }
}

/// Query heads a dense attention workgroup serves when it takes a whole GQA group: the
/// largest divisor of the group up to 4 (its online softmax reduces four heads at once);
/// one for head dims past 128, whose wider workgroups would pass WebGPU's 16 KiB of
/// workgroup memory with several heads.
pub fn dense_heads_per_workgroup(group: usize, head_dim: usize) -> usize {
    if head_dim > 128 {
        return 1;
    }
    (1..=4).rev().find(|g| group.is_multiple_of(*g)).unwrap_or(1)
}

/// The split-K merge: a wide workgroup, so its block loop runs in parallel; `unrotate`
/// (AURA caches) turns the merged row back from the rotated V domain.
pub fn merge_key(v: Variant, head_dim: usize, unrotate: bool) -> PipelineKey {
    PipelineKey {
        kernel: Kernel::AttnMerge,
        weight: None,
        variant: v,
        consts: vec![("WG", WG_WIDE.max(head_dim as u32)), ("HD", head_dim as u32), ("UNROTATE", unrotate as u32)],
    }
}

/// Workgroups per query head of `attn_merge_oproj` for Wo's `rows` and `head_dim`: each
/// takes as many passes of WG_WIDE / 8 rows (its 8 lanes per row; one round of loads) as
/// its lanes' sums (WG_WIDE floats a pass) fit beside the rest of its workgroup memory in
/// WebGPU's 16 KiB: the reductions' and the merge's 2 x 16 bytes per thread and a ticket,
/// the merged row's 4 x head_dim. 7 passes at head_dim 64 to 192, 6 at 256 (`wgsl_validate`
/// checks every key's total).
pub fn merge_oproj_split(rows: usize, head_dim: usize) -> u32 {
    let wg = WG_WIDE as usize;
    let other = wg * (16 + 16) + 4 + 4 * head_dim;
    let passes_max = (16384 - other) / (4 * wg);
    rows.div_ceil(wg / 8).div_ceil(passes_max) as u32
}

/// Whether `attn_merge_oproj` serves `head_dim`: its 8 lanes per row take whole units (8
/// weights) of a head's slice, in a workgroup of WG_WIDE threads.
pub fn merge_oproj_fits(head_dim: usize) -> bool {
    head_dim.is_multiple_of(64) && head_dim <= WG_WIDE as usize
}

/// The split-K merge with the output projection folded in (one-token steps): Wo of type
/// `wo_ty` is [rows][n_heads head_dim]; grid x = n_heads * merge_oproj_split(rows).
pub fn merge_oproj_key(
    v: Variant,
    head_dim: usize,
    unrotate: bool,
    wo_ty: WeightType,
    n_heads: usize,
    rows: usize,
) -> PipelineKey {
    assert!(merge_oproj_fits(head_dim), "attn_merge_oproj needs head_dim 64, 128, 192 or 256");
    PipelineKey {
        kernel: Kernel::AttnMergeOproj,
        weight: Some(wo_ty),
        variant: v,
        consts: vec![
            ("WG", WG_WIDE.max(head_dim as u32)),
            ("HD", head_dim as u32),
            ("UNROTATE", unrotate as u32),
            ("K", (n_heads * head_dim) as u32),
            ("ROW_BYTES", row_bytes(wo_ty, n_heads * head_dim)),
            ("SLICE_BYTES", row_bytes(wo_ty, head_dim)),
            ("NH", n_heads as u32),
            ("ROWS", rows as u32),
            ("SPLIT", merge_oproj_split(rows, head_dim)),
        ],
    }
}

pub fn silu_mul_key(v: Variant) -> PipelineKey {
    PipelineKey { kernel: Kernel::SiluMul, weight: None, variant: v, consts: vec![("WG", WG_WIDE)] }
}

/// Threads of the AURA kernels; also the token tile of attn_decode_aura.
pub const WG_AURA: u32 = 64;
// Key centering's fit spans one attention tile (`aura_centering_cx`, `rope_table_gpu`).
const _: () = assert!(crate::kv::centering::FIT_TILE == WG_AURA as usize);

pub fn kv_encode_key(v: Variant, head_dim: usize) -> PipelineKey {
    PipelineKey {
        kernel: Kernel::KvEncodeAura,
        weight: None,
        variant: v,
        consts: vec![("WG", WG_AURA), ("HD", head_dim as u32)],
    }
}

pub fn kv_dequant_key(v: Variant, head_dim: usize) -> PipelineKey {
    PipelineKey {
        kernel: Kernel::KvDequantAura,
        weight: None,
        variant: v,
        consts: vec![("WG", WG_AURA), ("HD", head_dim as u32)],
    }
}

/// WebGPU's guaranteed workgroup memory, the most a kernel may declare.
const WORKGROUP_BYTES: usize = 16384;

/// attn_decode_aura's workgroup arrays other than the key-centering coefficients, in f32
/// words: fw (G query rows, then the own K and V rows or ps, a vec4 per four heads and
/// row, whichever is longer), the two codebooks, the reductions' red4 (vec4 per thread),
/// the merge's mg_acc (vec4 per thread) and ticket; with the fused encode the
/// boundaries, the packed new rows and (G = 1) the 4-bit codebooks by index pair.
fn aura_attn_floats(head_dim: usize, group: usize, k_bits: u32, v_bits: u32, encode: bool) -> usize {
    let wg = WG_AURA as usize;
    let (cb, rw) = ((1usize << k_bits) + (1 << v_bits), |b: u32| crate::kv::scheme::row_words(head_dim, b));
    let enc = if encode { cb + rw(k_bits) + rw(v_bits) } else { 2 };
    // 4-bit codebooks by index pair (256 vec2s each; one-token steps, one head per
    // workgroup), else a vec2 placeholder.
    let pairs: usize = [k_bits, v_bits].iter().map(|&b| if b == 4 && group == 1 && encode { 512 } else { 2 }).sum();
    group * head_dim + (2 * head_dim).max(group.div_ceil(4) * 4 * wg) + cb + 4 * wg + 4 * wg + 1 + enc + pairs
}

/// Length of attn_decode_aura's workgroup array of key-centering coefficients (one vec2
/// per RoPE pair and query head): G * HD / 2 when it fits next to the kernel's other
/// workgroup arrays in 16 KiB, else 1 (the kernel then reads q and mu from memory).
pub fn aura_ab_len(head_dim: usize, group: usize, k_bits: u32, v_bits: u32, encode: bool) -> u32 {
    let floats = aura_attn_floats(head_dim, group, k_bits, v_bits, encode);
    let ab = group * head_dim / 2;
    // Two arrays of `ab` vec2s: the coefficients and their per-tile turn.
    if (floats + 4 * ab) * 4 <= WORKGROUP_BYTES {
        ab as u32
    } else {
        1
    }
}

/// Whether attn_decode_aura with `group` heads per workgroup can encode the step's new row
/// itself (ENC) within 16 KiB of workgroup memory (the centering coefficients left to
/// memory if need be).
pub fn aura_encode_fits(head_dim: usize, group: usize, k_bits: u32, v_bits: u32) -> bool {
    // (+ 8: the two one-vec4 placeholders of the centering arrays, ab and abt)
    (aura_attn_floats(head_dim, group, k_bits, v_bits, true) + 8) * 4 <= WORKGROUP_BYTES
}

/// Key centering's exact RoPE pairs in attn_decode_aura (its `CX`, vec4s of two pairs):
/// the fit's (`kv::centering`, the slow pairs through one polynomial per query head and
/// tile) where a split-K block is exactly one tile (`block == WG_AURA`: the prologue sums
/// the fit for its only tile), the centering is on and `fit` allows; else every pair
/// exact (head_dim / 4). At least 2: the kernel keeps the summed fit in the exact pairs'
/// first two slots of its coefficient array, which a single tile no longer reads.
/// H100, aura4v4: +0.3 % at depth 4096 and 16384 against every pair exact (README, session 14).
pub fn aura_centering_cx(block: u32, head_dim: usize, theta: f32, centered: bool, fit: bool) -> u32 {
    let all = (head_dim / 4) as u32;
    if block != WG_AURA || !centered || !fit {
        return all;
    }
    (crate::kv::centering::centering_fit(theta, head_dim).exact_quads as u32).clamp(2, all)
}

/// Key centering's leading vec4s of RoPE pairs (two pairs each) whose mean is zero, so
/// attn_decode_aura's score term skips them (its `CZ`): with `slow_only`
/// (`Options::aura_centering_slow_pairs`) the pairs `kv::centering`'s fit leaves exact
/// (`centering_fit(..).exact_quads`, whatever the block: the mean is the layer's), whose
/// mean the session zeroes (`kv::centering::keep_slow_pairs`); else none. A RoPE whose
/// pairs all turn too fast for the fit keeps the mean on every pair (zeroing it all would
/// turn centering off).
pub fn aura_centering_cz(head_dim: usize, theta: f32, centered: bool, slow_only: bool) -> u32 {
    if !centered || !slow_only {
        return 0;
    }
    let q = crate::kv::centering::centering_fit(theta, head_dim).exact_quads;
    if q >= head_dim / 4 {
        0
    } else {
        q as u32
    }
}

/// Compressed attention for `group` query heads per workgroup (the GQA group, or 1);
/// `block == 0` is single-pass; `merge` (split-K): the last block of each workgroup's
/// heads to finish merges and rotates back; `encode` (one-token steps): an extra grid row
/// of the same dispatch after the blocks' (`Dispatch::extra_rows`), one workgroup per KV
/// head of it, encodes the new row into the cache (no kv_encode_aura dispatch; the attention
/// workgroups take every query's own row exact). `cx`: key centering's exact RoPE pairs
/// (`aura_centering_cx`); `cz`: its leading vec4s of pairs with a zero mean
/// (`aura_centering_cz`; always at most cx).
#[allow(clippy::too_many_arguments)]
pub fn attn_aura_key(
    v: Variant,
    head_dim: usize,
    group: usize,
    block: u32,
    merge: bool,
    k_bits: u32,
    v_bits: u32,
    encode: bool,
    cx: u32,
    cz: u32,
) -> PipelineKey {
    // The kernel keeps the fit's per-head sum in the exact pairs' first two vec4s.
    assert!((2..=(head_dim / 4) as u32).contains(&cx), "CX = {cx} exact RoPE vec4s at head dim {head_dim}");
    // The term's exact loop runs over vec4s CZ .. CX (every vec4 past CZ without the fit).
    assert!(cz <= cx, "CZ = {cz} zero-mean RoPE vec4s past CX = {cx}");
    let rw = |b: u32| crate::kv::scheme::row_words(head_dim, b) as u32;
    PipelineKey {
        kernel: Kernel::AttnDecodeAura,
        weight: None,
        variant: v,
        consts: vec![
            ("WG", WG_AURA),
            ("HD", head_dim as u32),
            ("G", group as u32),
            ("BLOCK", block),
            ("MERGE", (merge && block > 0) as u32),
            ("KB", k_bits),
            ("VB", v_bits),
            ("RWK", rw(k_bits)),
            ("RWV", rw(v_bits)),
            ("AB", aura_ab_len(head_dim, group, k_bits, v_bits, encode)),
            ("ENC", encode as u32),
            ("CX", cx),
            ("CZ", cz),
        ],
    }
}
