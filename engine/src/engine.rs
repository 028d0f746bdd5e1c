//! Engine (device + variant choice) and Model (config, tokenizer, GPU weights).
use std::sync::Arc;

use crate::error::Result;
use crate::gpu::{Caps, Gpu, Variant};
use crate::model::config::Config;
use crate::model::llama::GpuWeights;
use crate::model::tokenizer::Tokenizer;
use crate::model::HostModel;
use crate::options::Options;

/// One GPU device with its capabilities and kernel registry.
#[derive(Clone)]
pub struct Engine {
    pub gpu: Gpu,
}

impl Engine {
    pub async fn new(options: Options) -> Result<Engine> {
        Ok(Engine { gpu: Gpu::new(options).await? })
    }

    pub fn caps(&self) -> &Caps {
        &self.gpu.caps
    }

    pub fn variant(&self) -> Variant {
        self.gpu.variant
    }

    /// One line describing the adapter and the chosen kernel variants.
    pub fn describe(&self) -> String {
        let c = self.caps();
        let v = self.variant();
        format!(
            "{} ({}, {}) | kernels: {} arithmetic/KV, {} reductions",
            c.adapter,
            c.backend,
            c.driver.trim(),
            if v.f16 { "f16" } else { "f32" },
            if v.subgroups { "subgroup" } else { "workgroup-memory" }
        )
    }
}

pub struct ModelInner {
    pub config: Config,
    pub tokenizer: Tokenizer,
    pub weights: GpuWeights,
    pub gpu: Gpu,
    /// Mean post-RoPE key per (layer, kv head), calibrated once on first use by AURA sessions.
    pub key_means: std::sync::Mutex<Option<Arc<Vec<f32>>>>,
}

/// A model whose weights live on the GPU. Cheap to clone.
#[derive(Clone)]
pub struct Model(pub Arc<ModelInner>);

impl std::ops::Deref for Model {
    type Target = ModelInner;
    fn deref(&self) -> &ModelInner {
        &self.0
    }
}

impl Model {
    /// Upload a host model's weights (in their file formats) to the engine's device.
    pub fn new(engine: &Engine, host: HostModel) -> Result<Model> {
        let weights = GpuWeights::upload(&engine.gpu, &host)?;
        Ok(Model(Arc::new(ModelInner {
            config: host.config,
            tokenizer: host.tokenizer,
            weights,
            gpu: engine.gpu.clone(),
            key_means: std::sync::Mutex::new(None),
        })))
    }

    /// Load a GGUF file or HF directory and upload it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(engine: &Engine, path: &std::path::Path) -> Result<Model> {
        Model::new(engine, HostModel::load(path)?)
    }
}
