//! Every parameter of one generation job in one type. The CLI's flags, the page's form, the
//! HTTP API's JSON and a pasted infotext are all mapped onto [`GenerationSettings`], so a
//! setting cannot be honoured by one front end and forgotten by another.
//!
//! As JSON (the page's request, and the service's own record of a job) the field names are
//! the ones below; names of things are A1111's (`"Euler a"`, `"Karras"`, `"No norm"`), the
//! generator is `gpu`/`cpu`/`nv` and the noise device `auto`/`cuda`/`cpu`, as the CLI spells
//! them.

use crate::infotext::Infotext;
use crate::noise::{RngKind, TorchDevice};
use crate::pipeline::{MaskedContent, VaeDecoder, VaeEncoder};
use crate::sampler_params::SamplerParams;
use crate::text::EmphasisMode;
use crate::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One hypernetwork (or other attention network) asked for by name, with its strength.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSetting {
    pub name: String,
    #[serde(default = "one_f32")]
    pub strength: f32,
}

impl NetworkSetting {
    /// `NAME` or `NAME:STRENGTH` (the CLI's `--hypernet`); the strength is what follows the
    /// last `:` when that is a number (so `C:\hn\anime.pt` stays a name) and defaults to 1.
    pub fn parse(text: &str) -> Result<Self> {
        let (name, strength) = match text.rsplit_once(':') {
            Some((name, s)) if s.trim().parse::<f32>().is_ok() => {
                (name, s.trim().parse::<f32>().unwrap_or(1.0))
            }
            _ => (text, 1.0),
        };
        if !strength.is_finite() {
            return Err(Error::Invalid(format!(
                "hypernetwork `{text}`: strength is not a finite number"
            )));
        }
        if name.trim().is_empty() {
            return Err(Error::Invalid(format!(
                "hypernetwork `{text}`: no hypernetwork name"
            )));
        }
        Ok(Self {
            name: name.to_string(),
            strength,
        })
    }
}

