// Greedy sampling on the GPU: next = argmax of the step's last logits row (first index on
// ties; NaN never wins; a row with no value above -3.4e38 gives 0). Writes tokens[step.slot]
// (the next step's input token) and ids[step.pos + step.n_tokens - 1] (the token chosen
// after that position), so decode steps can be queued without reading logits back.
// One workgroup. consts: WG
struct Params {
    vocab: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;

var<workgroup> bv: array<f32, WG>;
var<workgroup> bi: array<u32, WG>;

@compute @workgroup_size(WG)
fn argmax(@builtin(local_invocation_index) lid: u32) {
    let row = (step.slot + step.n_tokens - 1u) * p.vocab;
    var best = -3.4e38;
    var idx = 0xffffffffu;
    for (var i = lid; i < p.vocab; i = i + WG) {
        let v = logits[row + i];
        if (v > best) {
            best = v;
            idx = i;
        }
    }
    bv[lid] = best;
    bi[lid] = idx;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            let v = bv[lid + s];
            let j = bi[lid + s];
            if (v > bv[lid] || (v == bv[lid] && j < bi[lid])) {
                bv[lid] = v;
                bi[lid] = j;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        var r = bi[0];
        if (r == 0xffffffffu) {
            r = 0u;
        }
        tokens[step.slot] = r;
        ids[step.pos + step.n_tokens - 1u] = r;
    }
}
