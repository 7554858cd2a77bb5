//! Request and response bodies of A1111's `/sdapi/v1` API, with A1111's field names, types
//! and defaults (its `modules/api/models.py`), so clients written for A1111 send and read
//! them unchanged. Fields Easel does not act on are still accepted; the txt2img handler
//! lists them in the response's `info` warnings.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

fn minus_one() -> i64 {
    -1
}
fn one() -> i64 {
    1
}
fn fifty() -> i64 {
    50
}
fn seven() -> f64 {
    7.0
}
fn size_default() -> i64 {
    512
}
fn yes() -> bool {
    true
}

/// `POST /sdapi/v1/txt2img` (A1111's `StableDiffusionTxt2ImgProcessingAPI`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Txt2ImgRequest {
    #[serde(default)]
    pub prompt: String,
    #[serde(default)]
    pub negative_prompt: String,
    #[serde(default)]
    pub styles: Option<Vec<String>>,
    #[serde(default = "minus_one")]
    pub seed: i64,
    #[serde(default = "minus_one")]
    pub subseed: i64,
    #[serde(default)]
    pub subseed_strength: f64,
    #[serde(default = "minus_one")]
    pub seed_resize_from_h: i64,
    #[serde(default = "minus_one")]
    pub seed_resize_from_w: i64,
    #[serde(default)]
    pub sampler_name: Option<String>,
    #[serde(default)]
    pub scheduler: Option<String>,
    #[serde(default = "one")]
    pub batch_size: i64,
    #[serde(default = "one")]
    pub n_iter: i64,
    #[serde(default = "fifty")]
    pub steps: i64,
    #[serde(default = "seven")]
    pub cfg_scale: f64,
    #[serde(default = "size_default")]
    pub width: i64,
    #[serde(default = "size_default")]
    pub height: i64,
    #[serde(default)]
    pub restore_faces: Option<bool>,
    #[serde(default)]
    pub tiling: Option<bool>,
    #[serde(default)]
    pub do_not_save_samples: bool,
    #[serde(default)]
    pub do_not_save_grid: bool,
    #[serde(default)]
    pub eta: Option<f64>,
    #[serde(default)]
    pub denoising_strength: Option<f64>,
    #[serde(default)]
    pub s_min_uncond: Option<f64>,
    #[serde(default)]
    pub s_churn: Option<f64>,
    #[serde(default)]
    pub s_tmax: Option<f64>,
    #[serde(default)]
    pub s_tmin: Option<f64>,
    #[serde(default)]
    pub s_noise: Option<f64>,
    #[serde(default)]
    pub override_settings: Option<Map<String, Value>>,
    #[serde(default = "yes")]
    pub override_settings_restore_afterwards: bool,
    #[serde(default)]
    pub refiner_checkpoint: Option<String>,
    #[serde(default)]
    pub refiner_switch_at: Option<f64>,
    #[serde(default)]
    pub disable_extra_networks: bool,
    #[serde(default)]
    pub firstpass_image: Option<String>,
    #[serde(default)]
    pub comments: Option<Value>,
    #[serde(default)]
    pub enable_hr: bool,
    #[serde(default)]
    pub firstphase_width: i64,
    #[serde(default)]
    pub firstphase_height: i64,
    #[serde(default)]
    pub hr_scale: Option<f64>,
    #[serde(default)]
    pub hr_upscaler: Option<String>,
    #[serde(default)]
    pub hr_second_pass_steps: Option<i64>,
    #[serde(default)]
    pub hr_resize_x: Option<i64>,
    #[serde(default)]
    pub hr_resize_y: Option<i64>,
    #[serde(default)]
    pub hr_checkpoint_name: Option<String>,
    #[serde(default)]
    pub hr_sampler_name: Option<String>,
    #[serde(default)]
    pub hr_scheduler: Option<String>,
    #[serde(default)]
    pub hr_prompt: Option<String>,
    #[serde(default)]
    pub hr_negative_prompt: Option<String>,
    #[serde(default)]
    pub force_task_id: Option<String>,
    /// Deprecated alias of `sampler_name` (A1111's default is `Euler`).
    #[serde(default)]
    pub sampler_index: Option<String>,
    #[serde(default)]
    pub script_name: Option<String>,
    #[serde(default)]
    pub script_args: Option<Vec<Value>>,
    #[serde(default = "yes")]
    pub send_images: bool,
    #[serde(default)]
    pub save_images: bool,
    #[serde(default)]
    pub alwayson_scripts: Option<Map<String, Value>>,
    #[serde(default)]
    pub infotext: Option<String>,
    /// Fields A1111 does not define either (it ignores them); reported back as warnings.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// `txt2img`'s answer: base64 PNGs, the request as understood, and `info` (a JSON string).
