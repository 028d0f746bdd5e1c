//! GGUF reader: header, metadata, tensor table. Every offset and size is
//! bounds-checked so a truncated or corrupt file is an error, never a panic.
use std::collections::BTreeMap;

use super::tensor::{HostTensor, WeightType};
use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"GGUF";
/// Default data alignment when `general.alignment` is absent (GGUF spec).
const DEFAULT_ALIGNMENT: u64 = 32;
/// Sanity bounds so a corrupt count cannot make us allocate the world.
const MAX_TENSORS: u64 = 1 << 20;
const MAX_KV: u64 = 1 << 20;
const MAX_DIMS: u32 = 4;

#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    Array(Vec<MetaValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl MetaValue {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v as u64),
            MetaValue::U16(v) => Some(v as u64),
            MetaValue::U32(v) => Some(v as u64),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) if v >= 0 => Some(v as u64),
            MetaValue::I16(v) if v >= 0 => Some(v as u64),
            MetaValue::I32(v) if v >= 0 => Some(v as u64),
            MetaValue::I64(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v as f64),
            MetaValue::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: dims[0] is contiguous.
    pub dims: Vec<u64>,
    pub ty: WeightType,
    /// Absolute byte offset in the file.
    pub offset: u64,
    pub size: u64,
}

#[derive(Clone, Debug)]
pub struct Gguf {
    pub version: u32,
    pub metadata: BTreeMap<String, MetaValue>,
    pub tensors: Vec<TensorInfo>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        let end = (self.pos as u64).checked_add(n).filter(|&e| e <= self.buf.len() as u64);
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end as usize];
                self.pos = end as usize;
                Ok(s)
            }
            None => Err(Error::Format(format!(
                "truncated while reading {what} at byte {} (file has {} bytes)",
                self.pos,
                self.buf.len()
            ))),
        }
    }
    fn u8(&mut self, w: &str) -> Result<u8> {
        Ok(self.take(1, w)?[0])
    }
    fn u16(&mut self, w: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2, w)?.try_into().unwrap()))
    }
    fn u32(&mut self, w: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, w)?.try_into().unwrap()))
    }
    fn u64(&mut self, w: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, w)?.try_into().unwrap()))
    }
    fn string(&mut self, w: &str) -> Result<String> {
        let n = self.u64(w)?;
        let b = self.take(n, w)?;
        String::from_utf8(b.to_vec()).map_err(|_| Error::Format(format!("{w} is not UTF-8")))
    }
    fn value(&mut self, ty: u32, key: &str, depth: u32) -> Result<MetaValue> {
        Ok(match ty {
            0 => MetaValue::U8(self.u8(key)?),
            1 => MetaValue::I8(self.u8(key)? as i8),
            2 => MetaValue::U16(self.u16(key)?),
            3 => MetaValue::I16(self.u16(key)? as i16),
            4 => MetaValue::U32(self.u32(key)?),
            5 => MetaValue::I32(self.u32(key)? as i32),
            6 => MetaValue::F32(f32::from_bits(self.u32(key)?)),
            7 => MetaValue::Bool(self.u8(key)? != 0),
            8 => MetaValue::Str(self.string(key)?),
            9 => {
                if depth > 2 {
                    return Err(Error::Format(format!("metadata `{key}`: arrays nested too deep")));
                }
                let ety = self.u32(key)?;
                let n = self.u64(key)?;
                // Each element takes at least one byte: a count beyond the file is corrupt.
                if n > (self.buf.len() - self.pos) as u64 {
                    return Err(Error::Format(format!("metadata `{key}`: array length {n} exceeds the file")));
                }
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.value(ety, key, depth + 1)?);
                }
                MetaValue::Array(v)
            }
            10 => MetaValue::U64(self.u64(key)?),
            11 => MetaValue::I64(self.u64(key)? as i64),
            12 => MetaValue::F64(f64::from_bits(self.u64(key)?)),
            t => return Err(Error::Format(format!("metadata `{key}`: unknown value type {t}"))),
        })
    }
}

