// Pass 2 of split-K attention as a dispatch of its own: merge step.n_blocks partials per
// query head (`merge_head`, common/merge.wgsl). Grid: x = query head (one workgroup per
// head: a grid that left every workgroup at the same id would merge head 0 for all
// heads), y = token t of the chunk. UNROTATE (AURA caches): the merged row is in the
// rotated V domain and is turned back, o = diag(sV) H o~ / sqrt(d), with the V signs at
// consts[HD..]. The merged row goes to att[qh HD/4 ..], ahead of the partials.
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

var<workgroup> fw: array<f32, HD>;

@compute @workgroup_size(WG)
fn attn_merge(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let qh = wid.y * p.n_heads + wid.x;
    let tot = merge_head(lid, qh, step.n_blocks);
    if (UNROTATE == 0u) {
        if (lid < HD / 4u) {
            att[qh * (HD / 4u) + lid] = tot;
        }
        return;
    }
    if (lid < HD / 4u) {
        for (var c = 0u; c < 4u; c = c + 1u) {
            fw[4u * lid + c] = tot[c];
        }
    }
    workgroupBarrier();
    unrotate_out(lid, qh, 1u);
}