#[derive(Debug, Serialize)]
pub struct Txt2ImgResponse {
    pub images: Vec<String>,
    pub parameters: Value,
    pub info: String,
}

/// `POST /sdapi/v1/png-info`.
#[derive(Debug, Deserialize)]
pub struct PngInfoRequest {
    /// Base64 PNG, optionally as a `data:image/png;base64,` URL.
    pub image: String,
}

/// `GET /sdapi/v1/progress` query.
#[derive(Debug, Default, Deserialize)]
pub struct ProgressQuery {
    #[serde(default)]
    pub skip_current_image: bool,
}

/// `state` of A1111's progress answer.
#[derive(Debug, Serialize)]
pub struct ProgressState {
    pub skipped: bool,
    pub interrupted: bool,
    pub stopping_generation: bool,
    pub job: String,
    pub job_count: usize,
    pub job_timestamp: String,
    pub job_no: usize,
    pub sampling_step: usize,
    pub sampling_steps: usize,
    /// Easel's addition: requests waiting for their turn.
    pub queued: usize,
}

#[derive(Debug, Serialize)]
pub struct ProgressResponse {
    pub progress: f64,
    pub eta_relative: f64,
    pub state: ProgressState,
    pub current_image: Option<String>,
    pub textinfo: Option<String>,
    pub current_task: Option<String>,
}

/// One entry of `GET /sdapi/v1/samplers`.
#[derive(Debug, Serialize)]
pub struct SamplerItem {
    pub name: String,
    pub aliases: Vec<String>,
    pub options: Map<String, Value>,
}

/// One entry of `GET /sdapi/v1/schedulers`.
#[derive(Debug, Serialize)]
pub struct SchedulerItem {
    pub name: String,
    pub label: String,
    pub aliases: Option<Vec<String>>,
    pub default_rho: f64,
    pub need_inner_model: bool,
}

/// One entry of `GET /sdapi/v1/sd-models`.
#[derive(Debug, Serialize)]
pub struct SdModelItem {
    pub title: String,
    pub model_name: String,
    pub hash: Option<String>,
    pub sha256: Option<String>,
    pub filename: String,
    pub config: Option<String>,
}

/// One entry of `GET /sdapi/v1/sd-vae`.
#[derive(Debug, Serialize)]
pub struct SdVaeItem {
    pub model_name: String,
    pub filename: String,
}

/// One entry of `GET /sdapi/v1/hypernetworks`.
#[derive(Debug, Serialize)]
pub struct HypernetworkItem {
    pub name: String,
    pub path: String,
}

fn four() -> i64 {
    4
}

/// A1111 declares some switches as `int` and others as `bool`, and its clients send either
/// (pydantic converts `true`/`1` both ways); Easel takes both.
mod bool_or_int {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(i64),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(match Flag::deserialize(d)? {
            Flag::Bool(b) => b,
            Flag::Int(i) => i != 0,
        })
    }
}

