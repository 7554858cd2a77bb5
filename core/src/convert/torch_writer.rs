//! Writes PyTorch zip checkpoints the way current `torch.save` lays them out, so that
//! `torch.load(..., weights_only=True)`, A1111 and Easel's own reader all accept them:
//!
//! ```text
//! <name>/data.pkl                 pickle protocol 2 (see torch_pickle)
//! <name>/.format_version          "1"
//! <name>/.storage_alignment       "64"
//! <name>/byteorder                "little"
//! <name>/data/0, data/1, ...      raw little-endian storages, one per tensor
//! <name>/version                  "3\n"
//! <name>/.data/serialization_id   40 decimal digits
//! ```
//!
//! Every entry is STORED (uncompressed) and its data starts at a multiple of 64 bytes,
//! reached by padding the local header with an extra field `FB` of `Z` bytes, as torch
//! does, so readers can map tensors straight from the file. ZIP64 records are written
//! when an offset, a size or the entry count outgrows the classic fields. Tensor data is
//! streamed: each entry's CRC is computed while its bytes go out and patched into its
//! local header afterwards.

use super::torch_pickle::{state_dict_pickle, PickleScalar, PickledTensor};
use std::io::{Seek, SeekFrom, Write};

const ALIGNMENT: u64 = 64;
const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
/// General-purpose flag bit 11: names are UTF-8.
const FLAG_UTF8: u16 = 0x0800;
const U32_MAX: u64 = 0xFFFF_FFFF;

/// A finished entry, for the central directory.
struct Written {
    name: String,
    crc: u32,
    size: u64,
    offset: u64,
}

/// The entry being streamed.
struct Open {
    name: String,
    header_offset: u64,
    expected: u64,
    written: u64,
    crc: crc32fast::Hasher,
}

/// Streams one checkpoint. Call [`TorchZipWriter::begin`] with the full tensor list (the
/// pickle comes first in the file), then for each tensor in order
/// [`start_tensor`](Self::start_tensor), [`write`](Self::write) its bytes,
/// [`end_tensor`](Self::end_tensor); then [`finish`](Self::finish).
pub struct TorchZipWriter<W: Write + Seek> {
    out: W,
    root: String,
    pos: u64,
    entries: Vec<Written>,
    tensors: Vec<PickledTensor>,
    next_tensor: usize,
    open: Option<Open>,
    serialization_id: String,
}

fn le16(v: u16) -> [u8; 2] {
    v.to_le_bytes()
}
fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// `root` as torch derives it from a file name: the stem, reduced to characters that are
/// safe in a zip entry name.
pub fn archive_root(file_stem: &str) -> String {
    let s: String = file_stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        "archive".to_string()
    } else {
        s
    }
}

impl<W: Write + Seek> TorchZipWriter<W> {
    /// Writes `data.pkl` and the small header entries. `out` must be positioned at 0.
    pub fn begin(
        out: W,
        root: &str,
        tensors: Vec<PickledTensor>,
        extras: &[(String, PickleScalar)],
    ) -> std::io::Result<Self> {
        let pickle = state_dict_pickle(&tensors, extras);
        // A stable id derived from the content, so the same input gives the same file.
        let digest = {
            use sha2::Digest;
            sha2::Sha256::digest(&pickle)
        };
        let id = u128::from_le_bytes(digest[..16].try_into().expect("16 bytes"));
        let mut w = Self {
            out,
            root: root.to_string(),
            pos: 0,
            entries: Vec::new(),
            tensors,
            next_tensor: 0,
            open: None,
            serialization_id: format!("{id:040}"),
        };
        w.small_entry("data.pkl", &pickle)?;
        w.small_entry(".format_version", b"1")?;
        w.small_entry(".storage_alignment", b"64")?;
        w.small_entry("byteorder", b"little")?;
        Ok(w)
    }

    /// The tensor the next [`start_tensor`](Self::start_tensor) opens.
    pub fn next_tensor(&self) -> Option<&PickledTensor> {
        self.tensors.get(self.next_tensor)
    }

    fn small_entry(&mut self, name: &str, data: &[u8]) -> std::io::Result<()> {
        self.start_entry(name, data.len() as u64)?;
        self.write(data)?;
        self.end_entry()
    }

