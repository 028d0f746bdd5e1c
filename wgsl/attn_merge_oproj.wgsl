// Pass 2 of split-K attention with the output projection folded in (one-token decode
// steps). Each of query head h's SPLIT workgroups merges the head's partials
// (`merge_head`, common/merge.wgsl; UNROTATE: then turns the row back from the rotated V
// domain, see `orow`) and multiplies it by head h's columns of Wo for its
// share of the rows,
//   part[t][h][r] = sum_{d < HD} Wo[r, h HD + d] o[d]   (r < ROWS, the hidden size),
// then the token's last workgroup to finish adds every head's slice onto the residual, in
// head order (deterministic): x[t][r] += sum_h part[t][h][r]. This replaces the o
// projection's own dispatch (a mat-vec over the merged rows). Grid: x = head * SPLIT +
// share, y = token t; columns x >= NH * SPLIT only prefetch `pf` into L2.
// A share: SL lanes per row (each UPL consecutive units of its HD / 8, so a warp's loads
// cover few sectors), RPP rows per pass, PPW passes (as many as fit 16 KiB of workgroup
// memory: kernels::merge_oproj_split), every load in flight together, the lanes' sums added
// through workgroup memory once. Loop bounds are constants.
// consts: WG (= 256: kernels::merge_oproj_split), HD (a multiple of 64), UNROTATE, K (= NH
// HD, Wo's columns), ROW_BYTES, SLICE_BYTES (a head's HD columns of a row), NH, ROWS, SPLIT
struct Params {
    n_heads: u32,
    max_blocks: u32,
    // vec4 index of the partial o rows in att
    po_off: u32,
    // Wo's rows (the hidden size; also the residual's row stride) and first row in `wq`
    rows: u32,
    row_base: u32,
    // this dispatch's finished-head counter for token t: common/merge.wgsl's counter ctr0 + t
    ctr0: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> pml: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read_write> att: array<vec4<f32>>;
// The layer's AURA constants (UNROTATE), else a placeholder.
@group(0) @binding(3) var<storage, read> consts: array<f32>;
// The layer's weights that run after attention (common/prefetch.wgsl's prefetch_side); a
// one-word placeholder when off.
@group(0) @binding(4) var<storage, read> pf: array<u32>;
// Wo (the quant snippet's weights).
@group(0) @binding(5) var<storage, read> wq: array<u32>;
// The residual stream [T][rows], which the projection accumulates onto.
@group(0) @binding(6) var<storage, read_write> x: array<f32>;
// Per-head slices of the projection [T][n_heads][rows].
@group(0) @binding(7) var<storage, read_write> part: array<f32>;

var<workgroup> fw: array<vec4<f32>, HD / 4u>;
// UNROTATE: the row turned back (common/unrotate.wgsl's hadamard4, its V signs loaded
// before the merge) goes to the merge's mg_acc (common/merge.wgsl; free once merge_head
// returns), so the workgroup memory kernels::merge_oproj_split counts is unchanged.

// Vec4 k of the row the projection multiplies.
fn orow(k: u32) -> vec4<f32> {
    if (UNROTATE != 0u) {
        return mg_acc[k];
    }
    return fw[k];
}

const ROW_ITERS: u32 = (ROWS + WG - 1u) / WG;
const SL: u32 = 8u;
const UPL: u32 = HD / 8u / SL;
const RPP: u32 = WG / SL;
const PASSES: u32 = (ROWS + RPP - 1u) / RPP;
const PPW: u32 = (PASSES + SPLIT - 1u) / SPLIT;
var<workgroup> red: array<f32, PPW * WG>;

@compute @workgroup_size(WG)
fn attn_merge_oproj(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    if (wid.x >= NH * SPLIT) {
        // Never true at run time (step.zero is 0): keeps the prefetch loads live.
        if ((prefetch_side(wid, nwg, lid, NH * SPLIT) & step.zero) != 0u) {
            atomicOr(&pml[0], 1u);
        }
        return;
    }
    let t = wid.y;
    let h = wid.x / SPLIT;
    let pass0 = (wid.x % SPLIT) * PPW;
    let qh = t * NH + h;
    // Touch the head's slice of this thread's rows (lane l: the sector at 32 l bytes) before
    // the merge, so it is on its way from memory while that runs (kept live via step.zero).
    let lane = lid % SL;
    let rr = lid / SL;
    var touch = 0u;
    for (var i = 0u; i < PPW; i = i + 1u) {
        let rb = (p.row_base + min((pass0 + i) * RPP + rr, ROWS - 1u)) * ROW_BYTES + h * SLICE_BYTES;
        touch = touch | wq[(rb + min(32u * lane, SLICE_BYTES - 4u)) >> 2u];
    }
    // UNROTATE: this thread's V signs, loaded while the merge runs.
    var sg = vec4<f32>(0.0);
    if (UNROTATE != 0u && lid < HD / 4u) {
        sg = vsigns(lid);
    }
    let tot = merge_head(lid, qh, step.n_blocks);
    if (lid < HD / 4u) {
        fw[lid] = tot;
    }
    workgroupBarrier();
    if (UNROTATE != 0u) {
        if (lid < HD / 4u) {
            mg_acc[lid] = hadamard4(0u, lid) * sg;
        }
        workgroupBarrier();
    }
    // Head h's slice (its HD / 8 units of each row of Wo, from h HD / 8 on), rows past the
    // end clamped and their sums dropped.
    let z = bitcast<f32>(touch & step.zero);
    for (var i = 0u; i < PPW; i = i + 1u) {
        let rb = (p.row_base + min((pass0 + i) * RPP + rr, ROWS - 1u)) * ROW_BYTES;
        var a = z;
        for (var j = 0u; j < UPL; j = j + 1u) {
            let u = lane * UPL + j;
            let w = load8(rb, h * (HD / 8u) + u);
            a = a + dot(w.a, orow(2u * u)) + dot(w.b, orow(2u * u + 1u));
        }
        red[i * WG + lid] = a;
    }
    workgroupBarrier();
    for (var q = lid; q < PPW * RPP; q = q + WG) {
        let i = q / RPP;
        let r = (pass0 + i) * RPP + q % RPP;
        var a = 0.0;
        for (var l = 0u; l < SL; l = l + 1u) {
            a = a + red[i * WG + (q % RPP) * SL + l];
        }
        if (r < ROWS) {
            part[qh * ROWS + r] = a;
        }
    }
    // The token's last workgroup to finish sums the slices onto the residual.
    if (last_block(lid, p.ctr0 + t, NH * SPLIT)) {
        let p0 = t * NH * ROWS;
        for (var i = 0u; i < ROW_ITERS; i = i + 1u) {
            let r = lid + i * WG;
            let rc = min(r, ROWS - 1u);
            var a = 0.0;
            for (var hh = 0u; hh < NH; hh = hh + 1u) {
                a = a + part[p0 + hh * ROWS + rc];
            }
            let o = (step.slot + t) * ROWS + rc;
            let xo = x[o];
            if (r < ROWS) {
                x[o] = xo + a;
            }
        }
    }
}