/// The fields `POST /sdapi/v1/img2img` adds to txt2img's (A1111's
/// `StableDiffusionImg2ImgProcessingAPI`, with its defaults: note that the API's
/// `inpaint_full_res` is on and its `inpainting_fill` is `fill`, unlike the UI's). The
/// shared fields are read as a [`Txt2ImgRequest`] from the same body.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Img2ImgFields {
    /// Base64 images, optionally as `data:image/…;base64,` URLs.
    #[serde(default)]
    pub init_images: Option<Vec<String>>,
    #[serde(default)]
    pub resize_mode: i64,
    #[serde(default)]
    pub image_cfg_scale: Option<f64>,
    /// Base64 mask: white = repaint (or, with transparency, its alpha).
    #[serde(default)]
    pub mask: Option<String>,
    #[serde(default = "four")]
    pub mask_blur_x: i64,
    #[serde(default = "four")]
    pub mask_blur_y: i64,
    /// Sets both `mask_blur_x` and `mask_blur_y` when given.
    #[serde(default)]
    pub mask_blur: Option<i64>,
    #[serde(default = "yes")]
    pub mask_round: bool,
    #[serde(default)]
    pub inpainting_fill: i64,
    #[serde(default = "yes", deserialize_with = "bool_or_int::deserialize")]
    pub inpaint_full_res: bool,
    #[serde(default)]
    pub inpaint_full_res_padding: i64,
    #[serde(default, deserialize_with = "bool_or_int::deserialize")]
    pub inpainting_mask_invert: bool,
    #[serde(default)]
    pub initial_noise_multiplier: Option<f64>,
    #[serde(default)]
    pub latent_mask: Option<String>,
    #[serde(default)]
    pub include_init_images: bool,
}

impl Img2ImgFields {
    /// The names of these fields, which the shared [`Txt2ImgRequest`] reads as unknown.
    pub const NAMES: [&'static str; 15] = [
        "init_images",
        "resize_mode",
        "image_cfg_scale",
        "mask",
        "mask_blur_x",
        "mask_blur_y",
        "mask_blur",
        "mask_round",
        "inpainting_fill",
        "inpaint_full_res",
        "inpaint_full_res_padding",
        "inpainting_mask_invert",
        "initial_noise_multiplier",
        "latent_mask",
        "include_init_images",
    ];
}

/// One entry of `GET /sdapi/v1/upscalers`.
#[derive(Debug, Serialize)]
pub struct UpscalerItem {
    pub name: String,
    pub model_name: Option<String>,
    pub model_path: Option<String>,
    pub model_url: Option<String>,
    pub scale: f64,
}

/// One entry of `GET /sdapi/v1/latent-upscale-modes`.
#[derive(Debug, Serialize)]
pub struct LatentUpscaleModeItem {
    pub name: String,
}

fn two() -> f64 {
    2.0
}
fn five_twelve() -> i64 {
    512
}
fn none_name() -> String {
    "None".to_string()
}

/// `POST /sdapi/v1/extra-single-image` (A1111's `ExtrasSingleImageRequest`): the Extras tab's
/// upscale of one base64 image. Face restoration is not in Easel: asking for it is a 422.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ExtrasSingleImageRequest {
    pub image: String,
    /// 0: scale by `upscaling_resize`; 1: scale to `upscaling_resize_w` × `_h`.
    #[serde(default)]
    pub resize_mode: i64,
    #[serde(default = "yes")]
    pub show_extras_results: bool,
    #[serde(default)]
    pub gfpgan_visibility: f64,
    #[serde(default)]
    pub codeformer_visibility: f64,
    #[serde(default)]
    pub codeformer_weight: f64,
    #[serde(default = "two")]
    pub upscaling_resize: f64,
    #[serde(default = "five_twelve")]
    pub upscaling_resize_w: i64,
    #[serde(default = "five_twelve")]
    pub upscaling_resize_h: i64,
    #[serde(default = "yes")]
    pub upscaling_crop: bool,
    #[serde(default = "none_name")]
    pub upscaler_1: String,
    #[serde(default = "none_name")]
    pub upscaler_2: String,
    #[serde(default)]
    pub extras_upscaler_2_visibility: f64,
    #[serde(default)]
    pub upscale_first: bool,
}

/// `extra-single-image`'s answer.
#[derive(Debug, Serialize)]
pub struct ExtrasSingleImageResponse {
    pub html_info: String,
    pub image: String,
}
