//! Per-layer KV cache and attention dispatches for every cache scheme:
//! dense, AURA-compressed (read directly) and the dequant-mirror A/B path.
use super::plan::{self, DecodePlan};
use crate::error::{Error, Result};
use crate::gpu::dispatch::{uniform, AsBinding, Dispatch, PerToken, Slice};
use crate::gpu::Gpu;
use crate::kernels::*;
use crate::kv::codebook::codebook;
use crate::kv::rotation::{signs, KvKind};
use crate::kv::scheme::{row_words, KvScheme};
use crate::model::config::{Config, RopeStyle};
use crate::model::llama::GpuMatrix;

/// Buffers shared by every layer's attention (activations [T][..], split partials).
pub struct Shared<'a> {
    pub gpu: &'a Gpu,
    pub config: &'a Config,
    pub scheme: KvScheme,
    pub mirror: bool,
    pub capacity: usize,
    /// A forced split block (None: the plan picks one per step).
    pub split_block: Option<u32>,
    /// How split-K merges (the plan picks per step in `MergeMode::Auto`).
    pub merge: plan::MergeMode,
    pub max_blocks: usize,
    /// The step's q [T][q_dim], k and v [T][kv_dim] rows: slices of `qkv`.
    pub q: &'a Slice,
    pub k: &'a Slice,
    pub v: &'a Slice,
    pub qkv: &'a wgpu::Buffer,
    /// Attention output [T][q_dim], then the split-K partial o rows at vec4 index `po_off`.
    pub att: &'a wgpu::Buffer,
    pub po_off: u32,
    /// Split-K (max, sum) partials, then one block counter per (token, head) at the end.
    pub pml: &'a wgpu::Buffer,
    pub rope_table: &'a wgpu::Buffer,
    /// Key means [n_layers][n_kv][hd] subtracted before encoding (AURA key centering).
    pub key_means: Option<&'a [f32]>,
    /// The one-word placeholder for a kernel's prefetch binding when it prefetches nothing.
    pub no_prefetch: &'a wgpu::Buffer,
    /// The residual stream [T][hidden], which a merge dispatch with the output projection
    /// folded in accumulates onto, and that merge's per-head slices [n_heads][hidden] (one
    /// token); its finished-workgroup counter for token t is common/merge.wgsl's counter
    /// `oproj_ctr0 + t` (past the attention kernels' per-head ones).
    pub x: &'a wgpu::Buffer,
    pub oproj_part: &'a wgpu::Buffer,
    pub oproj_ctr0: u32,
}

/// Dense attention over a dense (or mirror) cache: single pass, and split-K for each block
/// size and merge mode the plan can pick, with the merge dispatch when a mode needs it.
struct DenseOps {
    single: Dispatch,
    /// By (block, fused merge, one head per workgroup).
    splits: Vec<(u32, bool, bool, Dispatch)>,
    merge: Option<Dispatch>,
    /// The merge dispatch with the output projection folded in (one-token steps).
    merge_o: Option<Dispatch>,
}

enum Body {
    Dense(DenseOps),
    /// `single` and `splits` by whether their dispatch encodes the new row too (one-token
    /// steps, `Options::aura_fused_encode`; else `encode` runs first); `splits` by (the
    /// fused merge (without it, `merge` follows), one head per workgroup, encodes).
    Aura {
        encode: Dispatch,
        single: Vec<(bool, Dispatch)>,
        splits: Vec<(bool, bool, bool, Dispatch)>,
        /// The merge dispatch, with prefetch columns it runs only after the fused encode;
        /// and with the output projection folded in (one-token steps).
        merge: Option<Dispatch>,
        merge_o: Option<Dispatch>,
    },
    Mirror {
        encode: Dispatch,
        dequant: [Dispatch; 2],
        dense: DenseOps,
    },
}

pub struct LayerAttention {
    rope_kv: Dispatch,
    body: Body,
    /// The dense K cache [n_kv][capacity][hd] (dense scheme or mirror).
    dense_k: Option<wgpu::Buffer>,
    /// Where RoPE writes k and v (the dense caches, or placeholders when compressed), and
    /// whether it writes them.
    rope_targets: (wgpu::Buffer, wgpu::Buffer, bool),
}

