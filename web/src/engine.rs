//! What the worker calls: open the WebGPU device, load a checkpoint from the user's files,
//! generate. The device and the loaded model live in this (single) thread between calls.

use crate::blob_source::BlobSource;
use crate::hypernets::{PickedHypernet, PickedHypernets};
use crate::settings::{sampler_registry, scheduler_registry};
use easel_core::image::{decode_image, decode_mask};
use easel_core::infotext::{encode_png, Infotext};
use easel_core::io::ByteSource;
use easel_core::model::CheckpointSources;
use easel_core::pipeline::{latent_preview_rgb, CancelToken};
use easel_core::service::{GenerationInputs, GenerationService, GenerationSettings, StepProgress};
use easel_core::Error;
use easel_wgpu::{AdapterChoice, F16Storage, WgpuBackend, WgpuOptions};
use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use std::cell::RefCell;
use std::sync::Arc;
use wasm_bindgen::prelude::*;
use web_sys::{File, FileReaderSync};

thread_local! {
    /// The generation service (the same one the CLI and the server use), with the loaded
    /// model and hypernetworks. Taken out while a job runs, so a second call cannot
    /// interleave with it.
    static SERVICE: RefCell<Option<GenerationService<WgpuBackend>>> = const { RefCell::new(None) };
    static BUSY: RefCell<bool> = const { RefCell::new(false) };
    /// The running job's token: the worker's `skip` and `interrupt` messages reach it while
    /// the job waits for the GPU.
    static CANCEL: RefCell<CancelToken> = RefCell::new(CancelToken::new());
}

/// Skip (end the current image of the batch count) or interrupt (end the job) the running
/// job; nothing when none runs.
pub fn cancel_running(interrupt: bool) {
    CANCEL.with(|c| {
        let c = c.borrow();
        if interrupt {
            c.interrupt()
        } else {
            c.skip()
        }
    });
}

/// One sampling step as the page shows it: the cheap preview of the first image as RGBA.
pub struct StepEvent {
    pub step: usize,
    pub total: usize,
    pub batch: usize,
    pub batch_count: usize,
    pub rgba: Vec<u8>,
    pub width: usize,
    pub height: usize,
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
pub async fn init_gpu() -> Result<String, JsError> {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("navigator"))
        .unwrap_or(JsValue::UNDEFINED);
    let has_gpu = !navigator.is_undefined()
        && js_sys::Reflect::has(&navigator, &JsValue::from_str("gpu")).unwrap_or(false);
    if !has_gpu {
        return Err(JsError::new(crate::user_errors::NO_WEBGPU));
    }
    let b = WgpuBackend::new(WgpuOptions {
        adapter: AdapterChoice::Default,
        f16: F16Storage::Packed,
        ..Default::default()
    })
    .await
    .map_err(|e| JsError::new(&crate::user_errors::gpu_start_error(&e.to_string())))?;
    let name = easel_core::Backend::name(&b);
    let service = GenerationService::new(b, sampler_registry(), scheduler_registry())
        .with_networks(Box::new(PickedHypernets(Vec::new())));
    SERVICE.with(|s| *s.borrow_mut() = Some(service));
    Ok(name)
}

