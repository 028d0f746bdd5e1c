fn load8(row_byte: u32, unit: u32) -> W8 {
    let o = row_byte + unit * 16u;
    return W8(
        vec4<f32>(unpack2x16float(ld32(o)), unpack2x16float(ld32(o + 4u))),
        vec4<f32>(unpack2x16float(ld32(o + 8u)), unpack2x16float(ld32(o + 12u))),
    );
}
