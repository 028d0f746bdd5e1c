fn load8(row_byte: u32, unit: u32) -> W8 {
    let i = (row_byte >> 2u) + unit * 8u;
    return W8(
        vec4<f32>(bitcast<f32>(wq[i]), bitcast<f32>(wq[i + 1u]), bitcast<f32>(wq[i + 2u]), bitcast<f32>(wq[i + 3u])),
        vec4<f32>(bitcast<f32>(wq[i + 4u]), bitcast<f32>(wq[i + 5u]), bitcast<f32>(wq[i + 6u]), bitcast<f32>(wq[i + 7u])),
    );
}
