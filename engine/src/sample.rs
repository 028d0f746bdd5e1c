//! Token sampling on the host: greedy, temperature, top-k, top-p, seeded.

/// Sampling settings. `temperature == 0` is greedy.
#[derive(Clone, Debug)]
pub struct SamplerConfig {
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set whose probability mass reaches p (1.0 = all).
    pub top_p: f32,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig { temperature: 0.7, top_k: 40, top_p: 0.95, seed: 0x5eed }
    }
}

impl SamplerConfig {
    pub fn greedy() -> Self {
        SamplerConfig { temperature: 0.0, top_k: 1, top_p: 1.0, seed: 0 }
    }
}

pub struct Sampler {
    cfg: SamplerConfig,
    state: u64,
}

/// Index of the largest logit (lowest index on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// The `n` largest logits as (id, logit), best first (lower id first on ties).
pub fn top_n(logits: &[f32], n: usize) -> Vec<(u32, f32)> {
    let n = n.min(logits.len());
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(n + 1);
    if n == 0 {
        return best;
    }
    for (i, &v) in logits.iter().enumerate() {
        if best.len() == n && !(v > best[n - 1].1) {
            continue;
        }
        let at = best.partition_point(|&(_, b)| b >= v);
        best.insert(at, (i as u32, v));
        best.truncate(n);
    }
    best
}

impl Sampler {
    pub fn new(cfg: SamplerConfig) -> Sampler {
        let state = cfg.seed ^ 0x9e37_79b9_7f4a_7c15;
        Sampler { cfg, state }
    }

    /// splitmix64: small, seedable, reproducible across platforms.
    fn next_f32(&mut self) -> f32 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }

    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.cfg.temperature <= 0.0 || self.cfg.top_k == 1 {
            return argmax(logits);
        }
        let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
        idx.sort_unstable_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]).then(a.cmp(&b)));
        if self.cfg.top_k > 0 {
            idx.truncate(self.cfg.top_k);
        }
        let m = logits[idx[0] as usize];
        let mut p: Vec<f32> = idx.iter().map(|&i| ((logits[i as usize] - m) / self.cfg.temperature).exp()).collect();
        let total: f32 = p.iter().sum();
        p.iter_mut().for_each(|x| *x /= total);
        if self.cfg.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = p.len();
            for (i, &x) in p.iter().enumerate() {
                acc += x;
                if acc >= self.cfg.top_p {
                    keep = i + 1;
                    break;
                }
            }
            p.truncate(keep);
            let t: f32 = p.iter().sum();
            p.iter_mut().for_each(|x| *x /= t);
        }
        let r = self.next_f32();
        let mut acc = 0.0;
        for (i, &x) in p.iter().enumerate() {
            acc += x;
            if r < acc {
                return idx[i];
            }
        }
        idx[p.len() - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_n_matches_a_full_sort() {
        let mut state = 12345u64;
        for len in [1usize, 2, 7, 100, 4096] {
            let logits: Vec<f32> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    // Few distinct values, so ties are common.
                    ((state >> 33) % 17) as f32 - 8.0
                })
                .collect();
            for n in [0usize, 1, 3, 5, len + 2, usize::MAX] {
                let mut all: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect();
                all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                all.truncate(n);
                assert_eq!(top_n(&logits, n), all, "len {len} n {n}");
            }
            assert_eq!(top_n(&logits, 1)[0].0, argmax(&logits));
        }
    }

    #[test]
    fn greedy_and_seeded() {
        let logits = vec![0.1, 3.0, 2.9, -1.0];
        assert_eq!(Sampler::new(SamplerConfig::greedy()).sample(&logits), 1);
        let cfg = SamplerConfig { temperature: 1.0, top_k: 0, top_p: 1.0, seed: 7 };
        let a: Vec<u32> = {
            let mut s = Sampler::new(cfg.clone());
            (0..50).map(|_| s.sample(&logits)).collect()
        };
        let b: Vec<u32> = {
            let mut s = Sampler::new(cfg);
            (0..50).map(|_| s.sample(&logits)).collect()
        };
        assert_eq!(a, b, "same seed, same tokens");
        assert!(a.contains(&1) && a.contains(&2), "temperature 1 samples both top tokens: {a:?}");
        // top_k = 2 never yields tokens 0 or 3.
        let mut s = Sampler::new(SamplerConfig { temperature: 5.0, top_k: 2, top_p: 1.0, seed: 1 });
        assert!((0..200).all(|_| matches!(s.sample(&logits), 1 | 2)));
        // top_p small keeps only the best.
        let mut s = Sampler::new(SamplerConfig { temperature: 1.0, top_k: 0, top_p: 0.1, seed: 1 });
        assert!((0..50).all(|_| s.sample(&logits) == 1));
    }
}