/// Everything that decides the images of one job. Defaults are A1111's txt2img defaults
/// (Euler a, 20 steps, CFG 7, 512×512, GPU noise).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerationSettings {
    /// As written: `<hypernet:...>` tags included (they stay in the infotext).
    pub prompt: String,
    pub negative_prompt: String,
    pub steps: usize,
    /// Sampler label or alias (`Euler a`, `euler_a`, `DPM++ 2M Karras`, ...).
    pub sampler: String,
    /// Schedule type (`Automatic`, `Karras`, ...); `None` = what the sampler name implies.
    pub schedule_type: Option<String>,
    pub cfg_scale: f32,
    /// Seed of the first image (image i of batch j uses seed + j·batch_size + i). A
    /// front end draws the random seed A1111 calls -1 before the job reaches the service.
    pub seed: u64,
    pub width: usize,
    pub height: usize,
    /// Images sampled together.
    pub batch_size: usize,
    /// Batches run one after another (A1111's batch count, `n_iter`).
    pub batch_count: usize,
    pub clip_skip: usize,
    #[serde(with = "rng_text")]
    pub rng: RngKind,
    /// The torch device of the A1111 run to reproduce (SDE samplers' Brownian noise);
    /// `None` (`"auto"`) = the one `rng` implies.
    #[serde(with = "device_text")]
    pub noise_device: Option<TorchDevice>,
    /// Eta noise seed delta (31337 for NovelAI parity).
    pub ensd: u64,
    /// Eta, Eta DDIM, the churn set and schedule parameters; unset = the defaults.
    pub sampler_params: SamplerParams,
    /// Checkpoint: name, stem, path, hash or A1111 title; empty = the loaded (or first) one.
    pub model: String,
    /// VAE: `auto` (the checkpoint's sidecar), `none`, a name in models/VAE, or a path.
    pub vae: String,
    /// Hypernetworks besides the `<hypernet:NAME:S>` tags in the prompt.
    pub hypernets: Vec<NetworkSetting>,
    /// LoRAs besides the `<lora:NAME:W>` tags in the prompt (the CLI's `--lora`), each with
    /// one multiplier for the text encoder and the UNet.
    pub loras: Vec<NetworkSetting>,
    #[serde(with = "emphasis_text")]
    pub emphasis: EmphasisMode,
    /// Read `{a}`/`[a]` as NovelAI's ×1.05 / ÷1.05 instead of A1111's brackets.
    pub nai_braces: bool,
    /// img2img: how far the init image is noised, 0..=1; with `enable_hr` the hires pass's
    /// strength (A1111 uses one field for both) [0.75].
    pub denoising_strength: f64,
    /// img2img: A1111's resize mode of the init image: 0 Just resize, 1 Crop and resize,
    /// 2 Resize and fill, 3 Just resize (latent upscale).
    pub resize_mode: u32,
    /// txt2img hires fix (A1111's `enable_hr`).
    pub enable_hr: bool,
    /// Hires: scale of the first pass when no resize is given [2].
    pub hr_scale: f64,
    /// Hires: `Latent`, `Latent (antialiased)`, …, `Lanczos`, `Nearest`, or a model upscaler.
    pub hr_upscaler: String,
    /// Hires: steps of the second pass (0 = the first pass's).
    pub hr_second_pass_steps: usize,
    /// Hires: target width / height (0 = from the other one, or from `hr_scale`).
    pub hr_resize_x: usize,
    pub hr_resize_y: usize,
    /// Hires: sampler of the second pass (empty = the first pass's).
    pub hr_sampler: String,
    /// Hires: schedule type of the second pass (A1111's `hr_scheduler`); `None` = the first
    /// pass's ("Use same scheduler").
    pub hr_schedule_type: Option<String>,
    /// Hires: prompts of the second pass (empty = the first pass's).
    pub hr_prompt: String,
    pub hr_negative_prompt: String,
    /// Inpainting: mask blur radius in pixels (A1111's default 4).
    pub mask_blur: u32,
    /// Inpainting: masked content, 0 fill, 1 original, 2 latent noise, 3 latent nothing.
    pub inpainting_fill: u32,
    /// Inpainting: "Only masked" (inpaint a crop around the mask at full resolution).
    pub inpaint_full_res: bool,
    /// Inpainting: padding of that crop, pixels.
    pub inpaint_full_res_padding: u32,
    /// Inpainting: repaint what the mask leaves out.
    pub inpainting_mask_invert: bool,
    /// A1111's "Use old prompt editing timelines" (`Old prompt editing timelines` in
    /// infotexts; on when pasting a PNG of A1111 before 1.6 whose prompt edits): `[a:b:N]`
    /// below 1 is a fraction of the steps, anything else a step.
    pub old_prompt_timelines: bool,
    /// A1111's "Downcast alphas_cumprod" (on when pasting a PNG of A1111 before
    /// v1.7.0-225, which sampled over the fp16 schedule): reproduces those images.
    pub downcast_alphas_cumprod: bool,
    /// A1111's "Pad prompt/negative prompt" (`Pad conds`): a prompt and negative prompt of
    /// different lengths share one UNet batch, the shorter padded with empty-prompt chunks.
    pub pad_conds: bool,
    /// A1111's "Pad prompt/negative prompt (v0)" (`Pad conds v0`; on when pasting a DDIM
    /// or PLMS PNG of A1111 before 1.6): the negative prompt repeats its last vector up to
    /// the prompt's length, or is cut to it. Wins over `pad_conds`, as in A1111.
    pub pad_conds_v0: bool,
    /// A1111's "VAE type for decode": `Full` (the model's VAE) or `TAESD`
    /// (`models/VAE-approx/taesd_decoder.pth`).
    pub vae_decoder: VaeDecoder,
    /// A1111's "VAE type for encode": `Full` or `TAESD`
    /// (`models/VAE-approx/taesd_encoder.pth`), for init images and the hires pass's
    /// re-encoded upscale. Written as `VAE Encoder: TAESD`.
    pub vae_encoder: VaeEncoder,
    /// Decode in tiles (diffusers' VAE tiling): large images in bounded memory, slightly
    /// different pixels near the seams. Written as `VAE tiling: True`.
    pub vae_tiling: bool,
}

