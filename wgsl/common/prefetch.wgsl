// L2 prefetch of the weights the next kernel reads (`pf`, the last binding of the kernel
// that includes this): each thread loads one word per 32-byte sector (the unit an NVIDIA
// L2 fills from memory) of its share of the buffer, so the next dispatch finds its weights in L2 instead of going to memory (a
// decode step's weights exceed L2 and each projection reads its matrix once). The loads
// are folded into the kernel's result through `step.zero`, a uniform that is always 0 but
// unknown to the compiler, so they stay live and cost nothing else. A one-word
// placeholder binding (prefetch off, or no next kernel) makes this a single load.
fn prefetch_next(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> f32 {
    let n = arrayLength(&pf);
    let threads = nwg.x * nwg.y * nwg.z * WG;
    let g = ((wid.z * nwg.y + wid.y) * nwg.x + wid.x) * WG + lid;
    let stride = threads * 8u;
    var a = 0u;
    var i = g * 8u;
    // Four loads per iteration, all in flight together, then the rest one by one.
    for (; i + 3u * stride < n; i = i + 4u * stride) {
        a = a | pf[i] | pf[i + stride] | pf[i + 2u * stride] | pf[i + 3u * stride];
    }
    for (; i < n; i = i + stride) {
        a = a | pf[i];
    }
    // +0.0 at run time.
    return bitcast<f32>(a & step.zero);
}
