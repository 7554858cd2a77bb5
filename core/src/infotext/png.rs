//! PNG files that carry an infotext: writing 8-bit RGB images with a `parameters` text chunk
//! (natively to a file, atomically; or to bytes for the browser), and reading the text back
//! from whatever chunk kind another tool chose.
//!
//! Writing follows Pillow, which A1111 uses: `tEXt` when the text is Latin-1, else `iTXt`
//! (UTF-8). Reading walks the chunk list itself rather than decoding the image, so it works
//! on text placed after the image data and never inflates pixels it does not need.

use std::fs;
use std::io::{Cursor, Read};
use std::path::Path;

use flate2::read::ZlibDecoder;

use crate::{Error, Result};

/// The chunk keyword A1111 stores its infotext under.
pub const PARAMETERS_KEY: &str = "parameters";

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// Compressed text that inflates past this is refused (real infotexts are a few KiB); a
/// guard against decompression bombs in files from strangers.
const MAX_TEXT_BYTES: u64 = 16 << 20;

/// Encodes an 8-bit RGB image (`rgb` row-major, 3 bytes per pixel) as PNG bytes, with the
/// infotext in a `parameters` chunk when given.
pub fn encode_png(
    width: u32,
    height: u32,
    rgb: &[u8],
    parameters: Option<&str>,
) -> Result<Vec<u8>> {
    encode(width, height, rgb, parameters).map_err(Error::Invalid)
}

/// [`encode_png`] with one text chunk per `(key, text)` pair, in order (A1111's Extras
/// results carry `parameters`, `postprocessing` and `extras`).
pub fn encode_png_with_texts(
    width: u32,
    height: u32,
    rgb: &[u8],
    texts: &[(&str, &str)],
) -> Result<Vec<u8>> {
    encode_texts(width, height, rgb, texts).map_err(Error::Invalid)
}

/// Writes an 8-bit RGB PNG to `path` with the infotext in a `parameters` chunk when given.
///
/// The bytes go to a temporary file in the same folder which is then renamed over `path`, so
/// a reader never sees a half-written image and a failed write leaves no partial file.
pub fn write_png(
    path: impl AsRef<Path>,
    width: u32,
    height: u32,
    rgb: &[u8],
    parameters: Option<&str>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = encode(width, height, rgb, parameters)
        .map_err(|msg| Error::Invalid(format!("{}: {msg}", path.display())))?;
    crate::io::AtomicFile::write_bytes(path, &bytes)
}

/// Largest PNG file read for its infotext (a 2048² RGBA image is 16 MiB uncompressed).
pub const MAX_PNG_BYTES: u64 = 256 * 1024 * 1024;

