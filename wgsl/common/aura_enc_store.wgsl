// attn_decode_aura with the fused encode (ENC = 1; compose makes words and gammas
// read_write and adds this): store the new row of cache slot `row` (its K then V indices in
// fw rows 0 and 1, packed here a word per thread; gammas g) into the layer's cache. The
// kernel without it gets a stub, since a store into a read-only binding is invalid even
// where it never runs.
fn enc_store(row: u32, g: vec2<f32>, lid: u32) {
    for (var w = lid; w < RWK + RWV; w = w + WG) {
        if (w < RWK) {
            words[row * RWK + w] = enc_word(0u, KB, w);
        } else {
            words[p.v_word_off + row * RWV + w - RWK] = enc_word(1u, VB, w - RWK);
        }
    }
    if (lid == 0u) {
        gammas[row] = kv_t(g.x);
        gammas[p.v_gamma_off + row] = kv_t(g.y);
    }
}