impl Gguf {
    /// Parse the header, metadata and tensor table of a GGUF file held in memory.
    pub fn parse(buf: &[u8]) -> Result<Gguf> {
        let mut r = Reader { buf, pos: 0 };
        let magic = r.take(4, "magic")?;
        if magic != MAGIC {
            return Err(Error::Format(format!("not a GGUF file (magic {magic:02x?})")));
        }
        let version = r.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(Error::Format(format!("unsupported GGUF version {version}")));
        }
        let n_tensors = r.u64("tensor count")?;
        let n_kv = r.u64("metadata count")?;
        if n_tensors > MAX_TENSORS || n_kv > MAX_KV {
            return Err(Error::Format(format!("implausible counts: {n_tensors} tensors, {n_kv} metadata entries")));
        }
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = r.string("metadata key")?;
            let ty = r.u32(&key)?;
            let v = r.value(ty, &key, 0)?;
            metadata.insert(key, v);
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a,
                _ => return Err(Error::Format("general.alignment is not a power of two".into())),
            },
        };
        let mut infos = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let name = r.string("tensor name")?;
            let n_dims = r.u32(&name)?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(Error::Format(format!("tensor `{name}` has {n_dims} dimensions")));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(r.u64(&name)?);
            }
            let ty = r.u32(&name)?;
            let offset = r.u64(&name)?;
            infos.push((name, dims, ty, offset));
        }
        let data_start = (r.pos as u64).div_ceil(alignment) * alignment;
        let mut tensors = Vec::with_capacity(infos.len());
        for (name, dims, ty, offset) in infos {
            let ty = WeightType::from_ggml(ty, &name)?;
            let n = dims
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .ok_or_else(|| Error::Format(format!("tensor `{name}`: element count overflows")))?;
            let size = ty.bytes_for(n, &name)?;
            if dims[0] % ty.block_elems() as u64 != 0 {
                return Err(Error::Format(format!("tensor `{name}`: row not a whole block")));
            }
            if offset % alignment != 0 {
                return Err(Error::Format(format!("tensor `{name}`: offset {offset} unaligned")));
            }
            let abs = data_start.checked_add(offset);
            let end = abs.and_then(|a| a.checked_add(size));
            match (abs, end) {
                (Some(abs), Some(end)) if end <= buf.len() as u64 => {
                    tensors.push(TensorInfo { name, dims, ty, offset: abs, size })
                }
                _ => {
                    return Err(Error::Format(format!(
                        "tensor `{name}` ({size} bytes at data offset {offset}) runs past the end of the file ({} bytes): truncated?",
                        buf.len()
                    )))
                }
            }
        }
        Ok(Gguf { version, metadata, tensors })
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }

    pub fn req(&self, key: &str) -> Result<&MetaValue> {
        self.get(key).ok_or_else(|| Error::Format(format!("missing metadata `{key}`")))
    }

    pub fn req_u64(&self, key: &str) -> Result<u64> {
        self.req(key)?.as_u64().ok_or_else(|| Error::Format(format!("metadata `{key}` is not an unsigned integer")))
    }

    pub fn req_f64(&self, key: &str) -> Result<f64> {
        self.req(key)?.as_f64().ok_or_else(|| Error::Format(format!("metadata `{key}` is not a number")))
    }

    pub fn req_str(&self, key: &str) -> Result<&str> {
        self.req(key)?.as_str().ok_or_else(|| Error::Format(format!("metadata `{key}` is not a string")))
    }

    /// A metadata array of strings.
    pub fn str_array(&self, key: &str) -> Result<Vec<&str>> {
        let arr = self.req(key)?.as_array().ok_or_else(|| Error::Format(format!("`{key}` is not an array")))?;
        arr.iter().map(|v| v.as_str().ok_or_else(|| Error::Format(format!("`{key}` holds a non-string")))).collect()
    }

    /// Copy a tensor's bytes out of the file.
    pub fn tensor(&self, buf: &[u8], name: &str) -> Result<HostTensor> {
        let t = self.tensors.iter().find(|t| t.name == name).ok_or_else(|| Error::MissingTensor(name.to_string()))?;
        let data = buf[t.offset as usize..(t.offset + t.size) as usize].to_vec();
        Ok(HostTensor { name: t.name.clone(), dims: t.dims.clone(), ty: t.ty, data })
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.tensors.iter().any(|t| t.name == name)
    }
}

/// A tensor to write into a GGUF file.
pub struct WriteTensor<'a> {
    pub name: &'a str,
    /// ggml order (dims[0] contiguous).
    pub dims: &'a [u64],
    pub ggml_type: u32,
    pub data: &'a [u8],
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &MetaValue) {
    match v {
        MetaValue::U8(x) => out.push(*x),
        MetaValue::I8(x) => out.push(*x as u8),
        MetaValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => out.push(*x as u8),
        MetaValue::Str(s) => put_str(out, s),
        MetaValue::Array(a) => {
            let ty = a.first().map(value_type).unwrap_or(4);
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(&(a.len() as u64).to_le_bytes());
            a.iter().for_each(|x| put_value(out, x));
        }
        MetaValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

fn value_type(v: &MetaValue) -> u32 {
    match v {
        MetaValue::U8(_) => 0,
        MetaValue::I8(_) => 1,
        MetaValue::U16(_) => 2,
        MetaValue::I16(_) => 3,
        MetaValue::U32(_) => 4,
        MetaValue::I32(_) => 5,
        MetaValue::F32(_) => 6,
        MetaValue::Bool(_) => 7,
        MetaValue::Str(_) => 8,
        MetaValue::Array(_) => 9,
        MetaValue::U64(_) => 10,
        MetaValue::I64(_) => 11,
        MetaValue::F64(_) => 12,
    }
}

/// Serialize a GGUF v3 file (used for synthetic models in tests and benches).
pub fn write(metadata: &[(&str, MetaValue)], tensors: &[WriteTensor<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        put_str(&mut out, k);
        out.extend_from_slice(&value_type(v).to_le_bytes());
        put_value(&mut out, v);
    }
    let mut offset = 0u64;
    let mut offsets = Vec::new();
    for t in tensors {
        put_str(&mut out, t.name);
        out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        t.dims.iter().for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
        out.extend_from_slice(&t.ggml_type.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offsets.push(offset);
        offset = (offset + t.data.len() as u64).div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
    }
    let start = (out.len() as u64).div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
    out.resize(start as usize, 0);
    for (t, o) in tensors.iter().zip(offsets) {
        out.resize((start + o) as usize, 0);
        out.extend_from_slice(t.data);
    }
    out
}