/// The infotext of the PNG file at `path`; `Ok(None)` when it has no `parameters` chunk.
pub fn read_parameters(path: impl AsRef<Path>) -> Result<Option<String>> {
    let path = path.as_ref();
    let (file, meta) = crate::io::open_regular_file(path)?;
    if meta.len() > MAX_PNG_BYTES {
        return Err(Error::format(
            path.display().to_string(),
            format!(
                "{} bytes is larger than any PNG read here ({MAX_PNG_BYTES} bytes)",
                meta.len()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_PNG_BYTES), &mut bytes)
        .map_err(|e| Error::io(path, e))?;
    parameters_from_png_bytes(&bytes, &path.display().to_string())
}

/// The infotext of a PNG held in memory; `name` (a file name, or e.g. the name of a file the
/// user dropped in the browser) is what errors mention. The text may be in a `tEXt`, `zTXt` or
/// `iTXt` chunk (compressed or not), before or after the image data; if several chunks are
/// keyed `parameters`, the last wins, as in Pillow.
///
/// The whole chunk list is checked (lengths and CRCs) up to `IEND`, so a truncated or damaged
/// file is an error even when its text chunk survived.
pub fn parameters_from_png_bytes(bytes: &[u8], name: &str) -> Result<Option<String>> {
    let fail = |msg: String| Error::format(name, msg);
    let mut found = None;
    for chunk in chunks(bytes) {
        let chunk = chunk.map_err(fail)?;
        match &chunk.kind {
            b"tEXt" | b"zTXt" | b"iTXt" => {
                if let Some(text) = parameters_text(&chunk).map_err(fail)? {
                    found = Some(text);
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

/// Reads the PNG file at `path` as 8-bit RGB: (width, height, pixels row-major). Grey,
/// palette and 16-bit images are converted; alpha is dropped.
pub fn read_png_rgb(path: impl AsRef<Path>) -> Result<(u32, u32, Vec<u8>)> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_png_rgb(&bytes, &path.display().to_string())
}

/// [`read_png_rgb`] for a PNG held in memory; `name` is what errors mention.
pub fn decode_png_rgb(bytes: &[u8], name: &str) -> Result<(u32, u32, Vec<u8>)> {
    let fail = |e: png::DecodingError| Error::format(name, format!("cannot decode PNG: {e}"));
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(fail)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::format(name, "image is too large to decode"))?;
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(fail)?;
    buf.truncate(frame.buffer_size());
    let channels = frame.color_type.samples();
    let rgb = match channels {
        3 => buf,
        4 => buf
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        1 => buf.iter().flat_map(|&g| [g, g, g]).collect(),
        2 => buf
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0]])
            .collect(),
        n => {
            return Err(Error::format(
                name,
                format!("unsupported PNG layout ({n} samples per pixel)"),
            ))
        }
    };
    Ok((frame.width, frame.height, rgb))
}

/// Writes an 8-bit RGB PNG to `path` (atomically, as [`write_png`]) with one text chunk per
/// `(key, text)` pair, in order: A1111's Extras tab stores `parameters`, `postprocessing`
/// and `extras` chunks.
pub fn write_png_with_texts(
    path: impl AsRef<Path>,
    width: u32,
    height: u32,
    rgb: &[u8],
    texts: &[(&str, &str)],
) -> Result<()> {
    let path = path.as_ref();
    let bytes = encode_texts(width, height, rgb, texts)
        .map_err(|msg| Error::Invalid(format!("{}: {msg}", path.display())))?;
    crate::io::AtomicFile::write_bytes(path, &bytes)
}

fn encode(
    width: u32,
    height: u32,
    rgb: &[u8],
    parameters: Option<&str>,
) -> Result<Vec<u8>, String> {
    let texts: Vec<(&str, &str)> = parameters
        .map(|t| (PARAMETERS_KEY, t))
        .into_iter()
        .collect();
    encode_texts(width, height, rgb, &texts)
}

fn encode_texts(
    width: u32,
    height: u32,
    rgb: &[u8],
    texts: &[(&str, &str)],
) -> Result<Vec<u8>, String> {
    if width == 0 || height == 0 {
        return Err(format!("cannot write a {width}x{height} image"));
    }
    let expected = width as u64 * height as u64 * 3;
    if rgb.len() as u64 != expected {
        return Err(format!(
            "pixel buffer holds {} bytes, a {width}x{height} RGB image needs {expected}",
            rgb.len()
        ));
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    for &(key, text) in texts {
        if text.contains('\0') {
            return Err("the infotext contains a NUL character, which PNG text cannot hold".into());
        }
        let key = key.to_string();
        let added = if text.chars().all(|c| (c as u32) <= 0xFF) {
            encoder.add_text_chunk(key, text.to_string())
        } else {
            encoder.add_itxt_chunk(key, text.to_string())
        };
        added.map_err(|e| format!("cannot store the infotext: {e}"))?;
    }
    let fail = |e: png::EncodingError| format!("cannot encode PNG: {e}");
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(rgb).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}

/// Writes `bytes` to a fresh temporary file beside `path`, flushes it to disk and renames it
/// over `path`. On any failure the temporary file is removed.
/// One chunk of a PNG: its 4-letter type, its data, and the byte offset it starts at.
struct Chunk<'a> {
    kind: [u8; 4],
    data: &'a [u8],
    offset: usize,
}

impl Chunk<'_> {
    fn kind_name(&self) -> String {
        String::from_utf8_lossy(&self.kind).into_owned()
    }
}

/// The chunks of a PNG from `IHDR` to `IEND`, each checked for length and CRC; an `Err` item
/// (the last one) says what is wrong and where.
fn chunks(bytes: &[u8]) -> impl Iterator<Item = Result<Chunk<'_>, String>> {
    let mut pos = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let item = next_chunk(bytes, &mut pos);
        done = match &item {
            Ok(chunk) => &chunk.kind == b"IEND",
            Err(_) => true,
        };
        Some(item)
    })
}

