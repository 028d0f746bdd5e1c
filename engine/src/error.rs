//! One error type for the whole engine. Every GPU error names its kernel.
use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// Reading a file failed.
    Io { path: String, message: String },
    /// The model file is truncated, corrupt or inconsistent.
    Format(String),
    /// A tensor uses a storage type the engine cannot run.
    UnsupportedTensorType { tensor: String, ty: String },
    /// The model's architecture is not one the engine implements.
    UnknownArchitecture(String),
    /// A tensor the architecture needs is missing.
    MissingTensor(String),
    /// A tensor exists but its shape is not what the config implies.
    Shape { tensor: String, expected: Vec<u64>, found: Vec<u64> },
    /// Building or running the tokenizer failed.
    Tokenizer(String),
    /// Rendering the chat template failed.
    Template(String),
    /// No GPU adapter matched the request.
    NoAdapter(String),
    /// The adapter lacks a feature or limit that was asked for.
    Unsupported(String),
    /// A GPU operation failed; `kernel` names the kernel or stage.
    Gpu { kernel: String, message: String },
    /// More tokens than the session's KV capacity.
    ContextOverflow { needed: usize, capacity: usize },
    /// An option or argument is invalid.
    InvalidArgument(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, message } => write!(f, "cannot read {path}: {message}"),
            Error::Format(m) => write!(f, "invalid model file: {m}"),
            Error::UnsupportedTensorType { tensor, ty } => {
                write!(f, "tensor `{tensor}` has unsupported type {ty} (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)")
            }
            Error::UnknownArchitecture(a) => {
                write!(f, "unknown model architecture `{a}` (supported: llama)")
            }
            Error::MissingTensor(t) => write!(f, "model is missing tensor `{t}`"),
            Error::Shape { tensor, expected, found } => {
                write!(f, "tensor `{tensor}` has shape {found:?}, expected {expected:?}")
            }
            Error::Tokenizer(m) => write!(f, "tokenizer: {m}"),
            Error::Template(m) => write!(f, "chat template: {m}"),
            Error::NoAdapter(m) => write!(f, "no GPU adapter: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported on this adapter: {m}"),
            Error::Gpu { kernel, message } => write!(f, "GPU error in `{kernel}`: {message}"),
            Error::ContextOverflow { needed, capacity } => {
                write!(f, "context overflow: {needed} tokens do not fit in a KV cache of {capacity} tokens")
            }
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