    fn start_entry(&mut self, name: &str, size: u64) -> std::io::Result<()> {
        let full = format!("{}/{name}", self.root);
        let header_offset = self.pos;
        let zip64 = size >= U32_MAX;
        let mut h = Vec::with_capacity(30 + full.len() + 20 + ALIGNMENT as usize + 4);
        h.extend_from_slice(&le32(LOCAL_SIG));
        h.extend_from_slice(&le16(if zip64 { 45 } else { 20 }));
        h.extend_from_slice(&le16(FLAG_UTF8));
        h.extend_from_slice(&le16(0)); // method: stored
        h.extend_from_slice(&le16(0)); // time
        h.extend_from_slice(&le16(0x21)); // date: 1980-01-01
        h.extend_from_slice(&le32(0)); // crc, patched in end_entry
        let size32 = if zip64 { U32_MAX as u32 } else { size as u32 };
        h.extend_from_slice(&le32(size32));
        h.extend_from_slice(&le32(size32));
        h.extend_from_slice(&le16(full.len() as u16));
        let extra_len_at = h.len();
        h.extend_from_slice(&le16(0)); // extra length, set below
        h.extend_from_slice(full.as_bytes());
        let extra_start = h.len();
        if zip64 {
            h.extend_from_slice(&le16(0x0001));
            h.extend_from_slice(&le16(16));
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
        }
        // Alignment padding: field id "FB", then `pad` filler bytes.
        let before = header_offset + h.len() as u64 + 4;
        let pad = (ALIGNMENT - before % ALIGNMENT) % ALIGNMENT;
        h.extend_from_slice(b"FB");
        h.extend_from_slice(&le16(pad as u16));
        h.extend(std::iter::repeat_n(b'Z', pad as usize));
        let extra_len = (h.len() - extra_start) as u16;
        h[extra_len_at..extra_len_at + 2].copy_from_slice(&le16(extra_len));
        self.out.write_all(&h)?;
        self.pos += h.len() as u64;
        debug_assert_eq!(self.pos % ALIGNMENT, 0);
        self.open = Some(Open {
            name: full,
            header_offset,
            expected: size,
            written: 0,
            crc: crc32fast::Hasher::new(),
        });
        Ok(())
    }

    /// Opens the next tensor's storage entry `data/<index>`.
    pub fn start_tensor(&mut self) -> std::io::Result<&PickledTensor> {
        let index = self.next_tensor;
        let size = self
            .tensors
            .get(index)
            .map(|t| t.byte_len())
            .ok_or_else(|| std::io::Error::other("more tensors written than announced"))?;
        self.start_entry(&format!("data/{index}"), size)?;
        Ok(&self.tensors[index])
    }

