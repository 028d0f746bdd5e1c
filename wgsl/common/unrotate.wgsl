// `rows` merged attention rows in `fw` (vec4s; rotated V domain, normalized) turned back,
// o = diag(sV) H o~ / sqrt(d) (V signs at consts[HD..]), into att rows qh0 .. qh0 + rows.
// Needs fw, consts, att (vec4s) and fwht_rows. Uniform control flow, after fw is published.
fn unrotate_out(lid: u32, qh0: u32, rows: u32) {
    fwht_rows(lid, rows);
    let r = 1.0 / sqrt(f32(HD));
    for (var i = lid; i < rows * HD / 4u; i = i + WG) {
        let d = 4u * (i % (HD / 4u));
        let s = vec4<f32>(consts[HD + d], consts[HD + d + 1u], consts[HD + d + 2u], consts[HD + d + 3u]);
        att[qh0 * (HD / 4u) + i] = fw[i] * r * s;
    }
}