/// Prefetch-only workgroups for a dispatch that loads `bytes` of weights into L2: each
/// thread (64 per workgroup) then loads about eight 32-byte sectors, two rounds of four
/// loads in flight; at least 64 and at most 2048 workgroups.
fn prefetch_groups(bytes: u64) -> u32 {
    (bytes / (32 * 64 * 4 * 2)).clamp(64, 2048) as u32
}

impl LayerAttention {
    /// `prefetch`: the layer's post-attention weights (`GpuLayer::post`), which the
    /// attention dispatch (dense, AURA, or the mirror's dense) loads into L2 with workgroups
    /// of its own; None: no prefetch. `wo`: the output projection, which one-token steps
    /// then fold into the split-K merge dispatch (`Options::fused_oproj`); None: it runs as a
    /// dispatch of its own after attention.
    pub async fn new(
        s: &Shared<'_>,
        layer: usize,
        prefetch: Option<&wgpu::Buffer>,
        wo: Option<&GpuMatrix>,
    ) -> Result<LayerAttention> {
        let (gpu, c) = (s.gpu, s.config);
        let v = gpu.variant;
        let st = wgpu::BufferUsages::STORAGE;
        let (nh, nkv, hd, cap) = (c.n_heads as u32, c.n_kv_heads as u32, c.head_dim, s.capacity);
        let kv_elem = if v.f16 { 2 } else { 4 };
        let dense_cache = !s.scheme.is_compressed() || s.mirror;
        // Dense cache [n_kv][capacity][hd] (the mirror when compressed).
        let (kc, vc) = if dense_cache {
            let size = (c.n_kv_heads * cap * hd * kv_elem) as u64;
            (Some(gpu.buffer("k_cache", size, st)?), Some(gpu.buffer("v_cache", size, st)?))
        } else {
            (None, None)
        };
        // Two placeholders: WebGPU forbids binding one buffer to two writable bindings.
        let (dummy_k, dummy_v) = (gpu.buffer("unused_k", 4, st)?, gpu.buffer("unused_v", 4, st)?);
        let (pf, pf_groups) = match prefetch {
            Some(b) => (b, prefetch_groups(b.size())),
            None => (s.no_prefetch, 0),
        };
        let rope_p = gpu.pipeline(&rope_kv_key(v, hd)).await?;
        let rope_params = uniform(
            gpu,
            RopeKvParams {
                n_heads: nh,
                n_kv_heads: nkv,
                capacity: cap as u32,
                halves: (c.rope_style == RopeStyle::Halves) as u32,
                write_cache: !s.scheme.is_compressed() as u32,
                _pad: [0; 3],
            },
        )?;
        let (kcb, vcb) = (kc.as_ref().unwrap_or(&dummy_k), vc.as_ref().unwrap_or(&dummy_v));
        let rope_kv = Dispatch::new(
            gpu,
            &rope_p,
            &[&rope_params, s.q, s.k, s.v, kcb, vcb, s.rope_table],
            [nh + nkv, 1, 1],
            PerToken::Axis(1),
        );
        let rope_targets = (kcb.clone(), vcb.clone(), !s.scheme.is_compressed());
        let scale = 1.0 / (hd as f32).sqrt();
        // Split-K merges: whichever the mode allows (the plan picks per step in Auto).
        let needs_dispatch = s.merge.allows(false);
        let merge_params =
            uniform(gpu, MergeParams { n_heads: nh, max_blocks: s.max_blocks as u32, po_off: s.po_off, _pad: 0 })?;
        // Only the compressed kernels' merge rotates back (and reads the AURA constants).
        let merge_p = if needs_dispatch { Some(gpu.pipeline(&merge_key(v, hd, !dense_cache)).await?) } else { None };
        // The merge with the output projection folded in (`wo`: one-token steps take it).
        let merge_o = match wo.filter(|_| needs_dispatch) {
            Some(m) => {
                let params = uniform(
                    gpu,
                    MergeOprojParams {
                        n_heads: nh,
                        max_blocks: s.max_blocks as u32,
                        po_off: s.po_off,
                        rows: m.rows as u32,
                        row_base: m.row_base as u32,
                        ctr0: s.oproj_ctr0,
                        _pad: [0; 2],
                    },
                )?;
                Some((m, params, gpu.pipeline(&merge_oproj_key(v, hd, !dense_cache, m.ty, c.n_heads, m.rows)).await?))
            }
            None => None,
        };
        // `pf_cols`: prefetch-only workgroups (AURA's deep contexts host the prefetch here).
        // Returns the merge dispatch and the one with the output projection folded in.
        let merge_of = |consts: &wgpu::Buffer, pf: &wgpu::Buffer, pf_cols: u32| {
            let merge = merge_p.as_ref().map(|mp| {
                let res: [&dyn AsBinding; 5] = [&merge_params, s.pml, s.att, consts, pf];
                Dispatch::new(gpu, mp, &res, [nh, 1, 1], PerToken::Axis(1)).prefetching(pf_cols)
            });
            let fold = merge_o.as_ref().map(|(m, params, mp)| {
                let res: [&dyn AsBinding; 8] = [params, s.pml, s.att, consts, pf, *m, s.x, s.oproj_part];
                let x = nh * merge_oproj_split(m.rows, hd);
                Dispatch::new(gpu, mp, &res, [x, 1, 1], PerToken::Axis(1)).prefetching(pf_cols)
            });
            (merge, fold)
        };
        // Query heads per workgroup: one (more workgroups, shorter serial work each) for the
        // shallow kernels (single-pass, fused-merge split: few tiles per head), or the whole
        // GQA group (K and V rows read once for its heads; dense: up to 4, see
        // dense_heads_per_workgroup) for the deep one (merge dispatch), unless forced; AURA's
        // one-token steps also run the merge dispatch with one head per workgroup (the plan
        // picks: see plan::COMPRESSED_HEAD_MAX_BLOCKS). AURA, H200, aura4v4, GPU loop tok/s,
        // per head / per group: depth 0 463 / 443, 1024 504 / 483, 4096 440 / 458, 16384
        // 332 / 420.
        let group = c.group();
        let forced_head = gpu.options.head_per_workgroup;
        let per_head = |shallow: bool| forced_head.unwrap_or(shallow);
        let dense_g = |shallow: bool| if per_head(shallow) { 1 } else { dense_heads_per_workgroup(group, hd) };
        // Dense split-K kernels for each (block, fused merge) the plan can pick.
        let (single_p, split_p) = if dense_cache {
            let mut splits = Vec::new();
            for fused in [true, false].into_iter().filter(|&f| s.merge.allows(f)) {
                let blocks = match s.split_block {
                    Some(b) => vec![b],
                    None if fused => plan::DENSE_FUSED_SPLIT_BLOCKS.to_vec(),
                    None => plan::DENSE_SPLIT_BLOCKS.to_vec(),
                };
                for b in blocks {
                    let g = dense_g(fused);
                    splits.push((b, fused, g, gpu.pipeline(&attn_key(v, hd, g, b, fused)).await?));
                }
                // (The plan's Split::per_head for dense is per_head(fused) too.)
            }
            let g = dense_g(true);
            (Some((g, gpu.pipeline(&attn_key(v, hd, g, 0, false)).await?)), Some(splits))
        } else {
            (None, None)
        };
        let dense_ops = |kc: &wgpu::Buffer,
                         vc: &wgpu::Buffer,
                         (merge, merge_o): (Option<Dispatch>, Option<Dispatch>)|
         -> Result<DenseOps> {
            let ap = AttnParams {
                n_heads: nh,
                group: group as u32,
                capacity: cap as u32,
                max_blocks: s.max_blocks as u32,
                scale,
                po_off: s.po_off,
                _pad: [0; 2],
            };
            let params = uniform(gpu, ap)?;
            let res: [&dyn AsBinding; 7] = [&params, s.q, kc, vc, s.att, s.pml, pf];
            let (single_p, split_p) =
                (single_p.as_ref().expect("dense pipelines"), split_p.as_ref().expect("dense pipelines"));
            let attn = |g: usize, p| {
                Dispatch::new(gpu, p, &res, [nh / g as u32, 1, 1], PerToken::Axis(2)).prefetching(pf_groups)
            };
            Ok(DenseOps {
                single: attn(single_p.0, &single_p.1),
                splits: split_p.iter().map(|(b, f, g, p)| (*b, *f, per_head(*f), attn(*g, p))).collect(),
                merge,
                merge_o,
            })
        };
        let (kb, vb) = match s.scheme {
            KvScheme::F16 => {
                // The merge's AURA-constants binding is unused for a dense cache.
                let merge = merge_of(&gpu.buffer("unused_consts", 4, st)?, s.no_prefetch, 0);
                let body = Body::Dense(dense_ops(kcb, vcb, merge)?);
                return Ok(LayerAttention { rope_kv, body, dense_k: kc, rope_targets });
            }
            KvScheme::Aura { k_bits, v_bits } => (k_bits as u32, v_bits as u32),
        };
        if hd % 64 != 0 || hd > 256 || !hd.is_power_of_two() {
            return Err(Error::Unsupported(format!("AURA KV cache needs a head_dim of 64, 128 or 256, not {hd}")));
        }
        // Layer constants: [K signs][V signs][K centroids][K boundaries][V centroids][V boundaries].
        let (cbk, cbv) = (codebook(kb), codebook(vb));
        let mut consts = signs(layer, KvKind::K, hd);
        consts.extend(signs(layer, KvKind::V, hd));
        let ck_off = consts.len() as u32;
        consts.extend(&cbk.centroids);
        let bk_off = consts.len() as u32;
        consts.extend(&cbk.boundaries);
        let cv_off = consts.len() as u32;
        consts.extend(&cbv.centroids);
        let bv_off = consts.len() as u32;
        consts.extend(&cbv.boundaries);
        let mu_off = consts.len() as u32;
        let per_layer = c.n_kv_heads * hd;
        let halves = (c.rope_style == RopeStyle::Halves) as u32;
        // Key centering's leading RoPE pairs with a zero mean (the slow-pairs-only mean):
        // every kernel that reads the mean then subtracts and adds back the same vector.
        let cz = aura_centering_cz(hd, c.rope_theta, s.key_means.is_some(), gpu.options.aura_centering_slow_pairs);
        if let Some(mu) = s.key_means {
            let mut m = mu[layer * per_layer..(layer + 1) * per_layer].to_vec();
            crate::kv::centering::keep_slow_pairs(&mut m, hd, cz as usize, halves != 0);
            consts.extend(&m);
        }
        let has_mu = s.key_means.is_some() as u32;
        let consts = gpu.buffer_init("aura_consts", bytemuck::cast_slice(&consts), st)?;
        // Packed rows: K [n_kv][cap][rwk] then V [n_kv][cap][rwv]; gammas K [n_kv][cap] then V.
        let (rwk, rwv) = (row_words(hd, kb), row_words(hd, vb));
        let rows = c.n_kv_heads * cap;
        let words = gpu.buffer("aura_words", (rows * (rwk + rwv) * 4) as u64, st)?;
        let gammas = gpu.buffer("aura_gamma", (2 * rows * kv_elem) as u64, st)?;
        let (v_word_off, v_gamma_off) = ((rows * rwk) as u32, rows as u32);
        let enc_p = gpu.pipeline(&kv_encode_key(v, hd)).await?;
        let enc = |bits: u32, rw: usize, word_off: u32, gamma_off: u32, s_off: u32, c_off: u32, b_off: u32| {
            KvEncodeParams {
                n_kv_heads: nkv,
                capacity: cap as u32,
                bits,
                row_words: rw as u32,
                word_off,
                gamma_off,
                s_off,
                c_off,
                b_off,
                mu_off,
                // Keys only (the K encoder is the one with s_off 0).
                has_mu: has_mu * (s_off == 0) as u32,
                halves,
            }
        };
        // One dispatch encodes K (x < n_kv) and V (x >= n_kv), each with its params.
        let params = uniform(
            gpu,
            [enc(kb, rwk, 0, 0, 0, ck_off, bk_off), enc(vb, rwv, v_word_off, v_gamma_off, hd as u32, cv_off, bv_off)],
        )?;
        // Where the encoder runs (multi-token steps, and single-pass ones unless the encode is
        // fused), it carries the L2 prefetch of the weights that follow attention: a short
        // dispatch, so the weights load while little else runs. Otherwise split-K carries it:
        // the merge dispatch (past COMPRESSED_FUSED_MAX_BLOCKS), or the attention dispatch
        // itself with the fused merge. The mirror path's dense attention carries its own.
        // H200, aura4v4, GPU loop tok/s at depth 0 / 4096 / 16384: prefetch on the encoder vs off 765 / 648 / 569 vs
        // 725 / 623 / 550; on the attention dispatch vs off (fused encode) 694 / 636 / 611 vs
        // 661 / 614 / 603.
        let (enc_pf, enc_pf_groups) = if s.mirror { (s.no_prefetch, 0) } else { (pf, pf_groups) };
        let res: [&dyn AsBinding; 8] = [&params, s.k, &words, &gammas, &consts, s.rope_table, s.v, enc_pf];
        let encode = Dispatch::new(gpu, &enc_p, &res, [2 * nkv, 1, 1], PerToken::Axis(1)).prefetching(enc_pf_groups);
        if s.mirror {
            let deq_p = gpu.pipeline(&kv_dequant_key(v, hd)).await?;
            let deq = |dense: &wgpu::Buffer,
                       bits: u32,
                       rw: usize,
                       word_off: u32,
                       gamma_off: u32,
                       s_off: u32,
                       c_off: u32|
             -> Result<Dispatch> {
                let params = uniform(
                    gpu,
                    KvDequantParams {
                        n_kv_heads: nkv,
                        capacity: cap as u32,
                        bits,
                        row_words: rw as u32,
                        word_off,
                        gamma_off,
                        s_off,
                        c_off,
                        mu_off,
                        has_mu: has_mu * (s_off == 0) as u32,
                        halves,
                        _pad: 0,
                    },
                )?;
                let res: [&dyn AsBinding; 6] = [&params, &words, &gammas, &consts, dense, s.rope_table];
                Ok(Dispatch::new(gpu, &deq_p, &res, [nkv, 1, 1], PerToken::Axis(1)))
            };
            let dequant =
                [deq(kcb, kb, rwk, 0, 0, 0, ck_off)?, deq(vcb, vb, rwv, v_word_off, v_gamma_off, hd as u32, cv_off)?];
            let merge = merge_of(&gpu.buffer("unused_consts", 4, st)?, s.no_prefetch, 0);
            let body = Body::Mirror { encode, dequant, dense: dense_ops(kcb, vcb, merge)? };
            return Ok(LayerAttention { rope_kv, body, dense_k: kc, rope_targets });
        }
        let g_of = |per_head: bool| if per_head { 1 } else { group };
        let ap = AttnAuraParams {
            n_heads: nh,
            capacity: cap as u32,
            max_blocks: s.max_blocks as u32,
            scale,
            v_word_off,
            v_gamma_off,
            ck_off,
            cv_off,
            mu_off,
            has_mu,
            halves,
            po_off: s.po_off,
            group: group as u32,
            k_off: (s.k.offset / 4) as u32,
            v_off: (s.v.offset / 4) as u32,
            bk_off,
            bv_off,
            _pad: [0; 3],
        };
        // One-token steps encode the new row inside attention wherever it fits: an extra
        // grid row of the attention dispatch, launched last (session 17: +1 % at 4096, +1.7 %
        // at 16384 against first), whose first n_kv workgroups
        // (one per KV head) encode and write it while the attention workgroups take each
        // query's own row exact from q|k|v (they never use the cache's copy, so nothing
        // waits for the encode). A grid row, not extra columns: those spread over every
        // block's row, and at 16384 the merge dispatch's 771 workgroups plus 257 no longer
        // fit one wave (650 against 716 tok/s). H200, GPU loop tok/s at depth 0 / 4096 / 16384, session 8,
        // fused / encoder dispatch: aura4v4 902 / 831 / 717 against 780 / 711 / 628, aura8v4
        // 890 / 799 / 692 against 785 / 701 / 610; session 7's encode inside the workgroup
        // holding the row (on its critical path), aura4v4: 855 / 800 / 718. Where the
        // encoder stays: V rows of 3 bits, which straddle words (aura3v3 fused / encoder:
        // 743 / 705 / 635 against 775 / 717 / 635).
        // Whether the encoding kernel fits for a workgroup shape (one head, or the group).
        let fits = |per_head: bool| aura_encode_fits(hd, g_of(per_head), kb, vb);
        // (V rows' groups of four indices never straddle a word)
        let v_whole = 32 % (4 * vb) == 0;
        // Forced on, it must fit every shape the session can run.
        let fits_all = match forced_head {
            Some(h) => fits(h),
            None => fits(true) && fits(false),
        };
        if gpu.options.aura_fused_encode == Some(true) && !fits_all {
            return Err(Error::Unsupported(format!(
                "the fused AURA encode does not fit 16 KiB of workgroup memory at head_dim {hd}, \
                 {group} heads per KV head, aura{kb}v{vb}"
            )));
        }
        // Whether one-token steps of this workgroup shape encode inside attention.
        let enc_for = |per_head: bool| gpu.options.aura_fused_encode.unwrap_or(fits(per_head) && v_whole);
        let params = uniform(gpu, ap)?;
        // `pf_cols`: with the fused encode and no merge dispatch after it, attention carries
        // the prefetch (see the encoder's note).
        let aura = |block: u32, fused: bool, per_head: bool, enc: bool| {
            let g = g_of(per_head);
            let cx = aura_centering_cx(block, hd, c.rope_theta, has_mu != 0, gpu.options.aura_centering_fit);
            let key = attn_aura_key(v, hd, g, block, fused, kb, vb, enc, cx, cz);
            let res: [&dyn AsBinding; 9] = [&params, s.qkv, &words, &gammas, &consts, s.att, s.pml, s.rope_table, pf];
            let pf_cols = if enc && (block == 0 || fused) { pf_groups } else { 0 };
            async move {
                let p = gpu.pipeline(&key).await?;
                let d = Dispatch::new(gpu, &p, &res, [nh / g as u32, 1, 1], PerToken::Axis(2))
                    .prefetching(pf_cols)
                    .extra_rows(enc as u32);
                Ok::<_, Error>(d)
            }
        };
        let single_head = per_head(true);
        let mut single = vec![(false, aura(0, false, single_head, false).await?)];
        if enc_for(single_head) {
            single.push((true, aura(0, false, single_head, true).await?));
        }
        let block = s.split_block.unwrap_or(plan::DEFAULT_COMPRESSED_SPLIT_BLOCK);
        let mut splits = Vec::new();
        for fused in [true, false].into_iter().filter(|&f| s.merge.allows(f)) {
            // Multi-token steps take per_head(fused); in MergeMode::Auto, one-token steps with
            // the merge dispatch either shape (see plan::COMPRESSED_HEAD_MAX_BLOCKS), unless
            // forced.
            let multi = per_head(fused);
            let both = forced_head.is_none() && !fused && s.merge == plan::MergeMode::Auto;
            let shapes: &[bool] = if both { &[true, false] } else { &[multi] };
            for &ph in shapes {
                let enc = enc_for(ph);
                if ph == multi || !enc {
                    splits.push((fused, ph, false, aura(block, fused, ph, false).await?));
                }
                if enc {
                    splits.push((fused, ph, true, aura(block, fused, ph, true).await?));
                }
            }
        }
        // The compressed kernels' outputs are in the rotated V domain: single-pass turns its
        // rows back itself, and the 2-pass merge does for split-K: with its prefetch columns
        // after the fused encode, without them after the encoder (which carried them).
        let (merge, merge_o) = merge_of(&consts, pf, pf_groups);
        let body = Body::Aura { encode, single, splits, merge, merge_o };
        Ok(LayerAttention { rope_kv, body, dense_k: None, rope_targets })
    }

