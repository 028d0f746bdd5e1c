//! Shared test helpers: adapters for every variant, model paths, seeded data.
#![allow(dead_code)]
use aura::{Backend, Engine, Options};

/// Backends the suite must exercise: AURA_TEST_BACKENDS (comma list), default
/// "vulkan,gl" (lavapipe + llvmpipe in CI). A missing adapter fails the test.
pub fn test_backends() -> Vec<Backend> {
    let list = std::env::var("AURA_TEST_BACKENDS").unwrap_or_else(|_| "vulkan,gl".into());
    list.split(',').filter(|s| !s.trim().is_empty()).map(|s| Backend::parse(s.trim()).expect("AURA_TEST_BACKENDS")).collect()
}

pub fn engine(options: Options) -> Engine {
    let desc = format!("{options:?}");
    pollster::block_on(Engine::new(options)).unwrap_or_else(|e| {
        panic!("no adapter for {desc}: {e}\n(install mesa-vulkan-drivers libvulkan1 libegl-mesa0; set AURA_TEST_BACKENDS to choose backends)")
    })
}

/// Every variant each test backend offers: f16 x subgroups where supported.
/// Panics when a backend has no adapter. Returns (label, engine).
pub fn variant_engines() -> Vec<(String, Engine)> {
    let mut out = Vec::new();
    for b in test_backends() {
        let base = engine(Options { backend: Some(b), ..Options::default() });
        let caps = base.caps().clone();
        for f16 in [false, true] {
            for sg in [false, true] {
                if (f16 && !caps.has_f16) || (sg && !caps.has_subgroups) {
                    continue;
                }
                let e = engine(Options { backend: Some(b), f16: Some(f16), subgroups: Some(sg), ..Options::default() });
                out.push((format!("{b:?}/{}/{}", if f16 { "f16" } else { "f32" }, if sg { "subgroup" } else { "workgroup" }), e));
            }
        }
    }
    assert!(!out.is_empty(), "no test engines");
    out
}

/// The default GGUF: AURA_MODEL must point at SmolLM2-135M-Instruct.Q4_1.gguf.
pub fn model_path() -> std::path::PathBuf {
    std::env::var("AURA_MODEL")
        .unwrap_or_else(|_| panic!("AURA_MODEL is not set: point it at SmolLM2-135M-Instruct.Q4_1.gguf (.ci/run fetches it)"))
        .into()
}

/// Small deterministic generator (splitmix64) so failures print a reproducible seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.f32() * scale).collect()
    }
}
