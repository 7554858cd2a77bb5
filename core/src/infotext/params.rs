//! [`Infotext`]: prompt, negative prompt and the ordered `Key: value` parameters of one image,
//! laid out and parsed exactly as A1111 does, so a PNG written by Easel pastes into A1111 and
//! one written by A1111 regenerates in Easel.

use std::fmt;

use super::param_line::{python_strip, quote, scan, split_size, unquote};
use crate::{Error, Result};

/// The line prefix that starts the negative prompt.
const NEGATIVE_PREFIX: &str = "Negative prompt:";

/// A1111's parser only treats the last line as parameters when it holds this many.
const MIN_PARAMS_ON_LAST_LINE: usize = 3;

/// What A1111 stores in a PNG's `parameters` text.
///
/// `params` keeps the order (and any repeats) of the text; lookups return the last value of a
/// key, as A1111's dictionary does. Values are plain strings as A1111 writes them
/// (`Size: 512x512`, `CFG scale: 7.5`); the typed getters interpret the common ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Infotext {
    pub prompt: String,
    pub negative_prompt: String,
    pub params: Vec<(String, String)>,
}

impl Infotext {
    pub fn new(prompt: impl Into<String>, negative_prompt: impl Into<String>) -> Self {
        Infotext {
            prompt: prompt.into(),
            negative_prompt: negative_prompt.into(),
            params: Vec::new(),
        }
    }

    /// Appends `key: value`. A1111 omits settings that are `None`; callers do the same by not
    /// pushing them. Keys must not contain `:` or `,` (A1111's own keys never do).
    pub fn push(&mut self, key: impl Into<String>, value: impl ToString) -> &mut Self {
        self.params.push((key.into(), value.to_string()));
        self
    }

    /// [`push`](Self::push) for building in one expression.
    pub fn with(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.push(key, value);
        self
    }

    /// Replaces the value of `key` in place (every occurrence), or appends it.
    pub fn set(&mut self, key: &str, value: impl ToString) -> &mut Self {
        let value = value.to_string();
        let mut found = false;
        for entry in self.params.iter_mut().filter(|(k, _)| k == key) {
            entry.1.clone_from(&value);
            found = true;
        }
        if !found {
            self.params.push((key.to_string(), value));
        }
        self
    }

    /// Adds `key: value` just before `anchor`, or at the end without one (A1111 keeps
    /// `Version` after every extra parameter, even those added later, such as a grid's).
    pub fn push_before(&mut self, anchor: &str, key: impl Into<String>, value: impl ToString) {
        let at = self
            .params
            .iter()
            .position(|(k, _)| k == anchor)
            .unwrap_or(self.params.len());
        self.params.insert(at, (key.into(), value.to_string()));
    }

