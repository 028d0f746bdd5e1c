// Subgroup reductions: reduce within each subgroup, then across subgroups through
// workgroup memory. Assumes invocations are laid out linearly across subgroups
// (local_invocation_index / subgroup_size is the subgroup index), as on every
// driver we run on for 1-D workgroups. Call from uniform control flow.
var<workgroup> red4: array<vec4<f32>, WG>;

// The sum without the trailing barrier: red4 may be written again only after the caller's
// next barrier.
fn wg_sum4_open(v: vec4<f32>, lid: u32) -> vec4<f32> {
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
    return t;
}

fn wg_sum4(v: vec4<f32>, lid: u32) -> vec4<f32> {
    let t = wg_sum4_open(v, lid);
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

// Online-softmax statistics of scores v (per component; `valid` false: the thread's
// score takes no part): m = their max over the workgroup and s = the sum of exp(v - m), in
// one exchange through workgroup memory (each subgroup's max and its sum of exp against
// it, rescaled to the common max). One barrier, none after: red4 may be written again only
// after the caller's next barrier.
struct MaxSum {
    m: vec4<f32>,
    s: vec4<f32>,
}

fn wg_max_sum4(v: vec4<f32>, valid: bool, lid: u32) -> MaxSum {
    let mw = subgroupMax(select(vec4<f32>(-3.0e38), v, valid));
    let sw = subgroupAdd(select(vec4<f32>(0.0), exp(v - mw), valid));
    let size = subgroupAdd(1u);
    let lane = subgroupExclusiveAdd(1u);
    let n = (WG + size - 1u) / size;
    // Maxima at 0 .., sums at WG / 2 .. (subgroups of two or more invocations).
    let s0 = WG / 2u;
    if (lane == 0u) {
        red4[lid / size] = mw;
        red4[s0 + lid / size] = sw;
    }
    workgroupBarrier();
    var r = MaxSum(vec4<f32>(-3.0e38), vec4<f32>(0.0));
    for (var i = 0u; i < n; i = i + 1u) {
        r.m = max(r.m, red4[i]);
    }
    for (var i = 0u; i < n; i = i + 1u) {
        r.s = r.s + red4[s0 + i] * exp(red4[i] - r.m);
    }
    return r;
}

// Three sums in one exchange (each subgroup's sums of a, b and c at red4[i], [n + i] and
// [2 n + i]: subgroups of three or more invocations). Returns after a barrier.
struct Sum3 {
    a: vec4<f32>,
    b: vec4<f32>,
    c: vec4<f32>,
}

fn wg_sum4x3(a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, lid: u32) -> Sum3 {
    let sa = subgroupAdd(a);
    let sb = subgroupAdd(b);
    let sc = subgroupAdd(c);
    let size = subgroupAdd(1u);
    let lane = subgroupExclusiveAdd(1u);
    let n = (WG + size - 1u) / size;
    if (lane == 0u) {
        red4[lid / size] = sa;
        red4[n + lid / size] = sb;
        red4[2u * n + lid / size] = sc;
    }
    workgroupBarrier();
    var r = Sum3(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var i = 0u; i < n; i = i + 1u) {
        r.a = r.a + red4[i];
        r.b = r.b + red4[n + i];
        r.c = r.c + red4[2u * n + i];
    }
    workgroupBarrier();
    return r;
}
