// L2 prefetch (`pf`, a binding of the kernel that includes this): threads load one word per
// 32-byte sector (the unit an NVIDIA L2 fills from memory) of their share of the buffer, so
// a later dispatch finds those weights in L2 instead of going to memory (a decode step's
// weights exceed L2 and each projection reads its matrix once). The loads are kept live
// through `step.zero`, a uniform that is always 0 but unknown to the compiler, so they cost
// nothing else. A one-word placeholder binding (prefetch off) makes this a single load.

// Sectors from word `first` on, every `stride` words: four loads per iteration, all in
// flight together, then the rest one by one; returns their OR.
fn prefetch_sectors(first: u32, stride: u32) -> u32 {
    let n = arrayLength(&pf);
    var a = 0u;
    var i = first;
    for (; i + 3u * stride < n; i = i + 4u * stride) {
        a = a | pf[i] | pf[i + stride] | pf[i + 2u * stride] | pf[i + 3u * stride];
    }
    for (; i < n; i = i + stride) {
        a = a | pf[i];
    }
    return a;
}

// The next kernel's weights, shared by every thread of the dispatch (the LM head loads
// layer 0's q|k|v for the next step): +0.0 at run time, added to the kernel's result.
fn prefetch_next(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> f32 {
    let threads = nwg.x * nwg.y * nwg.z * WG;
    let g = ((wid.z * nwg.y + wid.y) * nwg.x + wid.x) * WG + lid;
    return bitcast<f32>(prefetch_sectors(g * 8u, threads * 8u) & step.zero);
}

// Prefetch workgroups riding on another kernel's dispatch (dense or AURA attention, the
// AURA encoder, the split-K merge): grid columns x >= x0 (past the kernel's own) exist only to pull `pf` (the
// layer's weights that run after attention) into L2 while the kernel runs, so the
// projections that follow find them there and carry no memory round trip of their own.
// The columns of every grid row (y, z) share the buffer; returns what keeps the loads live.
fn prefetch_side(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, x0: u32) -> u32 {
    let cols = nwg.x - x0;
    let g = ((wid.z * nwg.y + wid.y) * cols + wid.x - x0) * WG + lid;
    return prefetch_sectors(g * 8u, cols * nwg.y * nwg.z * WG * 8u);
}
