//! safetensors: an 8-byte little-endian header length, a JSON header mapping each tensor
//! name to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the end of the
//! header) plus an optional `__metadata__` string map, then the raw little-endian data.
//! Every offset is checked against the file before a [`TensorStore`] is handed out, and the
//! writer replaces its target atomically so a failed write never leaves half a file.

use super::tensor_store::{DType, TensorInfo, TensorStore};
use crate::error::{Error, Result};
use crate::io::ByteSource;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The reference implementation refuses headers above 100 MB; so do we.
pub const MAX_HEADER_LEN: u64 = 100_000_000;
const METADATA_KEY: &str = "__metadata__";

/// Parses a safetensors dtype name.
pub fn parse_dtype(name: &str) -> Option<DType> {
    Some(match name {
        "F64" => DType::F64,
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "I64" => DType::I64,
        "I32" => DType::I32,
        "I16" => DType::I16,
        "I8" => DType::I8,
        "U8" => DType::U8,
        "BOOL" => DType::Bool,
        _ => return None,
    })
}

/// Whether `head` (at least the first 9 bytes) looks like a safetensors file of `file_len`
/// bytes: a plausible header length followed by `{`.
pub fn looks_like_safetensors(head: &[u8], file_len: u64) -> bool {
    if head.len() < 9 {
        return false;
    }
    let n = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
    (2..=MAX_HEADER_LEN).contains(&n) && n.saturating_add(8) <= file_len && head[8] == b'{'
}

/// Indexes a safetensors file; tensor bytes are not read.
pub fn load(source: Arc<dyn ByteSource>) -> Result<TensorStore> {
    let file = source.name().to_string();
    let err = |msg: String| Error::format(&file, msg);
    let len = source.len();
    if len < 8 {
        return Err(err(format!(
            "safetensors file is {len} bytes, too short for its 8-byte header length"
        )));
    }
    let n = u64::from_le_bytes(source.read_vec(0, 8)?.try_into().expect("8 bytes"));
    if n > MAX_HEADER_LEN {
        return Err(err(format!(
            "safetensors header length {n} is implausible (over {MAX_HEADER_LEN} bytes)"
        )));
    }
    if 8 + n > len {
        return Err(err(format!(
            "safetensors header length {n} runs past the end of the file ({len} bytes): truncated?"
        )));
    }
    let header = source.read_vec(8, n as usize)?;
    let Header(map) = serde_json::from_slice(&header).map_err(|e| {
        err(match e.classify() {
            serde_json::error::Category::Data => {
                format!("safetensors header is not a JSON object with unique keys: {e}")
            }
            _ => format!("safetensors header is not valid JSON: {e}"),
        })
    })?;
    let data_start = 8 + n;
    let data_len = len - data_start;
    let mut tensors = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    for (name, entry) in &map {
        if name == METADATA_KEY {
            let serde_json::Value::Object(m) = entry else {
                return Err(err("safetensors `__metadata__` is not an object".into()));
            };
            for (k, v) in m {
                // The format (and the reference reader) allows only string values.
                let serde_json::Value::String(text) = v else {
                    return Err(err(format!(
                        "safetensors `__metadata__` entry `{k}` is {v}, not a string"
                    )));
                };
                metadata.insert(k.clone(), text.clone());
            }
            continue;
        }
        let info = tensor_entry(name, entry, data_start, data_len).map_err(err)?;
        tensors.insert(name.clone(), info);
    }
    check_layout(&tensors, data_start, data_len).map_err(err)?;
    Ok(TensorStore::new(source, tensors, metadata))
}

/// The data of all tensors, ordered by offset, must tile the data section exactly, as the
/// reference reader requires: no two tensors share bytes, and no byte is unaccounted for.
fn check_layout(
    tensors: &BTreeMap<String, TensorInfo>,
    data_start: u64,
    data_len: u64,
) -> std::result::Result<(), String> {
    let mut spans: Vec<(u64, u64, &str)> = tensors
        .iter()
        .map(|(name, t)| (t.storage_start - data_start, t.storage_len, name.as_str()))
        .collect();
    spans.sort();
    let mut end = 0u64;
    for (begin, len, name) in spans {
        if begin != end {
            let how = if begin < end {
                "overlaps the tensor before it"
            } else {
                "leaves a gap before it"
            };
            return Err(format!(
                "tensor `{name}`: data_offsets begin at {begin} but the previous tensor ends at {end}: it {how}"
            ));
        }
        end = begin + len;
    }
    if end != data_len {
        return Err(format!(
            "tensors cover {end} bytes of the {data_len}-byte data section"
        ));
    }
    Ok(())
}

