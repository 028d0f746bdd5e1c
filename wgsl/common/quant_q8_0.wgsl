// Q8_0: 34-byte blocks of 32: f16 scale d, 32 x i8. value = d * q.
fn load8(row_byte: u32, unit: u32) -> W8 {
    let b = row_byte + (unit >> 2u) * 34u;
    let d = ldf16(b);
    let o = b + 2u + (unit & 3u) * 8u;
    return W8(d * i8x4(ld32(o)), d * i8x4(ld32(o + 4u)));
}
