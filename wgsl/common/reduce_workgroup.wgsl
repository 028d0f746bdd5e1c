// Workgroup-memory tree reductions (devices without subgroups). WG must be a power of two.
// Call from uniform control flow: they contain barriers. Every thread gets the result.
var<workgroup> red4: array<vec4<f32>, WG>;

// The sum without the trailing barrier: red4 may be written again only after the caller's
// next barrier.
fn wg_sum4_open(v: vec4<f32>, lid: u32) -> vec4<f32> {
    red4[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red4[lid] = red4[lid] + red4[lid + s];
        }
        workgroupBarrier();
    }
    return red4[0];
}

fn wg_sum4(v: vec4<f32>, lid: u32) -> vec4<f32> {
    let r = wg_sum4_open(v, lid);
    workgroupBarrier();
    return r;
}

fn wg_sum(v: f32, lid: u32) -> f32 {
    return wg_sum4(vec4<f32>(v, 0.0, 0.0, 0.0), lid).x;
}

fn wg_max4(v: vec4<f32>, lid: u32) -> vec4<f32> {
    red4[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red4[lid] = max(red4[lid], red4[lid + s]);
        }
        workgroupBarrier();
    }
    let r = red4[0];
    workgroupBarrier();
    return r;
}

fn wg_max(v: f32, lid: u32) -> f32 {
    return wg_max4(vec4<f32>(v), lid).x;
}

// Online-softmax statistics of scores v (per component; `valid` false: the thread's
// score takes no part): m = their max over the workgroup and s = the sum of exp(v - m)
// (the tree reductions; returns after a barrier).
struct MaxSum {
    m: vec4<f32>,
    s: vec4<f32>,
}

fn wg_max_sum4(v: vec4<f32>, valid: bool, lid: u32) -> MaxSum {
    let m = wg_max4(select(vec4<f32>(-3.0e38), v, valid), lid);
    return MaxSum(m, wg_sum4(select(vec4<f32>(0.0), exp(v - m), valid), lid));
}

// Three sums (the tree reductions one after the other; returns after a barrier).
struct Sum3 {
    a: vec4<f32>,
    b: vec4<f32>,
    c: vec4<f32>,
}

fn wg_sum4x3(a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, lid: u32) -> Sum3 {
    let sa = wg_sum4(a, lid);
    let sb = wg_sum4(b, lid);
    return Sum3(sa, sb, wg_sum4(c, lid));
}