/// The header's top-level object, refusing a key given twice (serde_json would keep the
/// last silently, so two readers could see different tensors).
struct Header(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Header {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Header;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Header, A::Error> {
                let mut seen = HashSet::new();
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    if !seen.insert(k.clone()) {
                        return Err(serde::de::Error::custom(format!("key `{k}` appears twice")));
                    }
                    out.push((k, v));
                }
                Ok(Header(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Validates one header entry; the message names the tensor.
fn tensor_entry(
    name: &str,
    entry: &serde_json::Value,
    data_start: u64,
    data_len: u64,
) -> std::result::Result<TensorInfo, String> {
    let bad = |what: &str| format!("tensor `{name}`: {what}");
    let dtype_name = entry
        .get("dtype")
        .and_then(|d| d.as_str())
        .ok_or_else(|| bad("missing `dtype`"))?;
    let dtype =
        parse_dtype(dtype_name).ok_or_else(|| bad(&format!("unsupported dtype `{dtype_name}`")))?;
    let shape = entry
        .get("shape")
        .and_then(|s| s.as_array())
        .ok_or_else(|| bad("missing `shape`"))?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| bad("`shape` is not a list of non-negative integers"))?;
    let offsets = entry
        .get("data_offsets")
        .and_then(|o| o.as_array())
        .filter(|o| o.len() == 2)
        .and_then(|o| Some((o[0].as_u64()?, o[1].as_u64()?)))
        .ok_or_else(|| bad("`data_offsets` is not a pair of non-negative integers"))?;
    let (begin, end) = offsets;
    if begin > end {
        return Err(bad(&format!("data_offsets [{begin}, {end}] are reversed")));
    }
    if end > data_len {
        return Err(bad(&format!(
            "data_offsets [{begin}, {end}] run past the end of the data ({data_len} bytes): truncated?"
        )));
    }
    let bytes = shape
        .iter()
        .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| bad("shape size overflows"))?;
    if bytes != end - begin {
        return Err(bad(&format!(
            "shape {shape:?} of {dtype_name} needs {bytes} bytes but data_offsets [{begin}, {end}] hold {}",
            end - begin
        )));
    }
    Ok(TensorInfo {
        dtype,
        strides: TensorInfo::contiguous_strides(&shape),
        shape,
        offset: data_start + begin,
        storage_start: data_start + begin,
        storage_len: end - begin,
    })
}

/// Writes a safetensors file: `(name, dtype, shape, little-endian bytes)` per tensor, in
/// the given order, plus string metadata. The file appears complete or not at all.
pub fn write<B: AsRef<[u8]>>(
    path: &Path,
    tensors: &[(String, DType, Vec<usize>, B)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let file = path.display().to_string();
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let m: serde_json::Map<String, serde_json::Value> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        header.insert(METADATA_KEY.into(), serde_json::Value::Object(m));
    }
    let mut seen = HashSet::new();
    let mut offset = 0u64;
    for (name, dtype, shape, data) in tensors {
        if name == METADATA_KEY || !seen.insert(name.as_str()) {
            return Err(Error::Invalid(format!(
                "{file}: tensor name `{name}` is reserved or repeated"
            )));
        }
        let want = shape
            .iter()
            .try_fold(dtype.size(), |a, &d| a.checked_mul(d));
        let got = data.as_ref().len();
        if want != Some(got) {
            return Err(Error::Shape {
                file: file.clone(),
                key: name.clone(),
                got: vec![got],
                expected: vec![want.unwrap_or(usize::MAX)],
            });
        }
        let end = offset + got as u64;
        header.insert(
            name.clone(),
            serde_json::json!({
                "dtype": dtype.safetensors_name(),
                "shape": shape,
                "data_offsets": [offset, end],
            }),
        );
        offset = end;
    }
    let mut json = serde_json::to_vec(&serde_json::Value::Object(header))
        .map_err(|e| Error::Invalid(format!("{file}: cannot encode header: {e}")))?;
    // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    crate::io::AtomicFile::write_with(path, |w| {
        w.write_all(&(json.len() as u64).to_le_bytes())?;
        w.write_all(&json)?;
        for (_, _, _, data) in tensors {
            w.write_all(data.as_ref())?;
        }
        Ok(())
    })
}