    /// The k and v caches RoPE writes at each position (placeholders when compressed),
    /// and whether it writes them (a dense cache).
    pub fn rope_targets(&self) -> (&wgpu::Buffer, &wgpu::Buffer, bool) {
        (&self.rope_targets.0, &self.rope_targets.1, self.rope_targets.2)
    }

    /// The dense K cache, when the layer has one.
    pub fn dense_k_cache(&self) -> Option<&wgpu::Buffer> {
        self.dense_k.as_ref()
    }

    /// RoPE + cache write, then attention into `att`, for a step of `n` tokens;
    /// `rope_done`: q and k are already rotated and the dense cache written (RoPE fused
    /// into the q|k|v projection), so only the attention is recorded. `fold`: the output
    /// projection may run inside the merge dispatch (one-token steps, split-K with that
    /// dispatch, a session built with `wo`); returns whether it did.
    pub fn run(&self, pass: &mut wgpu::ComputePass<'_>, plan: DecodePlan, n: u32, rope_done: bool, fold: bool) -> bool {
        let fold = fold && n == 1;
        if !rope_done {
            self.rope_kv.run(pass, n);
        }
        match (&self.body, plan) {
            (Body::Dense(d), DecodePlan::Dense { split }) => d.run(pass, split, n, fold),
            (Body::Aura { encode, single, .. }, DecodePlan::CompressedSinglePass) => {
                let enc = n == 1 && single.iter().any(|(e, _)| *e);
                if !enc {
                    encode.run(pass, n);
                }
                single.iter().find(|(e, _)| *e == enc).expect("the single-pass kernel").1.run(pass, n);
                false
            }
            (Body::Aura { encode, splits, merge, merge_o, .. }, DecodePlan::CompressedTwoPass(sp)) => {
                let shape = |f: &bool, h: &bool| (*f, *h) == (sp.merge, sp.per_head);
                let enc = n == 1 && splits.iter().any(|(f, h, e, _)| *e && shape(f, h));
                if !enc {
                    encode.run(pass, n);
                }
                let (.., d) = splits
                    .iter()
                    .find(|(f, h, e, _)| shape(f, h) && *e == enc)
                    .expect("the plan picks a merge mode and workgroup shape the session built");
                d.run_with(pass, n, Some(sp.n_blocks));
                if sp.merge {
                    return false;
                }
                let (m, folded) = pick_merge(merge, merge_o, fold);
                m.run_prefetching(pass, n, enc);
                folded
            }
            (Body::Mirror { encode, dequant, dense }, DecodePlan::DequantMirror { split }) => {
                encode.run(pass, n);
                dequant.iter().for_each(|d| d.run(pass, n));
                dense.run(pass, split, n, fold)
            }
            (_, plan) => unreachable!("decode plan {plan:?} does not match the session's cache scheme"),
        }
    }
}

