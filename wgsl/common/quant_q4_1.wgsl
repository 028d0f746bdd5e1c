// Q4_1: 20-byte blocks of 32: f16 d, f16 m, 16 bytes of nibbles (as Q4_0). value = d * q + m.
fn load8(row_byte: u32, unit: u32) -> W8 {
    let b = row_byte + (unit >> 2u) * 20u;
    // 20-byte blocks keep every field 4-byte aligned: plain word loads.
    let dm = unpack2x16float(wq[b >> 2u]);
    let u = unit & 3u;
    let o = (b + 4u + (u & 1u) * 8u) >> 2u;
    let sh = (u >> 1u) * 4u;
    return W8(dm.x * nib4(wq[o], sh) + dm.y, dm.x * nib4(wq[o + 1u], sh) + dm.y);
}
