//! Host-side tensors: raw bytes in their file format plus shape and storage type.
use crate::error::{Error, Result};

/// Storage type of a weight tensor, as it sits in the file and on the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightType {
    F32,
    F16,
    BF16,
    Q8_0,
    Q4_0,
    Q4_1,
}

impl WeightType {
    /// Map a ggml type id; anything else is an error naming the type and tensor.
    pub fn from_ggml(id: u32, tensor: &str) -> Result<Self> {
        Ok(match id {
            0 => WeightType::F32,
            1 => WeightType::F16,
            2 => WeightType::Q4_0,
            3 => WeightType::Q4_1,
            8 => WeightType::Q8_0,
            30 => WeightType::BF16,
            other => {
                return Err(Error::UnsupportedTensorType { tensor: tensor.to_string(), ty: ggml_type_name(other) })
            }
        })
    }

    /// Elements per block (1 for plain float types).
    pub fn block_elems(self) -> usize {
        match self {
            WeightType::F32 | WeightType::F16 | WeightType::BF16 => 1,
            WeightType::Q8_0 | WeightType::Q4_0 | WeightType::Q4_1 => 32,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            WeightType::F32 => 4,
            WeightType::F16 | WeightType::BF16 => 2,
            WeightType::Q8_0 => 34, // f16 d + 32 x i8
            WeightType::Q4_0 => 18, // f16 d + 16 bytes of nibbles
            WeightType::Q4_1 => 20, // f16 d + f16 m + 16 bytes of nibbles
        }
    }

    /// Bytes taken by `n` elements; errors when `n` is not a whole number of blocks.
    pub fn bytes_for(self, n: u64, tensor: &str) -> Result<u64> {
        let be = self.block_elems() as u64;
        if !n.is_multiple_of(be) {
            return Err(Error::Format(format!(
                "tensor `{tensor}`: {n} elements is not a multiple of the {self:?} block size {be}"
            )));
        }
        (n / be)
            .checked_mul(self.block_bytes() as u64)
            .ok_or_else(|| Error::Format(format!("tensor `{tensor}`: size overflows")))
    }

    pub fn name(self) -> &'static str {
        match self {
            WeightType::F32 => "F32",
            WeightType::F16 => "F16",
            WeightType::BF16 => "BF16",
            WeightType::Q8_0 => "Q8_0",
            WeightType::Q4_0 => "Q4_0",
            WeightType::Q4_1 => "Q4_1",
        }
    }

    pub const ALL: [WeightType; 6] =
        [WeightType::F32, WeightType::F16, WeightType::BF16, WeightType::Q8_0, WeightType::Q4_0, WeightType::Q4_1];
}

/// Human name of a ggml type id, for error messages.
pub fn ggml_type_name(id: u32) -> String {
    const NAMES: [&str; 31] = [
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
        "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16",
        "I32", "I64", "F64", "IQ1_M", "BF16",
    ];
    match NAMES.get(id as usize) {
        Some(n) => format!("{n} (ggml type {id})"),
        None => format!("ggml type {id}"),
    }
}

/// A weight tensor on the host. `dims` are in ggml order: `dims[0]` is the
/// contiguous (row) length, so a matrix `[rows][cols]` has `dims == [cols, rows]`.
#[derive(Clone, Debug)]
pub struct HostTensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: WeightType,
    pub data: Vec<u8>,
}

impl HostTensor {
    pub fn n_elems(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Row length (innermost dimension).
    pub fn cols(&self) -> usize {
        self.dims[0] as usize
    }

    /// Number of rows (product of the outer dimensions).
    pub fn rows(&self) -> usize {
        (self.n_elems() / self.dims[0].max(1)) as usize
    }

    /// Dequantize everything to f32 on the CPU (reference path).
    pub fn to_f32(&self) -> Vec<f32> {
        crate::reference::quant::dequantize(self.ty, &self.data, self.n_elems() as usize)
    }

    /// Check the shape against what the config implies.
    pub fn expect_dims(&self, expected: &[u64]) -> Result<()> {
        if self.dims != expected {
            return Err(Error::Shape {
                tensor: self.name.clone(),
                expected: expected.to_vec(),
                found: self.dims.clone(),
            });
        }
        Ok(())
    }
}

impl WeightType {
    /// The ggml type id (inverse of `from_ggml`).
    pub fn ggml_id(self) -> u32 {
        match self {
            WeightType::F32 => 0,
            WeightType::F16 => 1,
            WeightType::Q4_0 => 2,
            WeightType::Q4_1 => 3,
            WeightType::Q8_0 => 8,
            WeightType::BF16 => 30,
        }
    }
}
