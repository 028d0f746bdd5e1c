pub mod plan;
pub mod layer;