    /// The value of `key` (the last one when the text repeats it), as written.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The text A1111 would write: the prompt, `Negative prompt: ...` on its own line when
    /// there is one, then all parameters on one line joined by `, `. Values holding `,`, `:` or
    /// a newline are JSON-quoted; a parameter whose value equals its key is written as the key
    /// alone (A1111's flag style). Leading and trailing whitespace of the whole is stripped.
    pub fn format(&self) -> String {
        let line = self
            .params
            .iter()
            .map(|(k, v)| {
                if k == v {
                    k.clone()
                } else {
                    format!("{k}: {}", quote(v))
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let negative = if self.negative_prompt.is_empty() {
            String::new()
        } else {
            format!("\n{NEGATIVE_PREFIX} {}", self.negative_prompt)
        };
        python_strip(&format!("{}{negative}\n{line}", self.prompt)).to_string()
    }

    /// Reads any text the way A1111's `parse_generation_parameters` does. It never fails:
    /// text that does not look like an infotext becomes the prompt.
    ///
    /// The last line is the parameter line only if A1111's regex finds at least three
    /// parameters in it; otherwise it belongs to the prompt. Lines from the first one starting
    /// with `Negative prompt:` on are the negative prompt. Every line is stripped. Quoted
    /// values are JSON-decoded; a parameter with an empty value is dropped, as in A1111.
    ///
    /// The prompt is kept as written: A1111's paste button also appends
    /// `<hypernet:NAME:STRENGTH>` to it when `Hypernet` is set, which is UI behaviour that
    /// callers reproduce from [`hypernet`](Self::hypernet) if they want it.
    pub fn parse(text: &str) -> Self {
        let mut lines: Vec<&str> = python_strip(text).split('\n').collect();
        let last = lines.pop().unwrap_or_default();
        let found = scan(last);
        let found = if found.len() < MIN_PARAMS_ON_LAST_LINE {
            lines.push(last);
            Vec::new()
        } else {
            found
        };

        let mut prompt: Vec<&str> = Vec::new();
        let mut negative: Vec<&str> = Vec::new();
        let mut in_negative = false;
        for line in lines {
            let mut line = python_strip(line);
            if let Some(rest) = line.strip_prefix(NEGATIVE_PREFIX) {
                in_negative = true;
                line = python_strip(rest);
            }
            if in_negative {
                negative.push(line);
            } else {
                prompt.push(line);
            }
        }

        let params = found
            .into_iter()
            .filter(|p| !p.value.is_empty())
            .map(|p| (p.key.to_string(), unquote(p.value)))
            .collect();
        Infotext {
            prompt: prompt.join("\n"),
            negative_prompt: negative.join("\n"),
            params,
        }
    }

    /// The parameters as A1111's paste dictionary sees them: a `WxH` value of key `K` becomes
    /// `K-1` = W and `K-2` = H, a repeated key keeps its first position and last value, and the
    /// defaults `Clip skip: 1` and `RNG: GPU` are added when missing.
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut insert = |key: String, value: &str| match fields.iter_mut().find(|(k, _)| *k == key)
        {
            Some(entry) => entry.1 = value.to_string(),
            None => fields.push((key, value.to_string())),
        };
        for (key, value) in &self.params {
            match split_size(value) {
                Some((w, h)) => {
                    insert(format!("{key}-1"), w);
                    insert(format!("{key}-2"), h);
                }
                None => insert(key.clone(), value),
            }
        }
        for (key, default) in [("Clip skip", "1"), ("RNG", "GPU")] {
            if !fields.iter().any(|(k, _)| k == key) {
                fields.push((key.to_string(), default.to_string()));
            }
        }
        fields
    }

    /// `Steps`.
    pub fn steps(&self) -> Result<Option<u32>> {
        self.parsed("Steps", "a whole number")
    }

    /// `Sampler`, e.g. `Euler a`, `DPM++ 2M Karras`.
    pub fn sampler(&self) -> Option<&str> {
        self.get("Sampler")
    }

    /// `Schedule type` (newer A1111: `Karras`, `Automatic`, ...).
    pub fn schedule_type(&self) -> Option<&str> {
        self.get("Schedule type")
    }

    /// `CFG scale`.
    pub fn cfg_scale(&self) -> Result<Option<f64>> {
        self.finite("CFG scale")
    }

    /// `Seed` (A1111 writes the seed actually used, never -1).
    pub fn seed(&self) -> Result<Option<u64>> {
        self.parsed("Seed", "a non-negative whole number")
    }

    /// `Size: WxH` as (width, height).
    pub fn size(&self) -> Result<Option<(u32, u32)>> {
        let Some(value) = self.get("Size") else {
            return Ok(None);
        };
        let bad = || invalid("Size", value, "of the form WIDTHxHEIGHT");
        let (w, h) = split_size(value).ok_or_else(bad)?;
        Ok(Some((
            w.parse().map_err(|_| bad())?,
            h.parse().map_err(|_| bad())?,
        )))
    }

    /// `Model hash` (legacy 8 hex digits or AutoV2 10).
    pub fn model_hash(&self) -> Option<&str> {
        self.get("Model hash")
    }

    /// `Model` (the checkpoint's file stem).
    pub fn model(&self) -> Option<&str> {
        self.get("Model")
    }

    /// `Clip skip`; 1 when missing, as A1111 assumes.
    pub fn clip_skip(&self) -> Result<u32> {
        Ok(self.parsed("Clip skip", "a whole number")?.unwrap_or(1))
    }

    /// `RNG`: `GPU` (Philox, also when missing), `NV` or `CPU`.
    pub fn rng(&self) -> &str {
        self.get("RNG").unwrap_or("GPU")
    }

    /// `ENSD` (eta noise seed delta; 31337 in NovelAI-style setups).
    pub fn ensd(&self) -> Result<Option<u64>> {
        self.parsed("ENSD", "a non-negative whole number")
    }

    /// `Hypernet` (the hypernetwork's name).
    pub fn hypernet(&self) -> Option<&str> {
        self.get("Hypernet")
    }

    /// `Hypernet strength` (A1111 writes it only when it is not 1).
    pub fn hypernet_strength(&self) -> Result<Option<f64>> {
        self.finite("Hypernet strength")
    }

    /// `Eta` (ancestral / DDIM noise amount).
    pub fn eta(&self) -> Result<Option<f64>> {
        self.finite("Eta")
    }

    /// `VAE` (the override's name) when one was used.
    pub fn vae(&self) -> Option<&str> {
        self.get("VAE")
    }

    fn parsed<T: std::str::FromStr>(&self, key: &str, what: &str) -> Result<Option<T>> {
        self.get(key)
            .map(|v| v.trim().parse().map_err(|_| invalid(key, v, what)))
            .transpose()
    }

    fn finite(&self, key: &str) -> Result<Option<f64>> {
        let value: Option<f64> = self.parsed(key, "a number")?;
        match value {
            Some(x) if !x.is_finite() => Err(invalid(key, self.get(key).unwrap_or(""), "finite")),
            other => Ok(other),
        }
    }
}

fn invalid(key: &str, value: &str, what: &str) -> Error {
    Error::Invalid(format!("infotext: `{key}: {value}` is not {what}"))
}

impl fmt::Display for Infotext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format())
    }
}
