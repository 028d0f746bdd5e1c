// attn_decode_aura with the fused encode (ENC = 1; compose makes words and gammas
// read_write and adds this): store the new row of cache slot `row` (its packed K then V
// words in epk, gammas g) into the layer's cache. The kernel without it gets a stub, since
// a store into a read-only binding is invalid even where it never runs.
fn enc_store(row: u32, g: vec2<f32>, lid: u32) {
    for (var w = lid; w < RWK + RWV; w = w + WG) {
        if (w < RWK) {
            words[row * RWK + w] = atomicLoad(&epk[w]);
        } else {
            words[p.v_word_off + row * RWV + w - RWK] = atomicLoad(&epk[w]);
        }
    }
    if (lid == 0u) {
        gammas[row] = kv_t(g.x);
        gammas[p.v_gamma_off + row] = kv_t(g.y);
    }
}
