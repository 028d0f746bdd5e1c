// In-place, unnormalized Walsh-Hadamard transform (Sylvester order) of `rows`
// consecutive rows of HD values in the kernel's workgroup array `fw`, all threads
// sharing the butterflies. Call from uniform control flow after `fw` is written and
// published (barrier); returns after a barrier.
fn fwht_rows(lid: u32, rows: u32) {
    for (var h = 1u; h < HD; h = h * 2u) {
        for (var q = lid; q < rows * (HD / 2u); q = q + WG) {
            let i = q % (HD / 2u);
            let j = (q / (HD / 2u)) * HD + (i / h) * 2u * h + (i % h);
            let a = fw[j];
            let b = fw[j + h];
            fw[j] = a + b;
            fw[j + h] = a - b;
        }
        workgroupBarrier();
    }
}