/// [`write`] for f32 tensors: `(name, shape, values)`.
pub fn write_f32(
    path: &Path,
    tensors: &[(&str, &[usize], &[f32])],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let encoded: Vec<(String, DType, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, shape, values)| {
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name.to_string(), DType::F32, shape.to_vec(), bytes)
        })
        .collect();
    write(path, &encoded, metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemorySource;

    fn from_header(header: &str, data: &[u8]) -> Result<TensorStore> {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(data);
        load(Arc::new(MemorySource::new("m.safetensors", b)))
    }

    #[test]
    fn reads_tensors_and_metadata() {
        let h = r#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let mut data = Vec::new();
        data.extend_from_slice(&1.5f32.to_le_bytes());
        data.extend_from_slice(&(-2.0f32).to_le_bytes());
        data.extend_from_slice(&half::f16::from_f32(0.25).to_le_bytes());
        data.extend_from_slice(&half::f16::from_f32(3.0).to_le_bytes());
        let st = from_header(h, &data).unwrap();
        assert_eq!(st.metadata()["format"], "pt");
        assert_eq!(st.read_f32("a").unwrap(), [1.5, -2.0]);
        assert_eq!(st.read_f32("b").unwrap(), [0.25, 3.0]);
    }

    #[test]
    fn bad_headers_name_the_problem() {
        let cases = [
            (
                r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
                "run past the end",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                "needs 12 bytes",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#,
                "reversed",
            ),
            (
                r#"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}"#,
                "unsupported dtype",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
                "shape",
            ),
            (r#"{"a":{"dtype":"F32","shape":[1]}}"#, "data_offsets"),
            (r#"{"a":"#, "not valid JSON"),
            (r#"[1]"#, "not a JSON object"),
            // Stricter than serde_json alone, as the reference reader is.
            (
                r#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#,
                "key `a` appears twice",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#,
                "overlaps",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}}"#,
                "leaves a gap",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#,
                "cover 4 bytes of the 8-byte data section",
            ),
            (
                r#"{"__metadata__":{"k":5},"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#,
                "entry `k` is 5, not a string",
            ),
        ];
        for (h, want) in cases {
            let e = from_header(h, &[0u8; 8]).err().expect(h).to_string();
            assert!(e.contains(want) && e.contains("m.safetensors"), "{h}: {e}");
        }
        let short = load(Arc::new(MemorySource::new("m.safetensors", vec![1, 2, 3])));
        assert!(short.err().unwrap().to_string().contains("too short"));
        let mut big = 1_000u64.to_le_bytes().to_vec();
        big.extend_from_slice(b"{}");
        let e = load(Arc::new(MemorySource::new("m.safetensors", big))).err();
        assert!(e.unwrap().to_string().contains("truncated"));
    }

    #[test]
    fn write_round_trips_and_is_atomic() {
        let dir = std::env::temp_dir().join(format!("easel-st-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.safetensors");
        let meta = BTreeMap::from([("k".to_string(), "v".to_string())]);
        write_f32(
            &path,
            &[("x", &[2, 2], &[1.0, 2.0, 3.0, 4.0]), ("y", &[], &[5.0])],
            &meta,
        )
        .unwrap();
        let st = load(crate::io::MmapSource::open_arc(&path).unwrap()).unwrap();
        assert_eq!(st.read_f32("x").unwrap(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(st.read_f32("y").unwrap(), [5.0]);
        assert_eq!(st.info("y").unwrap().shape, Vec::<usize>::new());
        assert_eq!(st.metadata()["k"], "v");
        // A wrong byte count fails before anything is written; the old file survives.
        let bad = write(
            &path,
            &[("z".to_string(), DType::F32, vec![3], vec![0u8; 4])],
            &meta,
        );
        assert!(matches!(bad, Err(Error::Shape { .. })));
        assert!(load(crate::io::MmapSource::open_arc(&path).unwrap())
            .unwrap()
            .contains("x"));
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
