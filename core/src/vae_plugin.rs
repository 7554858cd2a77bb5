//! The VAE seam: ways of turning latents into images and images into latents besides the
//! checkpoint's own KL-f8 VAE, chosen by A1111's method names (`sd_vae_decode_method`,
//! `sd_vae_encode_method`, the infotext's `VAE Decoder` / `VAE Encoder`).
//!
//! A [`VaeProvider`] looks at the models folder when a checkpoint loads and offers the
//! decoders and encoders it finds there ([`crate::nn::taesd::TaesdFolder`] offers TAESD
//! from `models/VAE-approx/`); the generation service attaches them to the model, and a
//! job names one ([`VaeMethod`]) or keeps `Full`. A third-party crate adds a method by
//! implementing [`LatentDecoder`] / [`LatentEncoder`] and registering its provider with
//! the service, as samplers are registered.

use crate::backend::{Backend, LocalBoxFuture};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// Latent → image, one image at a time.
pub trait LatentDecoder<B: Backend> {
    /// A1111's name of the method, e.g. `TAESD`.
    fn label(&self) -> &str;
    /// One latent `[4, h, w]`, as the sampler leaves it (scaled) → interleaved RGB bytes of
    /// `8w × 8h` pixels.
    fn decode_rgb<'a>(
        &'a self,
        b: &'a B,
        latent: &'a [f32],
        h: usize,
        w: usize,
    ) -> LocalBoxFuture<'a, Result<Vec<u8>>>;
}

/// Image → latent, one image at a time.
pub trait LatentEncoder<B: Backend> {
    /// A1111's name of the method, e.g. `TAESD`.
    fn label(&self) -> &str;
    /// Interleaved RGB bytes of one `width × height` image (multiples of 8) → its scaled
    /// latent `[4, height/8, width/8]`.
    fn encode_rgb<'a>(
        &'a self,
        b: &'a B,
        rgb: &'a [u8],
        width: usize,
        height: usize,
    ) -> LocalBoxFuture<'a, Result<Vec<f32>>>;
}

/// The decoders and encoders a model offers besides its own VAE.
pub struct VaeMethods<B: Backend> {
    pub decoders: Vec<Arc<dyn LatentDecoder<B>>>,
    pub encoders: Vec<Arc<dyn LatentEncoder<B>>>,
    /// Why a method is missing (a file to add), as (`decoder` or `encoder`, label, hint).
    pub hints: Vec<(String, String, String)>,
}

impl<B: Backend> Clone for VaeMethods<B> {
    fn clone(&self) -> Self {
        Self {
            decoders: self.decoders.clone(),
            encoders: self.encoders.clone(),
            hints: self.hints.clone(),
        }
    }
}

impl<B: Backend> Default for VaeMethods<B> {
    fn default() -> Self {
        Self {
            decoders: Vec::new(),
            encoders: Vec::new(),
            hints: Vec::new(),
        }
    }
}

impl<B: Backend> VaeMethods<B> {
    /// Adds what `other` offers.
    pub fn extend(&mut self, other: VaeMethods<B>) {
        self.decoders.extend(other.decoders);
        self.encoders.extend(other.encoders);
        self.hints.extend(other.hints);
    }

    /// The decoder named `label` (any case).
    pub fn decoder(&self, label: &str) -> Result<&Arc<dyn LatentDecoder<B>>> {
        let labels: Vec<&str> = self.decoders.iter().map(|d| d.label()).collect();
        self.decoders
            .iter()
            .find(|d| d.label().eq_ignore_ascii_case(label))
            .ok_or_else(|| self.missing("decoder", label, &labels))
    }

    /// The encoder named `label` (any case).
    pub fn encoder(&self, label: &str) -> Result<&Arc<dyn LatentEncoder<B>>> {
        let labels: Vec<&str> = self.encoders.iter().map(|e| e.label()).collect();
        self.encoders
            .iter()
            .find(|e| e.label().eq_ignore_ascii_case(label))
            .ok_or_else(|| self.missing("encoder", label, &labels))
    }

    fn missing(&self, what: &str, label: &str, labels: &[&str]) -> Error {
        let hint = self
            .hints
            .iter()
            .find(|(w, l, _)| w == what && l.eq_ignore_ascii_case(label))
            .map(|(_, _, h)| format!(" ({h})"))
            .unwrap_or_default();
        let mut available = vec!["Full"];
        available.extend(labels);
        Error::Invalid(format!(
            "VAE {what} `{label}` is not available{hint}; available: {}",
            available.join(", ")
        ))
    }
}

/// What offers VAE methods, consulted with each checkpoint load: `models` is the models
/// folder, `None` for a checkpoint given as byte sources (the page's picked files).
pub trait VaeProvider<B: Backend> {
    fn methods(&self, b: &B, models: Option<&Path>) -> Result<VaeMethods<B>>;
}

/// A job's VAE method by A1111's name: `Full` (the checkpoint's VAE, the default), `TAESD`,
/// or a plugin's. Serialised as the name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VaeMethod(String);

impl Default for VaeMethod {
    fn default() -> Self {
        Self::full()
    }
}

impl VaeMethod {
    /// The checkpoint's own VAE.
    pub fn full() -> Self {
        Self("Full".into())
    }

    /// TAESD, the tiny autoencoder of `models/VAE-approx/`.
    pub fn taesd() -> Self {
        Self("TAESD".into())
    }

    /// A method by name: A1111's `Full` and `TAESD` in any case, or a plugin's label.
    pub fn parse(text: &str) -> Result<Self> {
        let name = text.trim();
        if name.is_empty() {
            return Err(Error::Invalid(
                "VAE method: empty name (Full, TAESD or a plugin's)".into(),
            ));
        }
        Ok(if name.eq_ignore_ascii_case("full") {
            Self::full()
        } else if name.eq_ignore_ascii_case("taesd") {
            Self::taesd()
        } else {
            Self(name.to_string())
        })
    }

    /// The name as A1111 writes it.
    pub fn label(&self) -> &str {
        &self.0
    }

    pub fn is_full(&self) -> bool {
        self.0 == "Full"
    }
}

impl TryFrom<String> for VaeMethod {
    type Error = Error;
    fn try_from(text: String) -> Result<Self> {
        Self::parse(&text)
    }
}

impl From<VaeMethod> for String {
    fn from(m: VaeMethod) -> String {
        m.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_a1111_names_and_keep_plugin_ones() {
        assert!(VaeMethod::parse("full").unwrap().is_full());
        assert_eq!(VaeMethod::parse(" taesd ").unwrap(), VaeMethod::taesd());
        assert_eq!(VaeMethod::parse("My VAE").unwrap().label(), "My VAE");
        assert!(VaeMethod::parse("  ").is_err());
        let json = serde_json::to_string(&VaeMethod::taesd()).unwrap();
        assert_eq!(json, "\"TAESD\"");
        let back: VaeMethod = serde_json::from_str("\"Full\"").unwrap();
        assert!(back.is_full());
    }
}
