// Q4_1: 20-byte blocks of 32: f16 d, f16 m, 16 bytes of nibbles (as Q4_0). value = d * q + m.
fn load8(row_byte: u32, unit: u32) -> W8 {
    let b = row_byte + (unit >> 2u) * 20u;
    let d = ldf16(b);
    let m = ldf16(b + 2u);
    let u = unit & 3u;
    let o = b + 4u + (u & 1u) * 8u;
    let sh = (u >> 1u) * 4u;
    return W8(d * nib4(ld32(o), sh) + m, d * nib4(ld32(o + 4u), sh) + m);
}
