//! A streaming safetensors writer: the header is built from the tensor list up front (the
//! format needs every offset before the data), then each tensor's bytes are appended in
//! order, so no tensor has to be in memory while another is written.

use crate::formats::DType;
use std::collections::BTreeMap;
use std::io::Write;

/// One tensor of the file, in data order.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamedTensor {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl StreamedTensor {
    pub fn byte_len(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product::<u64>() * self.dtype.size() as u64
    }
}

/// The 8-byte length and the JSON header (space-padded so the data starts 8-byte aligned,
/// as the reference writer does). Names must be unique and not `__metadata__`.
pub fn header_bytes(
    tensors: &[StreamedTensor],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, String> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let m = metadata
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        header.insert("__metadata__".into(), serde_json::Value::Object(m));
    }
    let mut offset = 0u64;
    for t in tensors {
        if t.name == "__metadata__" || header.contains_key(&t.name) {
            return Err(format!("tensor name `{}` is reserved or repeated", t.name));
        }
        let end = offset + t.byte_len();
        header.insert(
            t.name.clone(),
            serde_json::json!({
                "dtype": t.dtype.safetensors_name(),
                "shape": t.shape,
                "data_offsets": [offset, end],
            }),
        );
        offset = end;
    }
    let mut json =
        serde_json::to_vec(&serde_json::Value::Object(header)).map_err(|e| e.to_string())?;
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    Ok(out)
}

/// Writes the header; the caller then writes each tensor's bytes in list order.
pub fn write_header(
    out: &mut impl Write,
    tensors: &[StreamedTensor],
    metadata: &BTreeMap<String, String>,
) -> std::io::Result<u64> {
    let h = header_bytes(tensors, metadata).map_err(std::io::Error::other)?;
    out.write_all(&h)?;
    Ok(h.len() as u64)
}
