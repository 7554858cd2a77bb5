//! `TensorStore`: the common view of every weight file (`.ckpt`, `.pt`, `.safetensors`):
//! a name → tensor-location map over a `ByteSource`. Nothing is read until asked for, so a
//! 4 GB checkpoint costs only its index in memory.

use crate::error::{Error, Result};
use crate::io::ByteSource;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }
    /// Name as safetensors writes it.
    pub fn safetensors_name(self) -> &'static str {
        match self {
            DType::F64 => "F64",
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::I64 => "I64",
            DType::I32 => "I32",
            DType::I16 => "I16",
            DType::I8 => "I8",
            DType::U8 => "U8",
            DType::Bool => "BOOL",
        }
    }
    /// Decode a run of little-endian elements to f32 (integers convert by value). The dtype
    /// is matched once per run, not per element, so the float loops vectorise: loading a
    /// checkpoint converts about a billion elements.
    pub fn slice_to_f32(self, bytes: &[u8]) -> Vec<f32> {
        fn each<const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
            bytes
                .chunks_exact(N)
                .map(|c| f(c.try_into().expect("chunks of N bytes")))
                .collect()
        }
        match self {
            DType::F32 => each(bytes, f32::from_le_bytes),
            DType::F16 => each(bytes, |b| half::f16::from_le_bytes(b).to_f32()),
            DType::BF16 => each(bytes, |b: [u8; 2]| {
                f32::from_bits(u32::from(u16::from_le_bytes(b)) << 16)
            }),
            other => bytes
                .chunks_exact(other.size())
                .map(|c| other.to_f32(c))
                .collect(),
        }
    }
    /// Decode one little-endian element to f32 (integers convert by value).
    pub fn to_f32(self, b: &[u8]) -> f32 {
        match self {
            DType::F64 => f64::from_le_bytes(b[..8].try_into().unwrap()) as f32,
            DType::F32 => f32::from_le_bytes(b[..4].try_into().unwrap()),
            DType::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            DType::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            DType::I64 => i64::from_le_bytes(b[..8].try_into().unwrap()) as f32,
            DType::I32 => i32::from_le_bytes(b[..4].try_into().unwrap()) as f32,
            DType::I16 => i16::from_le_bytes([b[0], b[1]]) as f32,
            DType::I8 => b[0] as i8 as f32,
            DType::U8 | DType::Bool => b[0] as f32,
        }
    }
}

/// Where one tensor lives inside its file.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Strides in elements (torch semantics); contiguous row-major for safetensors.
    pub strides: Vec<usize>,
    /// Absolute byte offset in the file of the tensor's element [0, 0, ...].
    pub offset: u64,
    /// Byte range of the whole backing storage, to bound strided reads.
    pub storage_start: u64,
    pub storage_len: u64,
}

impl TensorInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_contiguous(&self) -> bool {
        let mut expect = 1usize;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != expect {
                return false;
            }
            expect *= d;
        }
        true
    }
    /// Contiguous row-major strides for `shape`.
    pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
        let mut strides = vec![1usize; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * shape[i + 1];
        }
        strides
    }
}

/// Every tensor of one file, by dotted name, plus string metadata (safetensors
/// `__metadata__`, or non-tensor scalars/strings of a pickle flattened to text).
pub struct TensorStore {
    source: Arc<dyn ByteSource>,
    tensors: BTreeMap<String, TensorInfo>,
    metadata: BTreeMap<String, String>,
}

impl TensorStore {
    pub fn new(
        source: Arc<dyn ByteSource>,
        tensors: BTreeMap<String, TensorInfo>,
        metadata: BTreeMap<String, String>,
    ) -> Self {
        Self {
            source,
            tensors,
            metadata,
        }
    }