/// Runs `f` on the service (not while a generation holds it).
fn with_service<T>(
    f: impl FnOnce(&mut GenerationService<WgpuBackend>) -> Result<T, JsError>,
) -> Result<T, JsError> {
    if BUSY.with(|b| *b.borrow()) {
        return Err(JsError::new("a generation is running"));
    }
    SERVICE.with(|s| match s.borrow_mut().as_mut() {
        Some(service) => f(service),
        None => Err(JsError::new(
            "the GPU is not initialised (call initGpu first)",
        )),
    })
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
pub fn load_model(
    checkpoint: File,
    yaml: Option<File>,
    vae: Option<File>,
) -> Result<JsValue, JsError> {
    // Drop the old model first so its buffers are freed before the new one is uploaded.
    with_service(|svc| {
        svc.unload_model();
        Ok(())
    })?;
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
    // The service keeps the sources: a job with LoRAs loads the model again from them.
    let info = with_service(|svc| svc.set_model_sources(sources).map_err(js_err))?;
    let out = Object::new();
    set(&out, "name", info.name.clone());
    set(&out, "hash", info.hash.clone());
    set(
        &out,
        "vae",
        info.vae_name
            .clone()
            .map(JsValue::from)
            .unwrap_or(JsValue::NULL),
    );
    Ok(out.into())
}

/// Loads hypernetwork files (`.pt`/`.safetensors`) onto the GPU, replacing the set loaded
/// before. Returns their names (file stems) for the form and for `<hypernet:NAME:S>` tags.
pub fn load_hypernetworks(files: Vec<File>) -> Result<Vec<String>, JsError> {
    with_service(|svc| {
        svc.set_networks(Box::new(PickedHypernets(Vec::new())));
        let picked = files
            .iter()
            .map(|f| PickedHypernet::load(svc.backend(), f))
            .collect::<easel_core::Result<Vec<_>>>()
            .map_err(js_err)?;
        let names = picked.iter().map(|h| h.stem.clone()).collect();
        svc.set_networks(Box::new(PickedHypernets(picked)));
        Ok(names)
    })
}

/// A picked file as (file name, source), the shape the network loaders take.
type NamedSource = (String, Arc<dyn ByteSource>);

fn named_sources(files: &[File]) -> Result<Vec<NamedSource>, JsError> {
    files
        .iter()
        .map(|f| Ok((f.name(), BlobSource::of_file(f).map_err(js_err)?)))
        .collect()
}

/// Uses these LoRA / LyCORIS files (`.safetensors`, `.pt`, `.ckpt`, in A1111's order) for
/// `<lora:NAME:W>` tags, replacing the set picked before. Returns their names.
pub fn load_loras(files: Vec<File>) -> Result<Vec<String>, JsError> {
    let sources = named_sources(&files)?;
    let picked = easel_lora::PickedLoras::new(sources).map_err(js_err)?;
    let names = picked.names();
    with_service(|svc| {
        svc.set_weight_patches(Box::new(picked));
        Ok(())
    })?;
    Ok(names)
}

/// Uses these upscaler model files (ESRGAN, Real-ESRGAN, SwinIR; each with the A1111 folder
/// it came from, which decides its name and tiling) for hires fix, beside Lanczos and
/// Nearest, replacing those picked before. Each loads on its first use. Returns the names
/// hires fix can now use, in A1111's order.
pub fn set_upscalers(files: Vec<(File, String)>) -> Result<Vec<String>, JsError> {
    let mut sources: Vec<(String, String, Arc<dyn ByteSource>)> = Vec::new();
    for (f, folder) in &files {
        sources.push((
            f.name(),
            folder.clone(),
            BlobSource::of_file(f).map_err(js_err)?,
        ));
    }
    with_service(|svc| {
        let registry = easel_upscalers::source_upscalers(
            sources,
            svc.backend(),
            easel_upscalers::TileSettings::A1111,
        )
        .map_err(js_err)?;
        svc.set_upscalers(registry);
        Ok(upscaler_labels(svc))
    })
}

/// The hires-fix upscalers: A1111's latent modes, None, then the image upscalers (Lanczos,
/// Nearest and the picked models).
fn upscaler_labels(svc: &GenerationService<WgpuBackend>) -> Vec<String> {
    easel_core::pipeline::LATENT_UPSCALERS
        .iter()
        .map(|(name, _)| name.to_string())
        .chain(std::iter::once("None".to_string()))
        .chain(svc.upscalers().names().into_iter().map(String::from))
        .collect()
}

/// Uses TAESD from these files (`taesd_decoder.pth`, `taesd_encoder.pth`, either may be
/// missing) for jobs whose VAE decoder or encoder is `TAESD`, as the CLI uses
/// `models/VAE-approx/`. Returns `{decoder, encoder}`: which halves are available.
pub fn set_taesd(decoder: Option<File>, encoder: Option<File>) -> Result<JsValue, JsError> {
    let named = |f: &Option<File>| -> Result<Option<NamedSource>, JsError> {
        Ok(match f {
            Some(f) => Some((f.name(), BlobSource::of_file(f).map_err(js_err)?)),
            None => None,
        })
    };
    let files = easel_core::nn::taesd::TaesdFiles {
        decoder: named(&decoder)?,
        encoder: named(&encoder)?,
    };
    with_service(|svc| svc.set_vae_providers(vec![Box::new(files)]).map_err(js_err))?;
    let out = Object::new();
    set(&out, "decoder", decoder.is_some());
    set(&out, "encoder", encoder.is_some());
    Ok(out.into())
}

/// Loads A1111's live preview networks: the VAE-approx network (`VAE-approx/model.pt`) and
/// TAESD's decoder (`taesd_decoder.pth`), either may be missing. Returns `{approx, taesd}`:
/// which preview methods besides the cheap one are available.
pub fn set_preview_networks(approx: Option<File>, taesd: Option<File>) -> Result<JsValue, JsError> {
    let b = with_service(|svc| Ok(svc.backend().clone()))?;
    let (a, t) =
        crate::live_preview::set_networks(&b, approx.as_ref(), taesd.as_ref()).map_err(js_err)?;
    let out = Object::new();
    set(&out, "approx", a);
    set(&out, "taesd", t);
    Ok(out.into())
}

/// Uses these textual-inversion embedding files (`.pt`, `.bin`, `.safetensors`, in the
/// folder's scan order) instead of an embeddings folder, as the CLI uses `embeddings/`
/// beside the models: their file stems work in prompts. Returns `{names, warnings}` for the
/// loaded model's text encoder (SD1.x's before one is loaded; files of another width are
/// skipped with a warning, as A1111 does).
pub fn load_embeddings(files: Vec<File>) -> Result<JsValue, JsError> {
    let sources = named_sources(&files)?;
    let db = with_service(|svc| {
        svc.set_embedding_files(Some(sources));
        let width = svc
            .loaded_text_width()
            .unwrap_or(easel_core::embeddings::SD1_WIDTH);
        Ok(svc.embeddings_for(width).0)
    })?;
    let out = Object::new();
    let names: Array = db
        .embeddings()
        .iter()
        .map(|e| JsValue::from(e.name.clone()))
        .collect();
    let warnings: Array = db.warnings().into_iter().map(JsValue::from).collect();
    set(&out, "names", names);
    set(&out, "warnings", warnings);
    Ok(out.into())
}

/// The live preview of a latent as RGBA for a canvas (one pixel per latent cell).
fn preview_rgba(latent: &[f32], h: usize, w: usize) -> Vec<u8> {
    latent_preview_rgb(latent, h, w)
        .chunks(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect()
}

/// The init image and mask of an img2img / inpainting job, decoded as the CLI decodes
/// them (A1111's flattening onto white, its binary mask).
fn job_inputs(
    init_image: Option<Vec<u8>>,
    mask: Option<Vec<u8>>,
) -> Result<GenerationInputs, JsError> {
    let mut inputs = GenerationInputs::default();
    if let Some(bytes) = init_image {
        inputs
            .init_images
            .push(decode_image(&bytes, "init image").map_err(js_err)?);
    }
    if let Some(bytes) = mask {
        inputs.mask = Some(decode_mask(&bytes, "mask").map_err(js_err)?);
    }
    Ok(inputs)
}

/// Generates with `settings_json` (the service's [`GenerationSettings`] JSON; every batch
/// of the batch count), from `init_image` (and `mask`: inpainting) when given, as img2img.
/// `on_step` hears every sampling step with the cheap preview; with `preview_method`
/// `Approx NN` or `TAESD` (and its network loaded), `on_preview(rgba, width, height)` follows
/// with the network's. Returns an array of `{png, infotext, seed, width, height}`; each PNG
/// carries its infotext.
pub async fn generate(
    settings_json: String,
    init_image: Option<Vec<u8>>,
    mask: Option<Vec<u8>>,
    on_step: &dyn Fn(StepEvent),
    preview_method: String,
    on_preview: Function,
) -> Result<Array, JsError> {
    let method = crate::live_preview::PreviewMethod::parse(&preview_method);
    let settings = GenerationSettings::from_json(&settings_json).map_err(js_err)?;
    let inputs = job_inputs(init_image, mask)?;
    if BUSY.with(|b| *b.borrow()) {
        return Err(JsError::new("a generation is running"));
    }
    let mut service = SERVICE
        .with(|s| s.borrow_mut().take())
        .ok_or_else(|| JsError::new("the GPU is not initialised (call initGpu first)"))?;
    BUSY.with(|b| *b.borrow_mut() = true);
    let cancel = CancelToken::new();
    CANCEL.with(|c| *c.borrow_mut() = cancel.clone());
    let mut progress = |p: &StepProgress| {
        let [_, lh, lw] = p.latent_shape;
        let first = &p.latent[..p.latent.len().min(p.latent_shape.iter().product())];
        on_step(StepEvent {
            step: p.step + 1,
            total: p.steps,
            batch: p.batch,
            batch_count: p.batch_count,
            rgba: preview_rgba(first, lh, lw),
            width: lw,
            height: lh,
        });
        // A1111's network previews, when picked: run on the GPU between the sampler's waits.
        crate::live_preview::spawn(method, first.to_vec(), lh, lw, on_preview.clone());
    };
    let result = service
        .generate_with_inputs(&settings, &inputs, &mut progress, &cancel)
        .await;
    SERVICE.with(|s| *s.borrow_mut() = Some(service));
    BUSY.with(|b| *b.borrow_mut() = false);
    let images = result.map_err(js_err)?;
    let out = Array::new();
    for g in images {
        let info = g.infotext.format();
        let img = g.image;
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

/// The settings JSON an infotext describes (what a dropped PNG restores: every setting
/// A1111 records, ENSD, emphasis and sampler parameters included), or an error naming the
/// bad field.
pub fn settings_from_infotext(text: &str) -> Result<String, JsError> {
    let s = GenerationSettings::from_infotext(&Infotext::parse(text)).map_err(js_err)?;
    Ok(s.to_json())
}

/// The A1111 infotext stored in a PNG's `parameters` chunk, or `null` (to fill the form from
/// a dropped image).
pub fn read_infotext(png: &[u8]) -> Option<String> {
    easel_core::infotext::parameters_from_png_bytes(png, "image")
        .ok()
        .flatten()
}

/// Size of the wasm heap in bytes (it only grows), to check that loading a checkpoint
/// streams tensors rather than holding the file.
pub fn wasm_memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length() as f64
}

/// Sampler labels for the form, in registry order.
pub fn sampler_labels() -> Vec<String> {
    sampler_registry().labels()
}

/// The hires-fix upscalers the page offers before any model file is picked.
pub fn hires_upscaler_labels() -> Result<Vec<String>, JsError> {
    with_service(|svc| Ok(upscaler_labels(svc)))
}

/// Schedule type labels for the form, in registry order.
pub fn schedule_labels() -> Vec<String> {
    scheduler_registry().labels()
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
}
