//! A read-only zip reader for PyTorch checkpoints, working through positioned reads of a
//! [`ByteSource`]. Only the end records, the central directory and one local header per
//! requested entry are read, so opening an 8 GB checkpoint touches a few kilobytes.
//!
//! torch writes every entry STORED (method 0) and aligns entry data by padding the local
//! header's extra field, which is why an entry's data offset must be taken from its local
//! header rather than computed from the central directory. Files over 4 GB use ZIP64.

use crate::error::{Error, Result};
use crate::io::ByteSource;
use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD_LEN: u64 = 22;
const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD64_LOCATOR_LEN: u64 = 20;
const EOCD64_SIG: u32 = 0x0606_4b50;
const EOCD64_LEN: u64 = 56;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const CENTRAL_LEN: usize = 46;
const LOCAL_SIG: u32 = 0x0403_4b50;
const LOCAL_LEN: usize = 30;
const ZIP64_EXTRA_ID: u16 = 0x0001;
/// The archive comment is at most 64 KiB, so the end record lies in this many final bytes.
const MAX_EOCD_SEARCH: u64 = EOCD_LEN + 0xFFFF;
/// Whole-entry reads (`data.pkl`, small text entries) are refused above this size: tensor
/// data is never read this way, and a 4 GB checkpoint's `data.pkl` is well under 1 MiB (a
/// training checkpoint with pickled optimizer state a few MiB).
const MAX_WHOLE_ENTRY: u64 = 256 << 20;

/// Compression method of an entry as the zip format numbers it.
pub const METHOD_STORED: u16 = 0;
pub const METHOD_DEFLATED: u16 = 8;

/// One central-directory record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZipEntry {
    pub name: String,
    pub method: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// Offset of the entry's local header (not of its data).
    pub local_header_offset: u64,
}

/// The directory of a zip archive over a byte source.
pub struct ZipArchive {
    source: Arc<dyn ByteSource>,
    entries: Vec<ZipEntry>,
    by_name: HashMap<String, usize>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Where the central directory is and how many records it holds.
struct Directory {
    offset: u64,
    size: u64,
    count: u64,
}

impl ZipArchive {
    /// Reads the end records and the central directory.
    pub fn open(source: Arc<dyn ByteSource>) -> Result<Self> {
        let dir = find_directory(source.as_ref())?;
        let name = source.name().to_string();
        let end = dir.offset.checked_add(dir.size);
        if end.is_none_or(|e| e > source.len()) {
            return Err(Error::format(
                &name,
                format!(
                    "zip central directory ({} bytes at {}) lies past the end of the file ({} bytes): truncated?",
                    dir.size,
                    dir.offset,
                    source.len()
                ),
            ));
        }
        if dir.size > MAX_WHOLE_ENTRY {
            return Err(Error::format(
                &name,
                "zip central directory is implausibly large",
            ));
        }
        let raw = source.read_vec(dir.offset, dir.size as usize)?;
        let entries = parse_central_directory(&name, &raw, dir.count)?;
        let mut by_name = HashMap::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            // Readers disagree on which of two same-named entries counts (Python's zipfile
            // takes the last), so a file that has two is refused rather than guessed at.
            if by_name.insert(e.name.clone(), i).is_some() {
                return Err(Error::format(
                    &name,
                    format!("zip holds two entries named `{}`", e.name),
                ));
            }
        }
        Ok(Self {
            source,
            entries,
            by_name,
        })
    }