fn next_chunk<'a>(bytes: &'a [u8], pos: &mut usize) -> Result<Chunk<'a>, String> {
    if *pos == 0 {
        if !bytes.starts_with(&SIGNATURE) {
            return Err(
                if bytes.len() < SIGNATURE.len() && SIGNATURE.starts_with(bytes) {
                    format!("truncated PNG: the file ends after {} bytes", bytes.len())
                } else {
                    "not a PNG file (the PNG signature is missing)".to_string()
                },
            );
        }
        *pos = SIGNATURE.len();
    }
    let offset = *pos;
    let rest = &bytes[offset..];
    if rest.len() < 8 {
        return Err(format!(
            "truncated PNG: the file ends at byte {} before its IEND chunk",
            bytes.len()
        ));
    }
    let length = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let kind = [rest[4], rest[5], rest[6], rest[7]];
    if !kind.iter().all(u8::is_ascii_alphabetic) || length > i32::MAX as usize {
        return Err(format!("corrupt PNG: bad chunk header at byte {offset}"));
    }
    if offset == SIGNATURE.len() && &kind != b"IHDR" {
        return Err("corrupt PNG: the first chunk is not IHDR".to_string());
    }
    let kind_name = String::from_utf8_lossy(&kind).into_owned();
    let total = 12 + length;
    if rest.len() < total {
        return Err(format!(
            "truncated PNG: the {kind_name} chunk at byte {offset} needs {total} bytes, the file has {} left",
            rest.len()
        ));
    }
    let data = &rest[8..8 + length];
    let stored_crc = u32::from_be_bytes([
        rest[8 + length],
        rest[9 + length],
        rest[10 + length],
        rest[11 + length],
    ]);
    let mut crc = flate2::Crc::new();
    crc.update(&rest[4..8 + length]);
    if crc.sum() != stored_crc {
        return Err(format!(
            "corrupt PNG: CRC mismatch in the {kind_name} chunk at byte {offset}"
        ));
    }
    *pos = offset + total;
    Ok(Chunk { kind, data, offset })
}

/// The text of a `tEXt`/`zTXt`/`iTXt` chunk if its keyword is `parameters`, else `None`.
/// Chunks with other keywords are not inspected further, so their oddities are not errors.
fn parameters_text(chunk: &Chunk<'_>) -> Result<Option<String>, String> {
    let Some(nul) = chunk.data.iter().position(|&b| b == 0) else {
        return Ok(None);
    };
    if &chunk.data[..nul] != PARAMETERS_KEY.as_bytes() {
        return Ok(None);
    }
    let body = &chunk.data[nul + 1..];
    let what = || {
        format!(
            "{} chunk `{PARAMETERS_KEY}` at byte {}",
            chunk.kind_name(),
            chunk.offset
        )
    };
    let text = match &chunk.kind {
        b"tEXt" => latin1(body),
        b"zTXt" => {
            let (&method, compressed) = body
                .split_first()
                .ok_or_else(|| format!("{}: missing compression method", what()))?;
            if method != 0 {
                return Err(format!("{}: unknown compression method {method}", what()));
            }
            latin1(&inflate(compressed).map_err(|e| format!("{}: {e}", what()))?)
        }
        _ => {
            // iTXt: flag, method, language tag NUL, translated keyword NUL, text.
            let bad = |msg: &str| format!("{}: {msg}", what());
            if body.len() < 2 {
                return Err(bad("truncated header"));
            }
            let (flag, method) = (body[0], body[1]);
            let mut fields = body[2..].splitn(3, |&b| b == 0);
            let (Some(_language), Some(_translated), Some(text)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(bad("missing language tag or translated keyword"));
            };
            let raw = match (flag, method) {
                (0, _) => text.to_vec(),
                (1, 0) => inflate(text).map_err(|e| bad(&e))?,
                (1, m) => return Err(bad(&format!("unknown compression method {m}"))),
                (f, _) => return Err(bad(&format!("bad compression flag {f}"))),
            };
            String::from_utf8(raw).map_err(|_| bad("text is not valid UTF-8"))?
        }
    };
    Ok(Some(text))
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Inflates zlib data, refusing output past [`MAX_TEXT_BYTES`].
fn inflate(compressed: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    ZlibDecoder::new(compressed)
        .take(MAX_TEXT_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot inflate the text: {e}"))?;
    if out.len() as u64 > MAX_TEXT_BYTES {
        return Err(format!(
            "the text inflates past {} MiB",
            MAX_TEXT_BYTES >> 20
        ));
    }
    Ok(out)
}