/// The merge dispatch a split-K step without the fused merge runs: the one with the output
/// projection folded in where `fold` (a one-token step that may fold) and the session built
/// it, else the plain one; and whether it folds.
fn pick_merge<'a>(merge: &'a Option<Dispatch>, merge_o: &'a Option<Dispatch>, fold: bool) -> (&'a Dispatch, bool) {
    match merge_o.as_ref().filter(|_| fold) {
        Some(m) => (m, true),
        None => (merge.as_ref().expect("a merge dispatch for split-K without the fused merge"), false),
    }
}

impl DenseOps {
    /// Returns whether the output projection ran too (see `LayerAttention::run`; `fold`: a
    /// one-token step that may fold it).
    fn run(&self, pass: &mut wgpu::ComputePass<'_>, split: Option<plan::Split>, n: u32, fold: bool) -> bool {
        match split {
            None => {
                self.single.run(pass, n);
                false
            }
            Some(sp) => {
                let (.., d) = self
                    .splits
                    .iter()
                    .find(|(b, f, h, _)| (*b, *f, *h) == (sp.block, sp.merge, sp.per_head))
                    .expect("the plan picks split blocks, merge modes and workgroup shapes the session built");
                d.run_with(pass, n, Some(sp.n_blocks));
                if sp.merge {
                    return false;
                }
                let (m, folded) = pick_merge(&self.merge, &self.merge_o, fold);
                m.run(pass, n);
                folded
            }
        }
    }
}
