//! aura: LLM inference on wgpu with one set of WGSL kernels for every backend.
pub mod attention;
pub mod engine;
pub mod error;
pub mod gpu;
pub mod kernels;
pub mod kv;
pub mod model;
pub mod options;
pub mod reference;
pub mod sample;
pub mod session;
pub mod telemetry;

pub use engine::{Engine, Model};
pub use error::{Error, Result};
pub use model::HostModel;
pub use options::{AttentionPath, Backend, Options};
pub use sample::{Sampler, SamplerConfig};
pub use session::{Session, SessionOptions};