    /// File name for messages.
    pub fn name(&self) -> &str {
        self.source.name()
    }
    pub fn source(&self) -> &Arc<dyn ByteSource> {
        &self.source
    }
    pub fn len(&self) -> usize {
        self.tensors.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(|s| s.as_str())
    }
    pub fn tensors(&self) -> &BTreeMap<String, TensorInfo> {
        &self.tensors
    }
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }
    pub fn get(&self, key: &str) -> Option<&TensorInfo> {
        self.tensors.get(key)
    }
    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }
    pub fn info(&self, key: &str) -> Result<&TensorInfo> {
        self.tensors.get(key).ok_or_else(|| Error::MissingKey {
            file: self.name().to_string(),
            key: key.to_string(),
        })
    }

    /// The tensor's elements in row-major order, converted to f32 (strided views resolved).
    pub fn read_f32(&self, key: &str) -> Result<Vec<f32>> {
        let info = self.info(key)?;
        let (dtype, bytes) = self.read_contiguous_bytes(key, info)?;
        Ok(dtype.slice_to_f32(&bytes))
    }

    /// The tensor's raw little-endian bytes in row-major order, in its stored dtype.
    pub fn read_raw(&self, key: &str) -> Result<(DType, Vec<u8>)> {
        let info = self.info(key)?;
        self.read_contiguous_bytes(key, info)
    }

    fn read_contiguous_bytes(&self, key: &str, info: &TensorInfo) -> Result<(DType, Vec<u8>)> {
        let es = info.dtype.size();
        let n = info.numel();
        if n == 0 {
            return Ok((info.dtype, Vec::new()));
        }
        let outside = || {
            Error::format(
                self.name(),
                format!("tensor `{key}` reaches outside its storage"),
            )
        };
        // Never more elements than the storage holds (a stride-0 view would otherwise ask
        // for an allocation of any size), and the highest element touched inside it.
        let total = (n as u64).checked_mul(es as u64).ok_or_else(outside)?;
        if total > info.storage_len {
            return Err(outside());
        }
        let max_elem = info
            .shape
            .iter()
            .zip(&info.strides)
            .try_fold(0usize, |acc, (&d, &s)| {
                (d - 1).checked_mul(s)?.checked_add(acc)
            })
            .ok_or_else(outside)?;
        let span = max_elem
            .checked_add(1)
            .and_then(|e| e.checked_mul(es))
            .ok_or_else(outside)?;
        let storage_end = info.storage_start.saturating_add(info.storage_len);
        if info.offset < info.storage_start
            || info
                .offset
                .checked_add(span as u64)
                .is_none_or(|e| e > storage_end)
        {
            return Err(outside());
        }
        if info.is_contiguous() {
            return Ok((info.dtype, self.source.read_vec(info.offset, n * es)?));
        }
        let raw = self.source.read_vec(info.offset, span)?;
        let mut out = Vec::with_capacity(n * es);
        let mut idx = vec![0usize; info.shape.len()];
        for _ in 0..n {
            let e: usize = idx.iter().zip(&info.strides).map(|(i, s)| i * s).sum();
            out.extend_from_slice(&raw[e * es..(e + 1) * es]);
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < info.shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        Ok((info.dtype, out))
    }
}

#[cfg(test)]
mod tests {
    use super::DType;

    /// Bit patterns with known values: 1.5 and -2 in f32, f16 (0x3E00, 0xC000) and bf16
    /// (0x3FC0, 0xC000); a 2-byte integer; an odd trailing byte is ignored like a short read.
    #[test]
    fn runs_decode_like_single_elements() {
        let f32_bytes: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(DType::F32.slice_to_f32(&f32_bytes), [1.5, -2.0]);
        assert_eq!(
            DType::F16.slice_to_f32(&[0x00, 0x3E, 0x00, 0xC0, 0x7F]),
            [1.5, -2.0]
        );
        assert_eq!(
            DType::BF16.slice_to_f32(&[0xC0, 0x3F, 0x00, 0xC0]),
            [1.5, -2.0]
        );
        assert_eq!(
            DType::I16.slice_to_f32(&[0xFE, 0xFF, 0x07, 0x00]),
            [-2.0, 7.0]
        );
        let nan = DType::BF16.slice_to_f32(&[0xC0, 0x7F]);
        assert!(nan[0].is_nan());
    }
}