    /// Appends bytes to the open entry.
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        let open = self
            .open
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no zip entry is open"))?;
        open.written += data.len() as u64;
        if open.written > open.expected {
            return Err(std::io::Error::other(format!(
                "zip entry `{}` got more than its {} bytes",
                open.name, open.expected
            )));
        }
        open.crc.update(data);
        self.out.write_all(data)?;
        self.pos += data.len() as u64;
        Ok(())
    }

    fn end_entry(&mut self) -> std::io::Result<()> {
        let open = self
            .open
            .take()
            .ok_or_else(|| std::io::Error::other("no zip entry is open"))?;
        if open.written != open.expected {
            return Err(std::io::Error::other(format!(
                "zip entry `{}` got {} of its {} bytes",
                open.name, open.written, open.expected
            )));
        }
        let crc = open.crc.finalize();
        self.out.seek(SeekFrom::Start(open.header_offset + 14))?;
        self.out.write_all(&le32(crc))?;
        self.out.seek(SeekFrom::Start(self.pos))?;
        self.entries.push(Written {
            name: open.name,
            crc,
            size: open.expected,
            offset: open.header_offset,
        });
        Ok(())
    }

    /// Closes the tensor entry opened by [`start_tensor`](Self::start_tensor).
    pub fn end_tensor(&mut self) -> std::io::Result<()> {
        self.end_entry()?;
        self.next_tensor += 1;
        Ok(())
    }

    /// Writes the trailing entries and the central directory; returns the writer and the
    /// file's length.
    pub fn finish(mut self) -> std::io::Result<(W, u64)> {
        if self.next_tensor != self.tensors.len() {
            return Err(std::io::Error::other(format!(
                "{} of {} tensors were written",
                self.next_tensor,
                self.tensors.len()
            )));
        }
        self.small_entry("version", b"3\n")?;
        let id = self.serialization_id.clone();
        self.small_entry(".data/serialization_id", id.as_bytes())?;
        let cd_offset = self.pos;
        let mut cd = Vec::new();
        for e in &self.entries {
            let mut extra = Vec::new();
            let big_size = e.size >= U32_MAX;
            let big_offset = e.offset >= U32_MAX;
            if big_size || big_offset {
                extra.extend_from_slice(&le16(0x0001));
                let n = if big_size { 16 } else { 0 } + if big_offset { 8 } else { 0 };
                extra.extend_from_slice(&le16(n));
                if big_size {
                    extra.extend_from_slice(&e.size.to_le_bytes());
                    extra.extend_from_slice(&e.size.to_le_bytes());
                }
                if big_offset {
                    extra.extend_from_slice(&e.offset.to_le_bytes());
                }
            }
            let zip64 = !extra.is_empty();
            let size32 = if big_size {
                U32_MAX as u32
            } else {
                e.size as u32
            };
            cd.extend_from_slice(&le32(CENTRAL_SIG));
            cd.extend_from_slice(&le16(if zip64 { 45 } else { 20 })); // made by
            cd.extend_from_slice(&le16(if zip64 { 45 } else { 20 })); // needed
            cd.extend_from_slice(&le16(FLAG_UTF8));
            cd.extend_from_slice(&le16(0));
            cd.extend_from_slice(&le16(0));
            cd.extend_from_slice(&le16(0x21));
            cd.extend_from_slice(&le32(e.crc));
            cd.extend_from_slice(&le32(size32));
            cd.extend_from_slice(&le32(size32));
            cd.extend_from_slice(&le16(e.name.len() as u16));
            cd.extend_from_slice(&le16(extra.len() as u16));
            cd.extend_from_slice(&le16(0)); // comment
            cd.extend_from_slice(&le16(0)); // disk
            cd.extend_from_slice(&le16(0)); // internal attributes
            cd.extend_from_slice(&le32(0)); // external attributes
            cd.extend_from_slice(&le32(if big_offset {
                U32_MAX as u32
            } else {
                e.offset as u32
            }));
            cd.extend_from_slice(e.name.as_bytes());
            cd.extend_from_slice(&extra);
        }
        self.out.write_all(&cd)?;
        self.pos += cd.len() as u64;
        let cd_size = cd.len() as u64;
        let count = self.entries.len() as u64;
        let need64 = cd_offset >= U32_MAX || cd_size >= U32_MAX || count >= 0xFFFF;
        let mut tail = Vec::new();
        if need64 {
            let rec_offset = self.pos;
            tail.extend_from_slice(&le32(EOCD64_SIG));
            tail.extend_from_slice(&44u64.to_le_bytes());
            tail.extend_from_slice(&le16(45));
            tail.extend_from_slice(&le16(45));
            tail.extend_from_slice(&le32(0));
            tail.extend_from_slice(&le32(0));
            tail.extend_from_slice(&count.to_le_bytes());
            tail.extend_from_slice(&count.to_le_bytes());
            tail.extend_from_slice(&cd_size.to_le_bytes());
            tail.extend_from_slice(&cd_offset.to_le_bytes());
            tail.extend_from_slice(&le32(EOCD64_LOCATOR_SIG));
            tail.extend_from_slice(&le32(0));
            tail.extend_from_slice(&rec_offset.to_le_bytes());
            tail.extend_from_slice(&le32(1));
        }
        let count16 = if need64 { 0xFFFF } else { count as u16 };
        tail.extend_from_slice(&le32(EOCD_SIG));
        tail.extend_from_slice(&le16(0));
        tail.extend_from_slice(&le16(0));
        tail.extend_from_slice(&le16(count16));
        tail.extend_from_slice(&le16(count16));
        tail.extend_from_slice(&le32(if need64 {
            U32_MAX as u32
        } else {
            cd_size as u32
        }));
        tail.extend_from_slice(&le32(if need64 {
            U32_MAX as u32
        } else {
            cd_offset as u32
        }));
        tail.extend_from_slice(&le16(0));
        self.out.write_all(&tail)?;
        self.pos += tail.len() as u64;
        self.out.flush()?;
        Ok((self.out, self.pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::{ckpt, DType};
    use crate::io::MemorySource;
    use std::io::Cursor;
    use std::sync::Arc;

    #[test]
    fn written_checkpoint_reads_back_aligned() {
        let tensors = vec![
            PickledTensor {
                name: "a.weight".into(),
                dtype: DType::F32,
                shape: vec![2, 3],
            },
            PickledTensor {
                name: "b".into(),
                dtype: DType::I64,
                shape: vec![1, 4],
            },
            PickledTensor {
                name: "empty".into(),
                dtype: DType::F16,
                shape: vec![0],
            },
        ];
        let extras = vec![("global_step".to_string(), PickleScalar::Int(7))];
        let mut w =
            TorchZipWriter::begin(Cursor::new(Vec::new()), "out", tensors, &extras).unwrap();
        let a: Vec<u8> = (0..6)
            .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
            .collect();
        let b: Vec<u8> = [3i64, -1, 0, 9]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        for data in [&a[..], &b[..], &[][..]] {
            w.start_tensor().unwrap();
            // Split writes exercise the running CRC.
            let (x, y) = data.split_at(data.len() / 2);
            w.write(x).unwrap();
            w.write(y).unwrap();
            w.end_tensor().unwrap();
        }
        let (cur, len) = w.finish().unwrap();
        let bytes = cur.into_inner();
        assert_eq!(bytes.len() as u64, len);
        let store = ckpt::load(Arc::new(MemorySource::new("out.ckpt", bytes))).unwrap();
        assert_eq!(
            store.read_f32("a.weight").unwrap(),
            [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
        );
        assert_eq!(store.read_raw("b").unwrap(), (DType::I64, b.clone()));
        assert_eq!(store.info("empty").unwrap().shape, vec![0]);
        assert_eq!(store.metadata()["global_step"], "7");
        for key in ["a.weight", "b"] {
            assert_eq!(store.info(key).unwrap().offset % 64, 0, "{key} aligned");
        }
    }

    #[test]
    fn too_few_bytes_is_an_error() {
        let tensors = vec![PickledTensor {
            name: "a".into(),
            dtype: DType::F32,
            shape: vec![2],
        }];
        let mut w = TorchZipWriter::begin(Cursor::new(Vec::new()), "x", tensors, &[]).unwrap();
        w.start_tensor().unwrap();
        w.write(&[0; 4]).unwrap();
        assert!(w.end_tensor().is_err());
    }
}
