// Pass 2 of split-K attention as a dispatch of its own: merge step.n_blocks partials per
// query head (`merge_head`, common/merge.wgsl). Grid: x = query head (one workgroup per
// head: a grid that left every workgroup at the same id would merge head 0 for all
// heads), y = token t of the chunk. UNROTATE (AURA caches): the merged row is in the
// rotated V domain and is turned back, o = diag(sV) H o~ / sqrt(d), with the V signs at
// consts[HD..]. The merged row goes to att[qh HD/4 ..], ahead of the partials. Grid
// columns x >= n_heads only prefetch `pf` into L2 (AURA's deep contexts: the merge is
// short, so the layer's post-attention weights load while it runs).
// consts: WG (a multiple of HD / 4), HD, UNROTATE
struct Params {
    n_heads: u32,
    max_blocks: u32,
    // vec4 index of the partial o rows in att
    po_off: u32,
    _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> pml: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read_write> att: array<vec4<f32>>;
// The layer's AURA constants (UNROTATE), else a placeholder.
@group(0) @binding(3) var<storage, read> consts: array<f32>;
// The layer's weights that run after attention (common/prefetch.wgsl's prefetch_side); a
// one-word placeholder when off.
@group(0) @binding(4) var<storage, read> pf: array<u32>;

var<workgroup> fw: array<vec4<f32>, HD / 4u>;

@compute @workgroup_size(WG)
fn attn_merge(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    if (wid.x >= p.n_heads) {
        // Never true at run time (step.zero is 0): keeps the prefetch loads live.
        if ((prefetch_side(wid, nwg, lid, p.n_heads) & step.zero) != 0u) {
            atomicOr(&pml[0], 1u);
        }
        return;
    }
    let qh = wid.y * p.n_heads + wid.x;
    var sg = vec4<f32>(0.0);
    if (UNROTATE != 0u) {
        sg = vsigns(lid);
    }
    let tot = merge_head(lid, qh, step.n_blocks);
    if (UNROTATE == 0u) {
        if (lid < HD / 4u) {
            att[qh * (HD / 4u) + lid] = tot;
        }
        return;
    }
    if (lid < HD / 4u) {
        fw[lid] = tot;
    }
    workgroupBarrier();
    unrotate_out(lid, qh, 1u, sg);
}