fn one_f32() -> f32 {
    1.0
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            prompt: String::new(),
            negative_prompt: String::new(),
            steps: 20,
            sampler: "Euler a".into(),
            schedule_type: None,
            cfg_scale: 7.0,
            seed: 0,
            width: 512,
            height: 512,
            batch_size: 1,
            batch_count: 1,
            clip_skip: 1,
            rng: RngKind::Gpu,
            noise_device: None,
            ensd: 0,
            sampler_params: SamplerParams::default(),
            model: String::new(),
            vae: "auto".into(),
            hypernets: Vec::new(),
            loras: Vec::new(),
            emphasis: EmphasisMode::Original,
            nai_braces: false,
            denoising_strength: 0.75,
            resize_mode: 0,
            enable_hr: false,
            hr_scale: 2.0,
            hr_upscaler: "Latent".into(),
            hr_second_pass_steps: 0,
            hr_resize_x: 0,
            hr_resize_y: 0,
            hr_sampler: String::new(),
            hr_schedule_type: None,
            hr_prompt: String::new(),
            hr_negative_prompt: String::new(),
            mask_blur: 4,
            inpainting_fill: 1,
            inpaint_full_res: false,
            inpaint_full_res_padding: 32,
            inpainting_mask_invert: false,
            old_prompt_timelines: false,
            downcast_alphas_cumprod: false,
            pad_conds: false,
            pad_conds_v0: false,
            vae_decoder: VaeDecoder::full(),
            vae_encoder: VaeEncoder::full(),
            vae_tiling: false,
        }
    }
}

