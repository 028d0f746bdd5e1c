//! Shared test helpers: adapters for every variant, model paths, seeded data.
#![allow(dead_code)]
pub mod gpu;
use aura::{Backend, Engine, Options};

/// Backends the suite must exercise: AURA_TEST_BACKENDS (comma list), default
/// "vulkan,gl" (lavapipe + llvmpipe in CI). A missing adapter fails the test.
pub fn test_backends() -> Vec<Backend> {
    let list = std::env::var("AURA_TEST_BACKENDS").unwrap_or_else(|_| "vulkan,gl".into());
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| Backend::parse(s.trim()).expect("AURA_TEST_BACKENDS"))
        .collect()
}

pub fn engine(options: Options) -> Engine {
    let desc = format!("{options:?}");
    pollster::block_on(Engine::new(options)).unwrap_or_else(|e| {
        panic!("no adapter for {desc}: {e}\n(install mesa-vulkan-drivers libvulkan1 libegl-mesa0; set AURA_TEST_BACKENDS to choose backends)")
    })
}

/// Serializes GPU work between the tests of one binary. wgpu's GL backend panics
/// ("Could not lock adapter context") when a thread waits more than 6 s for the EGL
/// context while another holds it for a cold llvmpipe shader compile (up to ~17 s seen).
pub fn gpu_lock() -> std::sync::MutexGuard<'static, ()> {
    static GPU: std::sync::Mutex<()> = std::sync::Mutex::new(());
    GPU.lock().unwrap_or_else(|e| e.into_inner())
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
                out.push((
                    format!("{b:?}/{}/{}", if f16 { "f16" } else { "f32" }, if sg { "subgroup" } else { "workgroup" }),
                    e,
                ));
            }
        }
    }
    assert!(!out.is_empty(), "no test engines");
    out
}

/// Where .ci/run and the examples keep fetched models.
pub fn cache_dir() -> std::path::PathBuf {
    if let Ok(d) = std::env::var("AURA_CACHE") {
        return d.into();
    }
    if let Ok(d) = std::env::var("XDG_CACHE_HOME") {
        return std::path::Path::new(&d).join("aura");
    }
    std::path::Path::new(&std::env::var("HOME").unwrap_or_else(|_| ".".into())).join(".cache").join("aura")
}

fn env_or_cache(var: &str, name: &str) -> std::path::PathBuf {
    if let Ok(p) = std::env::var(var) {
        return p.into();
    }
    let p = cache_dir().join(name);
    assert!(
        p.exists(),
        "{var} is not set and {} does not exist: run `bash .ci/run` (fetches the model and builds the HF twin) or set {var}",
        p.display()
    );
    p
}

/// The default GGUF (SmolLM2-135M-Instruct Q4_1): AURA_MODEL, else the cache.
pub fn model_path() -> std::path::PathBuf {
    env_or_cache("AURA_MODEL", "SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The HF directory converted from the default GGUF: AURA_HF_MODEL, else the cache.
pub fn hf_model_path() -> std::path::PathBuf {
    env_or_cache("AURA_HF_MODEL", "hf-smollm2")
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
