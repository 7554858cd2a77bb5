//! `TensorStore`: the common view of every weight file (`.ckpt`, `.pt`, `.safetensors`):
//! a name → tensor-location map over a `ByteSource`. Nothing is read until asked for, so a
//! 4 GB checkpoint costs only its index in memory.

use crate::error::{Error, Result};
use crate::io::ByteSource;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Bytes read per run when a contiguous tensor is streamed into f32 ([`TensorStore::read_f32`]):
/// small enough to stay in cache between the read and the conversion, large enough that a
/// source with a cost per read (the browser's `FileReaderSync`) makes few of them: a 2 GB
/// checkpoint takes about 2000 reads plus one per small tensor. Native loads took the same
/// time with runs of 256 KiB and 10 % longer with 4 MiB.
pub const READ_RUN_BYTES: usize = 1 << 20;

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
    /// Decode a run of little-endian elements to f32 (integers convert by value).
    pub fn slice_to_f32(self, bytes: &[u8]) -> Vec<f32> {
        let mut out = Vec::with_capacity(bytes.len() / self.size());
        self.extend_f32(bytes, &mut out);
        out
    }

    /// Append a run of little-endian elements, decoded to f32, to `out` (a trailing partial
    /// element is ignored). A run of floats aligned for its type converts as one slice (fp16
    /// through F16C, eight at a time, where the CPU has it): loading a checkpoint converts
    /// about a billion elements, always from aligned runs ([`TensorStore::read_f32`]). Any
    /// other run (integers, unaligned bytes, a big-endian host) goes element by element.
    pub fn extend_f32(self, bytes: &[u8], out: &mut Vec<f32>) {
        use half::slice::HalfFloatSliceExt;
        let n = bytes.len() / self.size();
        let bytes = &bytes[..n * self.size()];
        let start = out.len();
        if cfg!(target_endian = "little") {
            match self {
                DType::F32 => {
                    if let Ok(v) = bytemuck::try_cast_slice::<u8, f32>(bytes) {
                        out.extend_from_slice(v);
                        return;
                    }
                }
                DType::F16 => {
                    if let Ok(v) = bytemuck::try_cast_slice::<u8, half::f16>(bytes) {
                        out.resize(start + n, 0.0);
                        v.convert_to_f32_slice(&mut out[start..]);
                        return;
                    }
                }
                DType::BF16 => {
                    if let Ok(v) = bytemuck::try_cast_slice::<u8, half::bf16>(bytes) {
                        out.resize(start + n, 0.0);
                        v.convert_to_f32_slice(&mut out[start..]);
                        return;
                    }
                }
                _ => {}
            }
        }
        out.extend(bytes.chunks_exact(self.size()).map(|c| self.to_f32(c)));
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
    ///
    /// A contiguous tensor is read in runs of [`READ_RUN_BYTES`] and each run converted
    /// while it is still in cache, straight into the result: loading a checkpoint never
    /// holds a second, raw copy of a tensor (the largest, CLIP's token table, is 72 MiB in fp16), and the
    /// float runs convert with the CPU's vector instructions (F16C for fp16).
    pub fn read_f32(&self, key: &str) -> Result<Vec<f32>> {
        let info = self.info(key)?;
        let span = self.checked_span(key, info)?;
        if !info.is_contiguous() {
            return Ok(info.dtype.slice_to_f32(&self.gather_bytes(info, span)?));
        }
        let es = info.dtype.size();
        let mut out = Vec::with_capacity(info.numel());
        // Whole elements per run; a u64 buffer so that every element type is aligned in it.
        let run_bytes = (READ_RUN_BYTES / es * es).min(span);
        let mut buf = vec![0u64; run_bytes.div_ceil(8)];
        let mut done = 0usize;
        while done < span {
            let len = run_bytes.min(span - done);
            let bytes = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut buf)[..len];
            self.source.read_at(info.offset + done as u64, bytes)?;
            info.dtype.extend_f32(bytes, &mut out);
            done += len;
        }
        Ok(out)
    }

    /// The tensor's raw little-endian bytes in row-major order, in its stored dtype.
    pub fn read_raw(&self, key: &str) -> Result<(DType, Vec<u8>)> {
        let info = self.info(key)?;
        self.read_contiguous_bytes(key, info)
    }

    fn read_contiguous_bytes(&self, key: &str, info: &TensorInfo) -> Result<(DType, Vec<u8>)> {
        let span = self.checked_span(key, info)?;
        Ok((info.dtype, self.gather_bytes(info, span)?))
    }

    /// The `span` bytes of the tensor, checked by [`Self::checked_span`], gathered into
    /// row-major order.
    fn gather_bytes(&self, info: &TensorInfo, span: usize) -> Result<Vec<u8>> {
        let es = info.dtype.size();
        let n = info.numel();
        if n == 0 {
            return Ok(Vec::new());
        }
        if info.is_contiguous() {
            return self.source.read_vec(info.offset, n * es);
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
        Ok(out)
    }

    /// Bytes from the tensor's first element to just past its last one, after checking that
    /// they lie inside its storage (0 for an empty tensor); for a contiguous tensor, its size.
    fn checked_span(&self, key: &str, info: &TensorInfo) -> Result<usize> {
        let es = info.dtype.size();
        let n = info.numel();
        if n == 0 {
            return Ok(0);
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
        Ok(span)
    }
}

#[cfg(test)]
mod tests {
    use super::{DType, TensorInfo, TensorStore, READ_RUN_BYTES};
    use crate::io::MemorySource;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    /// A tensor a little over two read runs long, in each float type, at an odd (unaligned)
    /// and at an aligned file offset: every element comes back as the integer it encodes
    /// (-128..=127, exact in all three types), across the runs' seams.
    #[test]
    fn streamed_reads_decode_every_element_across_runs() {
        for dtype in [DType::F16, DType::BF16, DType::F32] {
            let n = 2 * READ_RUN_BYTES / dtype.size() + 37;
            let expected: Vec<f32> = (0..n).map(|i| (i % 256) as f32 - 128.0).collect();
            let encoded: Vec<u8> = expected
                .iter()
                .flat_map(|&v| match dtype {
                    DType::F16 => half::f16::from_f32(v).to_le_bytes().to_vec(),
                    DType::BF16 => ((v.to_bits() >> 16) as u16).to_le_bytes().to_vec(),
                    _ => v.to_le_bytes().to_vec(),
                })
                .collect();
            for offset in [1usize, 8] {
                let mut bytes = vec![0xAB; offset];
                bytes.extend_from_slice(&encoded);
                let info = TensorInfo {
                    dtype,
                    shape: vec![n],
                    strides: vec![1],
                    offset: offset as u64,
                    storage_start: offset as u64,
                    storage_len: encoded.len() as u64,
                };
                let store = TensorStore::new(
                    Arc::new(MemorySource::new("t.safetensors", bytes)),
                    BTreeMap::from([("w".to_string(), info)]),
                    BTreeMap::new(),
                );
                let got = store.read_f32("w").unwrap();
                assert_eq!(got.len(), n, "{dtype:?} at offset {offset}");
                let wrong = got.iter().zip(&expected).position(|(a, b)| a != b);
                assert_eq!(wrong, None, "{dtype:?} at offset {offset}");
            }
        }
    }

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
