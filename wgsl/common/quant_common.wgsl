// Weight access shared by every storage type. Weights are the file's bytes viewed
// as u32 words (`wq`, declared by the kernel). A "unit" is 8 consecutive elements
// of a row; load8(row_byte, unit) dequantizes one unit to f32.
// Units per thread when WG threads share a row's K / 8 units.
const UNIT_ITERS: u32 = (K / 8u + WG - 1u) / WG;

struct W8 {
    a: vec4<f32>,
    b: vec4<f32>,
}

// u32 at an even byte offset (blocks of 18 or 34 bytes are only 2-byte aligned).
// Branch-free: both words are loaded unconditionally so a thread's loads issue together
// instead of one latency round per branch (a branch here made the decode matvec
// latency-bound). The word past a buffer's end reads as 0 under WebGPU's bounds checks.
fn ld32(o: u32) -> u32 {
    let i = o >> 2u;
    let lo = wq[i];
    let hi = wq[i + 1u];
    return select((lo >> 16u) | (hi << 16u), lo, (o & 3u) == 0u);
}

// f16 at an even byte offset.
fn ldf16(o: u32) -> f32 {
    let w = wq[o >> 2u];
    return unpack2x16float(select(w & 0xffffu, w >> 16u, (o & 2u) != 0u)).x;
}

// Four 4-bit values from bits sh, sh+8, sh+16, sh+24 of w.
fn nib4(w: u32, sh: u32) -> vec4<f32> {
    return vec4<f32>(f32((w >> sh) & 15u), f32((w >> (sh + 8u)) & 15u), f32((w >> (sh + 16u)) & 15u), f32((w >> (sh + 24u)) & 15u));
}

// Four signed bytes.
fn i8x4(w: u32) -> vec4<f32> {
    let s = bitcast<i32>(w);
    return vec4<f32>(f32(extractBits(s, 0u, 8u)), f32(extractBits(s, 8u, 8u)), f32(extractBits(s, 16u, 8u)), f32(extractBits(s, 24u, 8u)));
}

// Unit u (8 values) of four rows at byte offsets b, dotted with the 8 values (xa, xb).
fn dot4rows(b: vec4<u32>, u: u32, xa: vec4<f32>, xb: vec4<f32>) -> vec4<f32> {
    let w0 = load8(b.x, u);
    let w1 = load8(b.y, u);
    let w2 = load8(b.z, u);
    let w3 = load8(b.w, u);
    return vec4<f32>(
        dot(w0.a, xa) + dot(w0.b, xb),
        dot(w1.a, xa) + dot(w1.b, xb),
        dot(w2.a, xa) + dot(w2.b, xb),
        dot(w3.a, xa) + dot(w3.b, xb),
    );
}
