//! What the worker calls: open the WebGPU device, load a checkpoint from the user's files,
//! generate. The device and the loaded model live in this (single) thread between calls.

use crate::blob_source::BlobSource;
use crate::hypernets::{self, PickedHypernet};
use crate::settings::WebSettings;
use easel_core::infotext::encode_png;
use easel_core::io::ByteSource;
use easel_core::model::{CheckpointSources, StableDiffusion};
use easel_core::nn::hook::AttentionHook;
use easel_core::pipeline::{txt2img, txt2img_infotext};
use easel_core::Error;
use easel_hypernetwork::{extract_hypernet_tags, HypernetworkStack};
use easel_wgpu::{AdapterChoice, F16Storage, WgpuBackend, WgpuOptions};
use js_sys::{Array, Function, Object, Reflect, Uint8Array, Uint8ClampedArray};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;
use web_sys::{File, FileReaderSync};

type Model = StableDiffusion<WgpuBackend>;

thread_local! {
    static BACKEND: RefCell<Option<WgpuBackend>> = const { RefCell::new(None) };
    static MODEL: RefCell<Option<Rc<Model>>> = const { RefCell::new(None) };
    static HYPERNETS: RefCell<Rc<Vec<PickedHypernet>>> = RefCell::new(Rc::new(Vec::new()));
}

