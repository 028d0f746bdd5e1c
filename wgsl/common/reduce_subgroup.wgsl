// Subgroup reductions: reduce within each subgroup, then across subgroups through
// workgroup memory. Assumes invocations are laid out linearly across subgroups
// (local_invocation_index / subgroup_size is the subgroup index), as on every
// driver we run on for 1-D workgroups. Call from uniform control flow.
var<workgroup> red4: array<vec4<f32>, WG>;

fn wg_sum4(v: vec4<f32>, lid: u32) -> vec4<f32> {
    let s = subgroupAdd(v);
    let size = subgroupAdd(1u);
    let lane = subgroupExclusiveAdd(1u);
    if (lane == 0u) {
        red4[lid / size] = s;
    }
    workgroupBarrier();
    var t = vec4<f32>(0.0);
    let n = (WG + size - 1u) / size;
    for (var i = 0u; i < n; i = i + 1u) {
        t = t + red4[i];
    }
    workgroupBarrier();
    return t;
}

fn wg_sum(v: f32, lid: u32) -> f32 {
    return wg_sum4(vec4<f32>(v, 0.0, 0.0, 0.0), lid).x;
}

fn wg_max4(v: vec4<f32>, lid: u32) -> vec4<f32> {
    let s = subgroupMax(v);
    let size = subgroupAdd(1u);
    let lane = subgroupExclusiveAdd(1u);
    if (lane == 0u) {
        red4[lid / size] = s;
    }
    workgroupBarrier();
    var t = vec4<f32>(-3.0e38);
    let n = (WG + size - 1u) / size;
    for (var i = 0u; i < n; i = i + 1u) {
        t = max(t, red4[i]);
    }
    workgroupBarrier();
    return t;
}

fn wg_max(v: f32, lid: u32) -> f32 {
    return wg_max4(vec4<f32>(v), lid).x;
}
