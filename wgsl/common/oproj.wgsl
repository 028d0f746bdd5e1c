// The o-projection folded into decode attention (OPROJ = 1): once head h of token t has
// its normalized output in `qs` (the kernel's query array, reused; published), its workgroup multiplies it
// by the head's HD columns of Wo (`wq`, rows from p.wo_base) into the contribution rows
// c[t][h] (OUT_ROWS values, vec4s in att at p.c_off). The token's last head to finish
// (counted at pml's tail, p.hc_off + t) adds the contributions to the residual x[t] in head
// order, so the sum is the same whichever head finishes last. Replaces the o-projection
// dispatch (x += Wo att). Needs WG, HD, K (= n_heads HD), ROW_BYTES, OUT_ROWS (a multiple
// of 4), the quant snippet (load8 over `wq`), att, pml, xres. Call from uniform control flow.
var<workgroup> ho_ticket: u32;

fn o_project(lid: u32, t: u32, h: u32) {
    let nq = OUT_ROWS / 4u;
    let crow = p.c_off + (t * p.n_heads + h) * nq;
    for (var i = lid; i < nq; i = i + WG) {
        let b = (vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u) + vec4<u32>(p.wo_base)) * ROW_BYTES;
        var acc = vec4<f32>(0.0);
        for (var j = 0u; j < HD / 8u; j = j + 1u) {
            acc = acc + dot4rows(b, h * (HD / 8u) + j, qs[2u * j], qs[2u * j + 1u]);
        }
        att[crow + i] = acc;
    }
    storageBarrier();
    let ci = arrayLength(&pml) - 1u - (p.hc_off + t);
    if (lid == 0u) {
        ho_ticket = atomicAdd(&pml[ci], 1u);
    }
    if (workgroupUniformLoad(&ho_ticket) + 1u == p.n_heads) {
        storageBarrier();
        let c0 = p.c_off + t * p.n_heads * nq;
        for (var i = lid; i < nq; i = i + WG) {
            var s = vec4<f32>(0.0);
            for (var hh = 0u; hh < p.n_heads; hh = hh + 1u) {
                s = s + att[c0 + hh * nq + i];
            }
            xres[t * nq + i] = xres[t * nq + i] + s;
        }
        if (lid == 0u) {
            atomicStore(&pml[ci], 0u);
        }
    }
}
