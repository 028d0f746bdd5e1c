// Rotate attention outputs back from the AURA V domain, in place:
// o = diag(sV) H o~ / sqrt(d). Grid: x = query head, y = token t. consts: WG, HD
struct Params {
    n_heads: u32,
    // offset of the V signs in `consts`
    s_off: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> att: array<f32>;
@group(0) @binding(2) var<storage, read> consts: array<f32>;

var<workgroup> fw: array<f32, HD>;

@compute @workgroup_size(WG)
fn attn_unrotate(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = (wid.y * p.n_heads + wid.x) * HD;
    for (var i = lid; i < HD; i = i + WG) {
        fw[i] = att[row + i];
    }
    workgroupBarrier();
    fwht_rows(lid, 1u);
    let r = 1.0 / sqrt(f32(HD));
    for (var i = lid; i < HD; i = i + WG) {
        att[row + i] = fw[i] * r * consts[p.s_off + i];
    }
}