impl GenerationSettings {
    /// Settings from JSON; an unknown field or a wrong type is an error naming it.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Invalid(format!("settings: {e}")))
    }

    pub fn to_json(&self) -> String {
        // Every field serialises (numbers, strings, options); this cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Take every setting an A1111 infotext records, as A1111's "send to txt2img" does
    /// (a missing `Clip skip` is 1, a missing `RNG` is GPU); settings it does not record
    /// keep their values. The hypernetwork of `Hypernet:` becomes a setting unless the
    /// prompt already names one in a tag. A value that cannot be read is an error here;
    /// [`Self::paste_infotext`] keeps going instead, as A1111's paste does.
    pub fn apply_infotext(&mut self, t: &Infotext) -> Result<()> {
        match self.paste_infotext(t).into_iter().next() {
            Some(first) => Err(Error::Invalid(first)),
            None => Ok(()),
        }
    }

    /// [`Self::apply_infotext`] field by field, as A1111's paste: a field whose value
    /// cannot be read (`CFG scale: abc`) leaves its setting as it was, and the returned
    /// warnings name each such field and value.
    pub fn paste_infotext(&mut self, t: &Infotext) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut field = |r: Result<()>| {
            if let Err(e) = r {
                warnings.push(e.to_string());
            }
        };
        self.prompt.clone_from(&t.prompt);
        self.negative_prompt.clone_from(&t.negative_prompt);
        field(t.steps().map(|v| {
            if let Some(v) = v {
                self.steps = v as usize;
            }
        }));
        if let Some(sampler) = t.sampler() {
            self.sampler = sampler.to_string();
            self.schedule_type = t.schedule_type().map(str::to_string);
        }
        field(t.cfg_scale().map(|v| {
            if let Some(v) = v {
                self.cfg_scale = v as f32;
            }
        }));
        field(t.seed().map(|v| {
            if let Some(v) = v {
                self.seed = v;
            }
        }));
        field(t.size().map(|v| {
            if let Some((w, h)) = v {
                (self.width, self.height) = (w as usize, h as usize);
            }
        }));
        field(t.clip_skip().map(|v| self.clip_skip = v as usize));
        field(t.rng().parse().map(|v| self.rng = v));
        field(t.ensd().map(|v| {
            if let Some(v) = v {
                self.ensd = v;
            }
        }));
        if let Some(mode) = t.get("Emphasis") {
            field(EmphasisMode::from_a1111_name(mode).map(|m| self.emphasis = m));
        }
        field(SamplerParams::from_infotext(t).map(|p| self.sampler_params = p));
        // The hash identifies the exact file; the name is the fallback.
        match (t.model(), t.model_hash()) {
            (Some(name), Some(hash)) => self.model = format!("{name} [{hash}]"),
            (Some(name), None) => self.model = name.to_string(),
            (None, Some(hash)) => self.model = hash.to_string(),
            (None, None) => {}
        }
        self.paste_img2img_infotext(t, &mut field);
        // A1111's paste turns its compatibility options on for PNGs of older versions
        // (`infotext_versions.backcompat`); a key of the infotext itself wins.
        let version = a1111_version(t.get("Version"));
        let flag = |key: &str| t.get(key).map(|v| v.trim().eq_ignore_ascii_case("true"));
        self.old_prompt_timelines = flag("Old prompt editing timelines")
            .unwrap_or(version.is_some_and(|v| v < (1, 6, 0, 0)) && t.prompt.contains('['));
        self.downcast_alphas_cumprod =
            flag("Downcast alphas_cumprod").unwrap_or(version.is_some_and(|v| v < (1, 7, 0, 225)));
        self.pad_conds = flag("Pad conds").unwrap_or(false);
        self.pad_conds_v0 = flag("Pad conds v0").unwrap_or(
            version.is_some_and(|v| v < (1, 6, 0, 0))
                && matches!(t.get("Sampler").map(str::trim), Some("DDIM" | "PLMS")),
        );
        self.vae_decoder = VaeDecoder::full();
        if let Some(v) = t.get("VAE Decoder") {
            field(
                VaeDecoder::parse(v)
                    .map(|d| self.vae_decoder = d)
                    .map_err(|e| Error::Invalid(format!("infotext: `VAE Decoder: {v}`: {e}"))),
            );
        }
        self.vae_encoder = VaeEncoder::full();
        if let Some(v) = t.get("VAE Encoder") {
            field(
                VaeEncoder::parse(v)
                    .map(|e| self.vae_encoder = e)
                    .map_err(|e| Error::Invalid(format!("infotext: `VAE Encoder: {v}`: {e}"))),
            );
        }
        self.vae_tiling = flag("VAE tiling").unwrap_or(false);
        self.hypernets.clear();
        if let (Some(names), false) = (t.hypernet(), self.prompt.contains("<hypernet:")) {
            let strengths: Vec<&str> = t
                .get("Hypernet strength")
                .map(|s| s.split(',').map(str::trim).collect())
                .unwrap_or_default();
            for (i, name) in names.split(',').map(str::trim).enumerate() {
                let strength = match strengths.get(i) {
                    Some(s) => match s.parse::<f32>().ok().filter(|v| v.is_finite()) {
                        Some(v) => v,
                        None => {
                            field(Err(Error::Invalid(format!(
                                "infotext: `Hypernet strength: {s}` is not a number"
                            ))));
                            1.0
                        }
                    },
                    None => 1.0,
                };
                self.hypernets.push(NetworkSetting {
                    name: name.to_string(),
                    strength,
                });
            }
        }
        warnings
    }

    /// The img2img and hires fields (A1111's paste: hires is on when the text has
    /// `Denoising strength` and one of `Hires upscale`, `Hires upscaler`, `Hires resize`).
    /// Each unreadable value goes to `field` and leaves its setting alone.
    fn paste_img2img_infotext(&mut self, t: &Infotext, field: &mut dyn FnMut(Result<()>)) {
        let number = |key: &str| -> Result<Option<f64>> {
            t.get(key)
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| {
                            Error::Invalid(format!("infotext: `{key}: {v}` is not a number"))
                        })
                })
                .transpose()
        };
        field(number("Denoising strength").map(|v| {
            if let Some(v) = v {
                self.denoising_strength = v;
            }
        }));
        field(number("Mask blur").map(|v| {
            if let Some(v) = v {
                self.mask_blur = v as u32;
            }
        }));
        // A1111's paste fills in the inpainting fields an infotext leaves out with the
        // values that write nothing (`infotext_utils.parse_generation_parameters`).
        match t.get("Mask mode").map(str::trim) {
            None | Some("Inpaint masked") => self.inpainting_mask_invert = false,
            Some("Inpaint not masked") => self.inpainting_mask_invert = true,
            Some(v) => field(Err(Error::Invalid(format!(
                "infotext: `Mask mode: {v}` is not `Inpaint masked` or `Inpaint not masked`"
            )))),
        }
        match t.get("Masked content") {
            None => self.inpainting_fill = MaskedContent::Original.index(),
            Some(v) => match MaskedContent::parse(v) {
                Ok(m) => self.inpainting_fill = m.index(),
                Err(_) => field(Err(Error::Invalid(format!(
                    "infotext: `Masked content: {v}` is not fill, original, latent noise or latent nothing"
                )))),
            },
        }
        match t.get("Inpaint area").map(str::trim) {
            None | Some("Whole picture") => self.inpaint_full_res = false,
            Some("Only masked") => self.inpaint_full_res = true,
            Some(v) => field(Err(Error::Invalid(format!(
                "infotext: `Inpaint area: {v}` is not `Whole picture` or `Only masked`"
            )))),
        }
        field(
            number("Masked area padding")
                .map(|v| self.inpaint_full_res_padding = v.map_or(32, |v| v as u32)),
        );
        // A1111's txt2img paste turns hires fix on for `Denoising strength` and any of
        // `Hires upscale`, `Hires upscaler`, `Hires resize`, but its parser always adds a
        // `Hires resize` (0x0), so in effect any `Denoising strength` does it, img2img
        // PNGs' too (an img2img run ignores it).
        self.enable_hr = t.get("Denoising strength").is_some();
        (self.hr_resize_x, self.hr_resize_y) = (0, 0);
        self.paste_old_hires_fix(t, field);
        if !self.enable_hr {
            return;
        }
        field(number("Hires upscale").map(|v| {
            if let Some(v) = v {
                self.hr_scale = v;
            }
        }));
        if let Some(v) = t.get("Hires upscaler") {
            self.hr_upscaler = v.to_string();
        }
        field(number("Hires steps").map(|v| {
            if let Some(v) = v {
                self.hr_second_pass_steps = v as usize;
            }
        }));
        if let Some(v) = t.get("Hires resize") {
            let size = v
                .split_once('x')
                .and_then(|(x, y)| Some((x.trim().parse().ok()?, y.trim().parse().ok()?)));
            match size {
                Some((x, y)) => (self.hr_resize_x, self.hr_resize_y) = (x, y),
                None => field(Err(Error::Invalid(format!(
                    "infotext: `Hires resize: {v}` is not WxH"
                )))),
            }
        }
        self.hr_sampler = t.get("Hires sampler").unwrap_or("").to_string();
        self.hr_schedule_type = t
            .get("Hires schedule type")
            .map(str::trim)
            .filter(|v| !v.is_empty() && !v.starts_with("Use same"))
            .map(str::to_string);
        self.hr_prompt = t.get("Hires prompt").unwrap_or("").to_string();
        self.hr_negative_prompt = t.get("Hires negative prompt").unwrap_or("").to_string();
    }

    /// A1111's `restore_old_hires_fix_params`: PNGs of the hires fix before January 2023
    /// record the final size as `Size` and the first pass as `First pass size` (0x0 for
    /// "as close to 512² as the aspect ratio allows"); they become the first-pass size and
    /// a hires resize target.
    fn paste_old_hires_fix(&mut self, t: &Infotext, field: &mut dyn FnMut(Result<()>)) {
        let Some(v) = t.get("First pass size") else {
            return;
        };
        let size = v.split_once('x').and_then(|(w, h)| {
            Some((
                w.trim().parse::<usize>().ok()?,
                h.trim().parse::<usize>().ok()?,
            ))
        });
        let Some((mut fw, mut fh)) = size else {
            field(Err(Error::Invalid(format!(
                "infotext: `First pass size: {v}` is not WxH"
            ))));
            return;
        };
        let (w, h) = (self.width, self.height);
        if fw == 0 || fh == 0 {
            // A1111's old automatic first pass: the 512² pixel count at the final aspect,
            // each side rounded up to a multiple of 64.
            let scale = ((512.0 * 512.0) / (w as f64 * h as f64)).sqrt();
            fw = ((scale * w as f64 / 64.0).ceil() * 64.0) as usize;
            fh = ((scale * h as f64 / 64.0).ceil() * 64.0) as usize;
        }
        (self.width, self.height) = (fw, fh);
        (self.hr_resize_x, self.hr_resize_y) = (w, h);
    }

    /// The settings an infotext describes, over the defaults.
    pub fn from_infotext(t: &Infotext) -> Result<Self> {
        let mut s = Self::default();
        s.apply_infotext(t)?;
        Ok(s)
    }

    /// The torch device the noise is made for.
    pub fn effective_noise_device(&self) -> TorchDevice {
        self.noise_device
            .unwrap_or(TorchDevice::implied_by(self.rng))
    }

    /// Seed of the first image of batch `batch`.
    pub fn batch_seed(&self, batch: usize) -> u64 {
        self.seed
            .wrapping_add((batch as u64).wrapping_mul(self.batch_size as u64))
    }
}

