fn bf2(w: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
}

fn load8(row_byte: u32, unit: u32) -> W8 {
    let o = row_byte + unit * 16u;
    return W8(vec4<f32>(bf2(ld32(o)), bf2(ld32(o + 4u))), vec4<f32>(bf2(ld32(o + 8u)), bf2(ld32(o + 12u))));
}
