//! Plain f32 CPU twins of every kernel and of the whole forward: the test oracle.
pub mod aura;
pub mod forward;
pub mod ops;
pub mod quant;