/// `gpu` / `cpu` / `nv` in JSON (A1111's `GPU`/`CPU`/`NV` are accepted too).
mod rng_text {
    use super::*;
    pub fn serialize<S: Serializer>(v: &RngKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.a1111_name().to_ascii_lowercase())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RngKind, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `auto` / `cuda` / `cpu` in JSON.
mod device_text {
    use super::*;
    pub fn serialize<S: Serializer>(v: &Option<TorchDevice>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(d.name()),
            None => s.serialize_str("auto"),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TorchDevice>, D::Error> {
        let text = String::deserialize(d)?;
        TorchDevice::parse_or_auto(&text).map_err(serde::de::Error::custom)
    }
}

/// A1111's emphasis names in JSON (`Original`, `No norm`, `Ignore`, `None`).
mod emphasis_text {
    use super::*;
    pub fn serialize<S: Serializer>(v: &EmphasisMode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.a1111_name())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<EmphasisMode, D::Error> {
        let text = String::deserialize(d)?;
        EmphasisMode::from_a1111_name(&text).map_err(serde::de::Error::custom)
    }
}

/// The A1111 release an infotext's `Version` names, as (major, minor, patch, post), read
/// as A1111's `infotext_versions.parse_version` reads its own tags with `packaging`:
/// `v1.5.1` is (1, 5, 1, 0), `v1.7.0-225-gabc1234` the post-release (1, 7, 0, 225), a
/// release candidate `v1.6.0-RC-28-g…` sorts before its release (post -1). Anything else
/// (Forge's `f2.0…`, other programs) is `None`: then no compatibility option is turned on.
pub fn a1111_version(text: Option<&str>) -> Option<(u32, u32, u32, i64)> {
    let text = text?.trim();
    let text = text.strip_prefix('v').unwrap_or(text);
    let mut dashed = text.split('-');
    let release = dashed.next()?;
    let post = match dashed.next() {
        None => 0,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
        // packaging's pre-release spellings (`-RC`, `-pre`, `-beta2`, …) sort before the
        // release.
        Some(p)
            if [
                "rc", "pre", "preview", "alpha", "beta", "a", "b", "c", "dev",
            ]
            .iter()
            .any(|tag| {
                let p = p.to_ascii_lowercase();
                p.strip_prefix(tag)
                    .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
            }) =>
        {
            -1
        }
        Some(_) => return None,
    };
    let mut parts = release.split('.');
    let mut next = || -> Option<u32> {
        match parts.next() {
            None => Some(0),
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok(),
            Some(_) => None,
        }
    };
    let v = (next()?, next()?, next()?, post);
    parts.next().is_none().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Easel's own PNGs turn on no backcompat, in Easel or (as `packaging.version.parse`
    /// rejects the label) in A1111.
    #[test]
    fn easels_version_label_is_no_a1111_release() {
        assert_eq!(a1111_version(Some(crate::VERSION_LABEL)), None);
        assert_eq!(a1111_version(Some("v1.10.1")), Some((1, 10, 1, 0)));
    }

    #[test]
    fn json_round_trips_and_names_bad_fields() {
        let mut s = GenerationSettings {
            prompt: "a cat".into(),
            rng: RngKind::Cpu,
            noise_device: Some(TorchDevice::Cpu),
            emphasis: EmphasisMode::NoNorm,
            ensd: 31337,
            ..Default::default()
        };
        s.sampler_params.eta = Some(0.5);
        s.hypernets
            .push(NetworkSetting::parse("anime:0.7").unwrap());
        let back = GenerationSettings::from_json(&s.to_json()).unwrap();
        assert_eq!(back, s);
        let text = s.to_json();
        assert!(text.contains(r#""rng":"cpu""#) && text.contains(r#""emphasis":"No norm""#));
        let err = GenerationSettings::from_json(r#"{"colour": 1}"#).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        let err = GenerationSettings::from_json(r#"{"steps": "many"}"#).unwrap_err();
        assert!(err.to_string().contains("many"), "{err}");
        let err = GenerationSettings::from_json(r#"{"emphasis": "Loud"}"#).unwrap_err();
        assert!(err.to_string().contains("Loud"), "{err}");
    }

    /// A1111's paste of the inpainting fields, and its defaults for those left out
    /// (`infotext_utils.parse_generation_parameters`).
    #[test]
    fn infotext_restores_inpainting_fields() {
        let t = Infotext::parse(
            "a cat\nSteps: 20, Sampler: Euler, Seed: 1, Size: 512x512, Denoising strength: 0.4, \
             Mask blur: 7, Mask mode: Inpaint not masked, Inpaint area: Only masked, \
             Masked area padding: 48, Masked content: latent nothing",
        );
        let s = GenerationSettings::from_infotext(&t).unwrap();
        assert_eq!(s.mask_blur, 7);
        assert!(s.inpainting_mask_invert && s.inpaint_full_res);
        assert_eq!(s.inpaint_full_res_padding, 48);
        assert_eq!(s.inpainting_fill, 3);
        let s = GenerationSettings::from_infotext(&Infotext::parse(
            "a cat\nSteps: 20, Seed: 1, Denoising strength: 0.4, Masked content: fill",
        ))
        .unwrap();
        assert!(!s.inpainting_mask_invert && !s.inpaint_full_res);
        assert_eq!((s.inpaint_full_res_padding, s.inpainting_fill), (32, 0));
        let t = Infotext::parse("a cat\nSteps: 20, Seed: 1, Inpaint area: Everywhere");
        let err = GenerationSettings::from_infotext(&t).unwrap_err();
        assert!(err.to_string().contains("Everywhere"), "{err}");
    }

    /// `infotext_versions.backcompat`: before v1.6.0 a prompt with `[` gets the old prompt
    /// editing timelines; the infotext key itself wins; unknown version texts change nothing.
    #[test]
    fn old_versions_turn_on_old_prompt_timelines() {
        let with = |version: &str, prompt: &str| {
            let t = Infotext::parse(&format!(
                "{prompt}\nSteps: 20, Sampler: Euler, Seed: 1, Size: 512x512, Version: {version}"
            ));
            GenerationSettings::from_infotext(&t)
                .unwrap()
                .old_prompt_timelines
        };
        assert!(with("v1.5.1", "a [cat:dog:0.5]"));
        assert!(with("v1.2.0-14-gabcdef1", "a [cat|dog]"));
        assert!(with("v1.6.0-RC-28-gabc", "a [cat|dog]"));
        assert!(!with("v1.5.1", "a cat"));
        assert!(!with("v1.6.0", "a [cat:dog:0.5]"));
        assert!(!with("v1.10.1", "a [cat:dog:0.5]"));
        assert!(!with(
            "f2.0.1v1.10.1-previous-669-gdfdcbab6",
            "a [cat:dog:0.5]"
        ));
        let t = Infotext::parse(
            "a [cat:dog:0.5]\nSteps: 20, Seed: 1, Old prompt editing timelines: True, Version: v1.9.0",
        );
        assert!(
            GenerationSettings::from_infotext(&t)
                .unwrap()
                .old_prompt_timelines
        );
        assert_eq!(
            a1111_version(Some("v1.7.0-225-g1234abc")),
            Some((1, 7, 0, 225))
        );
        assert_eq!(a1111_version(Some("1.6")), Some((1, 6, 0, 0)));
        assert_eq!(
            a1111_version(Some("v1.6.0-RC-28-gabc")),
            Some((1, 6, 0, -1))
        );
        assert_eq!(a1111_version(Some("easel 0.1.0")), None);
        // Downcast alphas_cumprod: before v1.7.0-225 (packaging's post-release 225).
        let downcast = |version: &str| {
            let t = Infotext::parse(&format!(
                "a cat\nSteps: 20, Sampler: Euler, Seed: 1, Version: {version}"
            ));
            GenerationSettings::from_infotext(&t)
                .unwrap()
                .downcast_alphas_cumprod
        };
        assert!(downcast("v1.5.1"));
        assert!(downcast("v1.7.0"));
        assert!(downcast("v1.7.0-224-gabc"));
        assert!(!downcast("v1.7.0-225-gabc"));
        assert!(!downcast("v1.8.0"));
        assert!(!downcast("f2.0.1v1.10.1-previous-669-gdfdcbab6"));
        // Pad conds v0: before 1.6, for DDIM and PLMS only (`infotext_versions.backcompat`);
        // the key itself wins either way.
        let pad_v0 = |sampler: &str, version: &str, extra: &str| {
            let t = Infotext::parse(&format!(
                "a cat\nSteps: 20, Sampler: {sampler}, Seed: 1{extra}, Version: {version}"
            ));
            let s = GenerationSettings::from_infotext(&t).unwrap();
            (s.pad_conds_v0, s.pad_conds)
        };
        assert_eq!(pad_v0("DDIM", "v1.5.2", ""), (true, false));
        assert_eq!(pad_v0("PLMS", "v1.2.0", ""), (true, false));
        assert_eq!(pad_v0("Euler a", "v1.5.2", ""), (false, false));
        assert_eq!(pad_v0("DDIM", "v1.6.0", ""), (false, false));
        assert_eq!(
            pad_v0("DDIM", "v1.5.2", ", Pad conds v0: False"),
            (false, false)
        );
        assert_eq!(
            pad_v0("Euler", "v1.9.4", ", Pad conds v0: True"),
            (true, false)
        );
        assert_eq!(
            pad_v0("Euler", "v1.9.4", ", Pad conds: True"),
            (false, true)
        );
    }

    #[test]
    fn infotext_restores_what_a1111_records() {
        let t = Infotext::parse(
            "a {cat}\nNegative prompt: dog\nSteps: 28, Sampler: DPM++ 2M, Schedule type: Karras, \
             CFG scale: 11.5, Seed: 42, Size: 640x512, Model hash: 925997e9, Model: final-pruned, \
             Clip skip: 2, ENSD: 31337, RNG: CPU, Emphasis: No norm, Eta: 0.67, \
             Hypernet: anime, Hypernet strength: 0.5",
        );
        let s = GenerationSettings::from_infotext(&t).unwrap();
        assert_eq!(
            (s.prompt.as_str(), s.negative_prompt.as_str()),
            ("a {cat}", "dog")
        );
        assert_eq!(
            (s.steps, s.seed, s.width, s.height, s.clip_skip),
            (28, 42, 640, 512, 2)
        );
        assert_eq!(s.sampler, "DPM++ 2M");
        assert_eq!(s.schedule_type.as_deref(), Some("Karras"));
        assert_eq!((s.cfg_scale, s.ensd, s.rng), (11.5, 31337, RngKind::Cpu));
        assert_eq!(s.emphasis, EmphasisMode::NoNorm);
        assert_eq!(s.sampler_params.eta, Some(0.67));
        assert_eq!(s.model, "final-pruned [925997e9]");
        assert_eq!(
            s.hypernets,
            vec![NetworkSetting {
                name: "anime".into(),
                strength: 0.5
            }]
        );
        // A tag in the prompt already applies the hypernetwork.
        let tagged = Infotext::parse("x <hypernet:anime:0.5>\nSteps: 3, Hypernet: anime");
        assert!(GenerationSettings::from_infotext(&tagged)
            .unwrap()
            .hypernets
            .is_empty());
    }

    #[test]
    fn network_settings_parse_like_the_cli_flag() {
        assert_eq!(NetworkSetting::parse("anime").unwrap().strength, 1.0);
        assert_eq!(NetworkSetting::parse("a:b:0.25").unwrap().name, "a:b");
        assert_eq!(
            NetworkSetting::parse("anime:lots").unwrap().name,
            "anime:lots"
        );
        let err = NetworkSetting::parse("anime:inf").unwrap_err().to_string();
        assert!(err.contains("anime:inf"), "{err}");
        assert!(NetworkSetting::parse(":0.5").is_err());
    }

    #[test]
    fn batch_seeds_follow_a1111() {
        let s = GenerationSettings {
            seed: 10,
            batch_size: 3,
            ..Default::default()
        };
        assert_eq!((s.batch_seed(0), s.batch_seed(2)), (10, 16));
    }
}
