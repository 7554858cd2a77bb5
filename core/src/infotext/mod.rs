//! A1111 infotext: the `parameters` text that AUTOMATIC1111's web UI stores in every PNG it
//! writes, and that other tools (and `easel generate --from`) read back to reproduce an image.
//!
//! - [`params`]: the [`Infotext`] value, its A1111 text layout ([`Infotext::format`]) and
//!   A1111's lenient parser ([`Infotext::parse`]).
//! - [`param_line`]: the `Key: value, ...` line syntax (A1111's parameter regex, quoting).
//! - [`png`]: PNG files carrying the text in a `tEXt`, `zTXt` or `iTXt` chunk keyed
//!   `parameters`, written atomically; also reads a PNG's pixels back as 8-bit RGB.

pub mod param_line;
pub mod params;
pub mod png;

pub use params::Infotext;
pub use png::{
    decode_png_rgb, encode_png, encode_png_with_texts, parameters_from_png_bytes, read_parameters,
    read_png_rgb, write_png, write_png_with_texts,
};