fn js_err(e: Error) -> JsError {
    JsError::new(&e.to_string())
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    // Setting a property on a plain object we just created cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

/// Opens the WebGPU adapter (weights packed two f16 per word: most browsers' software and
/// many hardware adapters lack `shader-f16`). Returns the adapter's description.
#[wasm_bindgen(js_name = initGpu)]
pub async fn init_gpu() -> Result<String, JsError> {
    let b = WgpuBackend::new(WgpuOptions {
        adapter: AdapterChoice::Default,
        f16: F16Storage::Packed,
        ..Default::default()
    })
    .await
    .map_err(|e| {
        JsError::new(&format!(
            "WebGPU is not usable here: {e}. Use a browser with WebGPU enabled."
        ))
    })?;
    let name = easel_core::Backend::name(&b);
    BACKEND.with(|s| *s.borrow_mut() = Some(b));
    Ok(name)
}

fn backend() -> Result<WgpuBackend, JsError> {
    BACKEND
        .with(|s| s.borrow().clone())
        .ok_or_else(|| JsError::new("the GPU is not initialised (call initGpu first)"))
}

fn read_text(file: &File) -> Result<String, JsError> {
    let reader = FileReaderSync::new()
        .map_err(|e| JsError::new(&format!("FileReaderSync unavailable: {e:?}")))?;
    reader
        .read_as_text(file)
        .map_err(|e| JsError::new(&format!("{}: cannot read: {e:?}", file.name())))
}

/// Loads a checkpoint (`.ckpt`/`.safetensors`) with an optional LDM yaml and VAE override
/// onto the GPU, replacing any loaded one. Returns `{name, hash, vae}`.
#[wasm_bindgen(js_name = loadModel)]
pub fn load_model(
    checkpoint: File,
    yaml: Option<File>,
    vae: Option<File>,
) -> Result<JsValue, JsError> {
    let b = backend()?;
    // Drop the old model first so its buffers are freed before the new one is uploaded.
    MODEL.with(|m| *m.borrow_mut() = None);
    let source = |f: &File| -> Result<Arc<dyn ByteSource>, JsError> {
        Ok(Arc::new(
            BlobSource::new(f.name(), f.clone().into()).map_err(js_err)?,
        ))
    };
    let sources = CheckpointSources {
        checkpoint: source(&checkpoint)?,
        checkpoint_name: checkpoint.name(),
        config: match &yaml {
            Some(f) => Some((f.name(), read_text(f)?)),
            None => None,
        },
        vae: match &vae {
            Some(f) => Some((f.name(), source(f)?)),
            None => None,
        },
    };
    let model = StableDiffusion::load_from_sources(&b, &sources).map_err(js_err)?;
    let out = Object::new();
    set(&out, "name", model.info.name.clone());
    set(&out, "hash", model.info.hash.clone());
    set(
        &out,
        "vae",
        model
            .info
            .vae_name
            .clone()
            .map(JsValue::from)
            .unwrap_or(JsValue::NULL),
    );
    MODEL.with(|m| *m.borrow_mut() = Some(Rc::new(model)));
    Ok(out.into())
}

/// Loads hypernetwork files (`.pt`/`.safetensors`) onto the GPU, replacing the set loaded
/// before. Returns their names (file stems) for the form and for `<hypernet:NAME:S>` tags.
#[wasm_bindgen(js_name = loadHypernetworks)]
pub fn load_hypernetworks(files: Vec<File>) -> Result<Vec<String>, JsError> {
    let b = backend()?;
    HYPERNETS.with(|h| *h.borrow_mut() = Rc::new(Vec::new()));
    let picked = files
        .iter()
        .map(|f| PickedHypernet::load(&b, f))
        .collect::<easel_core::Result<Vec<_>>>()
        .map_err(js_err)?;
    let names = picked.iter().map(|h| h.stem.clone()).collect();
    HYPERNETS.with(|h| *h.borrow_mut() = Rc::new(picked));
    Ok(names)
}

/// SD1.x latent → RGB by a fixed linear map (A1111's "Approx cheap" preview): one pixel per
/// latent cell, RGBA for a canvas.
fn preview_rgba(latent: &[f32], h: usize, w: usize) -> Vec<u8> {
    const COEFS: [[f32; 3]; 4] = [
        [0.298, 0.207, 0.208],
        [0.187, 0.286, 0.173],
        [-0.158, 0.189, 0.264],
        [-0.184, -0.271, -0.473],
    ];
    let plane = h * w;
    let mut out = vec![255u8; plane * 4];
    if latent.len() < 4 * plane {
        return out;
    }
    for p in 0..plane {
        for (c, px) in out[p * 4..p * 4 + 3].iter_mut().enumerate() {
            let v: f32 = (0..4).map(|l| latent[l * plane + p] * COEFS[l][c]).sum();
            *px = (((v + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0) as u8;
        }
    }
    out
}

/// Generates one batch with `settings_json` (see [`WebSettings`]). `on_step(step, total,
/// previewRgba, previewWidth, previewHeight)` is called after every sampling step. Returns an
/// array of `{png, infotext, seed, width, height}`; each PNG carries its infotext.
#[wasm_bindgen]
pub async fn generate(settings_json: String, on_step: Function) -> Result<Array, JsError> {
    let b = backend()?;
    let model = MODEL
        .with(|m| m.borrow().clone())
        .ok_or_else(|| JsError::new("no model is loaded: pick a checkpoint first"))?;
    let settings = WebSettings::from_json(&settings_json).map_err(js_err)?;
    // Hypernetwork tags are taken out of the text the encoder sees, as in the CLI.
    let (clean_prompt, tag_requests) = extract_hypernet_tags(&settings.prompt).map_err(js_err)?;
    let params = settings.to_params(&clean_prompt).map_err(js_err)?;
    let picked = HYPERNETS.with(|h| h.borrow().clone());
    let mut applied: Vec<(&PickedHypernet, f32)> = Vec::new();
    for (name, strength) in settings
        .hypernets
        .iter()
        .map(|h| (h.name.as_str(), h.strength))
        .chain(tag_requests.iter().map(|r| (r.name.as_str(), r.strength)))
    {
        applied.push((hypernets::find(&picked, name).map_err(js_err)?, strength));
    }
    let hn_fields = hypernets::infotext_entries(&applied).map_err(js_err)?;
    let stack = HypernetworkStack::new(
        applied
            .iter()
            .map(|(h, s)| (h.device.clone(), *s))
            .collect(),
    );
    let hooks: Vec<&dyn AttentionHook<WgpuBackend>> = if applied.is_empty() {
        Vec::new()
    } else {
        vec![&stack]
    };
    let (lh, lw) = (params.height / 8, params.width / 8);
    let channels = model.config.unet.in_channels;
    let mut progress = |step: usize, total: usize, latents: &[f32]| {
        let first = &latents[..latents.len().min(channels * lh * lw)];
        let rgba = Uint8ClampedArray::from(preview_rgba(first, lh, lw).as_slice());
        let args = Array::of5(
            &JsValue::from(step as u32 + 1),
            &JsValue::from(total as u32),
            &rgba,
            &JsValue::from(lw as u32),
            &JsValue::from(lh as u32),
        );
        let _ = on_step.apply(&JsValue::NULL, &args);
    };
    let images = txt2img(&b, &model, &params, hooks, &mut progress)
        .await
        .map_err(js_err)?;
    let out = Array::new();
    for img in images {
        let mut infotext = txt2img_infotext(&params, &model.info, img.seed);
        infotext.prompt.clone_from(&settings.prompt);
        for (k, v) in &hn_fields {
            infotext.push(k.clone(), v);
        }
        let info = infotext.format();
        let png = encode_png(img.width as u32, img.height as u32, &img.rgb, Some(&info))
            .map_err(js_err)?;
        let o = Object::new();
        set(&o, "png", Uint8Array::from(png.as_slice()));
        set(&o, "infotext", info);
        set(&o, "seed", img.seed as f64);
        set(&o, "width", img.width as u32);
        set(&o, "height", img.height as u32);
        out.push(&o);
    }
    Ok(out)
}

/// The A1111 infotext stored in a PNG's `parameters` chunk, or `null` (to fill the form from
/// a dropped image).
#[wasm_bindgen(js_name = readInfotext)]
pub fn read_infotext(png: &[u8]) -> Option<String> {
    easel_core::infotext::parameters_from_png_bytes(png, "image")
        .ok()
        .flatten()
}

/// Size of the wasm heap in bytes (it only grows), to check that loading a checkpoint
/// streams tensors rather than holding the file.
#[wasm_bindgen(js_name = wasmMemoryBytes)]
pub fn wasm_memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length() as f64
}

/// Sampler labels for the form, in registry order.
#[wasm_bindgen(js_name = samplerLabels)]
pub fn sampler_labels() -> Vec<String> {
    crate::settings::sampler_registry().labels()
}

/// Schedule type labels for the form, in registry order.
#[wasm_bindgen(js_name = scheduleLabels)]
pub fn schedule_labels() -> Vec<String> {
    crate::settings::scheduler_registry().labels()
}

/// An infotext as `{prompt, negative_prompt, <A1111 key>: value, ...}` (sizes split into
/// `Size-1`/`Size-2` as A1111's paste does).
#[wasm_bindgen(js_name = infotextFields)]
pub fn infotext_fields(text: &str) -> JsValue {
    let t = easel_core::infotext::Infotext::parse(text);
    let o = Object::new();
    set(&o, "prompt", t.prompt.clone());
    set(&o, "negative_prompt", t.negative_prompt.clone());
    for (k, v) in t.fields() {
        set(&o, &k, v);
    }
    o.into()
}

#[cfg(test)]
mod tests {
    use super::preview_rgba;

    /// Zero latent → (0+1)/2·255 = 127 in every channel, alpha opaque.
    #[test]
    fn preview_of_zero_latent_is_mid_grey() {
        let px = preview_rgba(&[0.0; 4 * 2 * 3], 2, 3);
        assert_eq!(px.len(), 2 * 3 * 4);
        assert!(px.chunks(4).all(|p| p == [127, 127, 127, 255]));
    }

    /// Channel 0 = 1 elsewhere 0: RGB = ((1+0.298)/2, (1+0.207)/2, (1+0.208)/2)·255, truncated.
    #[test]
    fn preview_uses_the_linear_map() {
        let mut lat = vec![0.0f32; 4];
        lat[0] = 1.0;
        let px = preview_rgba(&lat, 1, 1);
        assert_eq!(&px[..3], &[165, 153, 154]);
    }
}
