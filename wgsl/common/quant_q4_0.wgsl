// Q4_0: 18-byte blocks of 32: f16 d, 16 bytes; element j < 16 is the low nibble of
// byte j, element j + 16 the high nibble. value = d * (q - 8).
fn load8(row_byte: u32, unit: u32) -> W8 {
    let b = row_byte + (unit >> 2u) * 18u;
    let d = ldf16(b);
    let u = unit & 3u;
    let o = b + 2u + (u & 1u) * 8u;
    let sh = (u >> 1u) * 4u;
    return W8(d * (nib4(ld32(o), sh) - 8.0), d * (nib4(ld32(o + 4u), sh) - 8.0));
}