    pub fn name(&self) -> &str {
        self.source.name()
    }
    pub fn source(&self) -> &Arc<dyn ByteSource> {
        &self.source
    }
    pub fn entries(&self) -> &[ZipEntry] {
        &self.entries
    }
    pub fn entry(&self, name: &str) -> Option<&ZipEntry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }
    /// Like [`entry`](Self::entry) but a missing entry is a format error naming it.
    pub fn require(&self, name: &str) -> Result<&ZipEntry> {
        self.entry(name)
            .ok_or_else(|| Error::format(self.name(), format!("zip has no entry `{name}`")))
    }

    /// Absolute offset of the entry's (possibly compressed) data, from its local header.
    pub fn data_offset(&self, entry: &ZipEntry) -> Result<u64> {
        let file = self.name();
        let header_end = entry.local_header_offset.checked_add(LOCAL_LEN as u64);
        if header_end.is_none_or(|e| e > self.source.len()) {
            return Err(Error::format(
                file,
                format!(
                    "local header of zip entry `{}` lies past the end of the file: truncated?",
                    entry.name
                ),
            ));
        }
        let mut h = [0u8; LOCAL_LEN];
        self.source.read_at(entry.local_header_offset, &mut h)?;
        if u32_at(&h, 0) != LOCAL_SIG {
            return Err(Error::format(
                file,
                format!(
                    "zip entry `{}` has no local header at offset {}",
                    entry.name, entry.local_header_offset
                ),
            ));
        }
        let name_len = u16_at(&h, 26) as u64;
        let extra_len = u16_at(&h, 28) as u64;
        let start = entry.local_header_offset + LOCAL_LEN as u64 + name_len + extra_len;
        let end = start.checked_add(entry.compressed_size);
        if end.is_none_or(|e| e > self.source.len()) {
            return Err(Error::format(
                file,
                format!(
                    "zip entry `{}` ({} bytes at {start}) runs past the end of the file ({} bytes): truncated?",
                    entry.name,
                    entry.compressed_size,
                    self.source.len()
                ),
            ));
        }
        Ok(start)
    }

    /// Byte range `(offset, len)` of a STORED entry's contents, for lazy tensor reads.
    /// A compressed entry cannot be read by range and is an error naming it.
    pub fn stored_range(&self, entry: &ZipEntry) -> Result<(u64, u64)> {
        if entry.method != METHOD_STORED {
            return Err(Error::format(
                self.name(),
                format!(
                    "zip entry `{}` is compressed (method {}); tensor data must be stored uncompressed",
                    entry.name, entry.method
                ),
            ));
        }
        Ok((self.data_offset(entry)?, entry.uncompressed_size))
    }

    /// The whole (small) entry, inflated if it was deflated, with its CRC checked.
    pub fn read(&self, entry: &ZipEntry) -> Result<Vec<u8>> {
        let file = self.name();
        if entry.uncompressed_size > MAX_WHOLE_ENTRY || entry.compressed_size > MAX_WHOLE_ENTRY {
            return Err(Error::format(
                file,
                format!(
                    "zip entry `{}` is too large to read whole ({} bytes)",
                    entry.name, entry.uncompressed_size
                ),
            ));
        }
        let offset = self.data_offset(entry)?;
        let raw = self
            .source
            .read_vec(offset, entry.compressed_size as usize)?;
        let data = match entry.method {
            METHOD_STORED => {
                if entry.compressed_size != entry.uncompressed_size {
                    return Err(Error::format(
                        file,
                        format!("stored zip entry `{}` has differing sizes", entry.name),
                    ));
                }
                raw
            }
            METHOD_DEFLATED => {
                // The directory's size is a claim: reserve at most what deflate can produce
                // from the compressed bytes at hand (1032:1), grow past that only as real
                // output arrives, and stop one byte past the claim.
                let plausible = entry.compressed_size.saturating_mul(1032);
                let mut out = Vec::with_capacity(entry.uncompressed_size.min(plausible) as usize);
                flate2::read::DeflateDecoder::new(raw.as_slice())
                    .take(entry.uncompressed_size + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| {
                        Error::format(
                            file,
                            format!("zip entry `{}` does not inflate: {e}", entry.name),
                        )
                    })?;
                if out.len() as u64 != entry.uncompressed_size {
                    return Err(Error::format(
                        file,
                        format!(
                            "zip entry `{}` inflates to {} bytes, the directory says {}",
                            entry.name,
                            out.len(),
                            entry.uncompressed_size
                        ),
                    ));
                }
                out
            }
            m => {
                return Err(Error::format(
                    file,
                    format!(
                        "zip entry `{}` uses unsupported compression method {m}",
                        entry.name
                    ),
                ))
            }
        };
        let mut crc = flate2::Crc::new();
        crc.update(&data);
        if crc.sum() != entry.crc32 {
            return Err(Error::format(
                file,
                format!("zip entry `{}` is corrupt (CRC mismatch)", entry.name),
            ));
        }
        Ok(data)
    }
}

fn find_directory(source: &dyn ByteSource) -> Result<Directory> {
    let name = source.name();
    let len = source.len();
    let not_zip = || {
        Error::format(
            name,
            "not a zip archive, or truncated: no end-of-central-directory record found",
        )
    };
    if len < EOCD_LEN {
        return Err(not_zip());
    }
    let tail_len = len.min(MAX_EOCD_SEARCH);
    let tail_start = len - tail_len;
    let tail = source.read_vec(tail_start, tail_len as usize)?;
    let pos = (0..=tail.len() - EOCD_LEN as usize)
        .rev()
        .find(|&i| u32_at(&tail, i) == EOCD_SIG)
        .ok_or_else(not_zip)?;
    let eocd = &tail[pos..];
    let eocd_offset = tail_start + pos as u64;
    let mut dir = Directory {
        count: u16_at(eocd, 10) as u64,
        size: u32_at(eocd, 12) as u64,
        offset: u32_at(eocd, 16) as u64,
    };
    // A ZIP64 locator sits right before the classic end record when any field overflowed.
    if eocd_offset >= EOCD64_LOCATOR_LEN {
        let mut loc = [0u8; EOCD64_LOCATOR_LEN as usize];
        source.read_at(eocd_offset - EOCD64_LOCATOR_LEN, &mut loc)?;
        if u32_at(&loc, 0) == EOCD64_LOCATOR_SIG {
            let rec_offset = u64_at(&loc, 8);
            if rec_offset.checked_add(EOCD64_LEN).is_none_or(|e| e > len) {
                return Err(Error::format(
                    name,
                    "ZIP64 end record lies past the end of the file: truncated?",
                ));
            }
            let mut rec = [0u8; EOCD64_LEN as usize];
            source.read_at(rec_offset, &mut rec)?;
            if u32_at(&rec, 0) != EOCD64_SIG {
                return Err(Error::format(
                    name,
                    "ZIP64 locator does not point at a ZIP64 end record",
                ));
            }
            dir = Directory {
                count: u64_at(&rec, 32),
                size: u64_at(&rec, 40),
                offset: u64_at(&rec, 48),
            };
        }
    }
    Ok(dir)
}

