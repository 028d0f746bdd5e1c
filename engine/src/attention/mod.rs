pub mod layer;
pub mod plan;