fn parse_central_directory(file: &str, raw: &[u8], count: u64) -> Result<Vec<ZipEntry>> {
    let truncated = || Error::format(file, "zip central directory is truncated or corrupt");
    // Each record is at least 46 bytes, which bounds a lying count.
    if count > (raw.len() / CENTRAL_LEN) as u64 {
        return Err(truncated());
    }
    let mut entries = Vec::with_capacity(count as usize);
    let mut at = 0usize;
    for _ in 0..count {
        if at + CENTRAL_LEN > raw.len() || u32_at(raw, at) != CENTRAL_SIG {
            return Err(truncated());
        }
        let r = &raw[at..];
        let method = u16_at(r, 10);
        let crc32 = u32_at(r, 16);
        let mut compressed_size = u32_at(r, 20) as u64;
        let mut uncompressed_size = u32_at(r, 24) as u64;
        let name_len = u16_at(r, 28) as usize;
        let extra_len = u16_at(r, 30) as usize;
        let comment_len = u16_at(r, 32) as usize;
        let mut local_header_offset = u32_at(r, 42) as u64;
        let var_end = CENTRAL_LEN + name_len + extra_len + comment_len;
        if var_end > r.len() {
            return Err(truncated());
        }
        let name = String::from_utf8_lossy(&r[CENTRAL_LEN..CENTRAL_LEN + name_len]).into_owned();
        let extra = &r[CENTRAL_LEN + name_len..CENTRAL_LEN + name_len + extra_len];
        // ZIP64 extra field: the 64-bit values of exactly the fields saturated at 0xFFFFFFFF,
        // in the order uncompressed, compressed, local header offset.
        let mut x = 0usize;
        while x + 4 <= extra.len() {
            let id = u16_at(extra, x);
            let size = u16_at(extra, x + 2) as usize;
            let body = extra.get(x + 4..x + 4 + size).ok_or_else(truncated)?;
            if id == ZIP64_EXTRA_ID {
                let mut p = 0usize;
                let mut next = |field: &mut u64| -> Result<()> {
                    if *field == 0xFFFF_FFFF {
                        let v = body.get(p..p + 8).ok_or_else(|| {
                            Error::format(
                                file,
                                format!("zip entry `{name}` has a short ZIP64 extra field"),
                            )
                        })?;
                        *field = u64::from_le_bytes(v.try_into().expect("8 bytes"));
                        p += 8;
                    }
                    Ok(())
                };
                next(&mut uncompressed_size)?;
                next(&mut compressed_size)?;
                next(&mut local_header_offset)?;
            }
            x += 4 + size;
        }
        entries.push(ZipEntry {
            name,
            method,
            crc32,
            compressed_size,
            uncompressed_size,
            local_header_offset,
        });
        at += var_end;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemorySource;

    /// A hand-built one-entry STORED zip, optionally with the ZIP64 records and fields.
    fn build_zip(name: &str, data: &[u8], zip64: bool) -> Vec<u8> {
        build_zip_at(name, data, zip64, 0)
    }

    /// As [`build_zip`], as the tail of a file whose first `base` bytes are something else.
    fn build_zip_at(name: &str, data: &[u8], zip64: bool, base: u64) -> Vec<u8> {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let crc = crc.sum();
        let mut out = Vec::new();
        // local header with 3 bytes of padding in its extra field
        out.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&7u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&[0xAA, 0xBB, 3, 0, 0, 0, 0]);
        out.extend_from_slice(data);
        let cd_offset = base + out.len() as u64;
        out.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
        out.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        let (size32, off32) = if zip64 {
            (0xFFFF_FFFFu32, 0xFFFF_FFFFu32)
        } else {
            (data.len() as u32, 0)
        };
        out.extend_from_slice(&size32.to_le_bytes());
        out.extend_from_slice(&size32.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(if zip64 { 28u16 } else { 0 }).to_le_bytes());
        out.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        out.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        out.extend_from_slice(&off32.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        if zip64 {
            out.extend_from_slice(&ZIP64_EXTRA_ID.to_le_bytes());
            out.extend_from_slice(&24u16.to_le_bytes());
            out.extend_from_slice(&(data.len() as u64).to_le_bytes());
            out.extend_from_slice(&(data.len() as u64).to_le_bytes());
            out.extend_from_slice(&base.to_le_bytes());
        }
        let cd_size = base + out.len() as u64 - cd_offset;
        if zip64 {
            let rec = base + out.len() as u64;
            out.extend_from_slice(&EOCD64_SIG.to_le_bytes());
            out.extend_from_slice(&44u64.to_le_bytes());
            out.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&1u64.to_le_bytes());
            out.extend_from_slice(&1u64.to_le_bytes());
            out.extend_from_slice(&cd_size.to_le_bytes());
            out.extend_from_slice(&cd_offset.to_le_bytes());
            out.extend_from_slice(&EOCD64_LOCATOR_SIG.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&rec.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
        }
        out.extend_from_slice(&EOCD_SIG.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
        let (s, o) = if zip64 {
            (0xFFFF_FFFFu32, 0xFFFF_FFFFu32)
        } else {
            (cd_size as u32, cd_offset as u32)
        };
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&o.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    fn open(bytes: Vec<u8>) -> Result<ZipArchive> {
        ZipArchive::open(Arc::new(MemorySource::new("test.zip", bytes)))
    }

    #[test]
    fn reads_stored_entry_past_padded_local_header() {
        for zip64 in [false, true] {
            let z = open(build_zip("arch/data/0", b"hello tensor", zip64)).unwrap();
            assert_eq!(z.entries().len(), 1);
            let e = z.require("arch/data/0").unwrap().clone();
            assert_eq!(e.uncompressed_size, 12);
            let (off, len) = z.stored_range(&e).unwrap();
            assert_eq!(off, 30 + 11 + 7);
            assert_eq!(len, 12);
            assert_eq!(z.read(&e).unwrap(), b"hello tensor");
        }
    }

    /// A file of `prefix` zero bytes followed by `tail`, without allocating the zeros.
    struct PaddedSource {
        prefix: u64,
        tail: Vec<u8>,
    }
    impl ByteSource for PaddedSource {
        fn name(&self) -> &str {
            "big.ckpt"
        }
        fn len(&self) -> u64 {
            self.prefix + self.tail.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
            assert!(offset + buf.len() as u64 <= self.len(), "read past end");
            for (i, b) in buf.iter_mut().enumerate() {
                let at = offset + i as u64;
                *b = if at < self.prefix {
                    0
                } else {
                    self.tail[(at - self.prefix) as usize]
                };
            }
            Ok(())
        }
    }

    #[test]
    fn zip64_offsets_beyond_4_gib() {
        let base = 5u64 << 30;
        let tail = build_zip_at("archive/data/7", b"far away", true, base);
        let z = ZipArchive::open(Arc::new(PaddedSource { prefix: base, tail })).unwrap();
        let e = z.require("archive/data/7").unwrap().clone();
        assert_eq!(e.local_header_offset, base);
        let (off, len) = z.stored_range(&e).unwrap();
        assert_eq!((off, len), (base + 30 + 14 + 7, 8));
        assert_eq!(z.read(&e).unwrap(), b"far away");
    }

    #[test]
    fn truncation_and_garbage_are_format_errors() {
        let full = build_zip("a/data.pkl", b"0123456789", false);
        for cut in [0, 5, 21, full.len() - 1] {
            let err = open(full[..cut].to_vec())
                .err()
                .expect("must fail")
                .to_string();
            assert!(err.contains("test.zip"), "{err}");
        }
        // Central directory intact but the data region cut out.
        let mut holed = full.clone();
        holed.drain(30..45);
        let err = open(holed).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("truncated") || err.contains("corrupt"),
            "{err}"
        );
        let err = open(vec![0x5A; 1000]).err().unwrap().to_string();
        assert!(err.contains("no end-of-central-directory"), "{err}");
        assert!(open(Vec::new()).is_err());
    }

    #[test]
    fn corrupt_data_fails_crc() {
        let mut z = build_zip("a/data.pkl", b"0123456789", false);
        z[30 + 10 + 7] ^= 1;
        let z = open(z).unwrap();
        let e = z.require("a/data.pkl").unwrap().clone();
        let err = z.read(&e).unwrap_err().to_string();
        assert!(err.contains("CRC") && err.contains("a/data.pkl"), "{err}");
    }

    #[test]
    fn missing_entry_is_named() {
        let z = open(build_zip("x", b"1", false)).unwrap();
        let err = z.require("y/data.pkl").unwrap_err().to_string();
        assert!(err.contains("y/data.pkl"), "{err}");
    }
}
