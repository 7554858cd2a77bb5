//! What the page's buttons and pickers do: load models and networks into the worker, run a
//! job (in the browser or on the server), fill the form from a PNG. Each updates the shared
//! state as it goes, so the page always says what is happening.

use super::state::{
    picked, AppState, GalleryItem, HypernetChoice, ModelInfo, Preview, Progress, Target,
};
use super::{fields, gallery, server_client, test_hooks, worker_client};
use crate::protocol::{get, get_bool, get_f64, get_string, get_strings, kind};
use crate::user_errors::job_error;
use easel_core::service::GenerationSettings;
use js_sys::{Array, Uint8Array};
use leptos::prelude::*;
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::File;

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

fn files_array(files: &[File]) -> JsValue {
    files
        .iter()
        .cloned()
        .map(JsValue::from)
        .collect::<Array>()
        .into()
}

/// Starts the worker and its GPU; fills the form's lists.
pub async fn start(st: AppState) {
    let t0 = now_ms();
    let events = move |msg: JsValue| on_worker_event(st, msg);
    if let Err(e) = worker_client::start(events).await {
        st.fail(e);
        st.state.set("error");
        return;
    }
    match worker_client::request(kind::INIT, vec![]).await {
        Ok(r) => {
            test_hooks::set_timing("initMs", now_ms() - t0);
            let adapter = get_string(&r, "adapter").unwrap_or_default();
            st.gpu.set(
                if adapter.starts_with("wgpu ") || adapter.contains("BrowserWebGpu") {
                    "WebGPU".into()
                } else {
                    adapter
                },
            );
            st.samplers.set(get_strings(&r, "samplers"));
            st.schedules.set(get_strings(&r, "schedules"));
            st.upscalers.set(get_strings(&r, "upscalers"));
            st.say("ready: pick a model (a models/ folder, or a checkpoint file)");
            st.state.set("ready");
        }
        Err(e) => {
            st.gpu.set("no WebGPU".into());
            st.fail(e);
            st.state.set("error");
        }
    }
}

fn on_worker_event(st: AppState, msg: JsValue) {
    let rgba = || -> Vec<u8> {
        get(&msg, "rgba")
            .dyn_into::<js_sys::Uint8ClampedArray>()
            .map(|a| a.to_vec())
            .unwrap_or_default()
    };
    let (width, height) = (
        get_f64(&msg, "width").unwrap_or(0.0) as u32,
        get_f64(&msg, "height").unwrap_or(0.0) as u32,
    );
    match get_string(&msg, "type").as_deref() {
        Some(crate::protocol::event::STEP) => {
            let (step, total) = (
                get_f64(&msg, "step").unwrap_or(0.0) as u32,
                get_f64(&msg, "total").unwrap_or(0.0) as u32,
            );
            let (batch, batch_count) = (
                get_f64(&msg, "batch").unwrap_or(0.0) as u32,
                get_f64(&msg, "batchCount").unwrap_or(1.0) as u32,
            );
            step_progress(st, step, total, batch, batch_count);
            // A network preview (when picked) replaces the cheap one as it arrives.
            if st.preview_method.get_untracked() == "Approx cheap"
                || st.preview.with_untracked(Option::is_none)
            {
                st.preview.set(Some(Preview {
                    rgba: rgba(),
                    width,
                    height,
                }));
            }
        }
        Some(crate::protocol::event::LOAD) => {
            let mb = |k: &str| get_f64(&msg, k).unwrap_or(0.0) / 1048576.0;
            test_hooks::note_memory(get_f64(&msg, "memoryBytes").unwrap_or(0.0));
            st.say(format!(
                "loading: {:.0} of {:.0} MiB read (wasm heap {:.0} MiB)",
                mb("read"),
                mb("size"),
                mb("memoryBytes")
            ));
        }
        Some(crate::protocol::event::PREVIEW) => {
            test_hooks::push_preview(&st.preview_method.get_untracked(), width, height);
            st.preview.set(Some(Preview {
                rgba: rgba(),
                width,
                height,
            }));
        }
        _ => {}
    }
}

/// Records a finished step (also used by server mode's progress polling).
pub fn step_progress(st: AppState, step: u32, total: u32, batch: u32, batch_count: u32) {
    let now = now_ms();
    st.progress.update(|p| {
        if p.first_step_ms == 0.0 {
            p.first_step_ms = now;
        }
        *p = Progress {
            step,
            total,
            batch,
            batch_count,
            now_ms: now,
            ..p.clone()
        };
    });
    let image = if batch_count > 1 {
        format!("image {}/{batch_count}, ", batch + 1)
    } else {
        String::new()
    };
    st.say(format!("{image}step {step}/{total}"));
}

/// Loads a checkpoint with its sidecars into the worker.
pub async fn load_model(st: AppState, files: picked::ModelFiles) {
    st.state.set("loading");
    st.say(format!("loading {}…", files.label));
    let t0 = now_ms();
    let opt = |f: &Option<File>| f.clone().map(JsValue::from).unwrap_or(JsValue::NULL);
    let r = worker_client::request(
        kind::LOAD,
        vec![
            ("checkpoint", files.checkpoint.clone().into()),
            ("yaml", opt(&files.yaml)),
            ("vae", opt(&files.vae)),
        ],
    )
    .await;
    match r {
        Ok(r) => {
            let ms = now_ms() - t0;
            test_hooks::set_timing("loadMs", ms);
            test_hooks::note_memory(get_f64(&r, "memoryBytes").unwrap_or(0.0));
            let info = get(&r, "info");
            st.model.set(Some(ModelInfo {
                name: get_string(&info, "name").unwrap_or_default(),
                hash: get_string(&info, "hash").unwrap_or_default(),
                vae: get_string(&info, "vae"),
            }));
            st.say(format!("{} loaded in {:.1} s", files.label, ms / 1000.0));
            st.state.set("loaded");
        }
        Err(e) => {
            st.model.set(None);
            st.fail(format!(
                "{} (picked as the checkpoint): {e}",
                files.checkpoint.name()
            ));
            st.state.set("error");
        }
    }
}

/// Adds hypernetwork files to the picked set (a file of the same name replaces the old one)
/// and loads the set.
pub async fn add_hypernets(st: AppState, new: Vec<File>) {
    if new.is_empty() {
        return;
    }
    let all = picked::with(|p| {
        for f in new {
            p.hypernets.retain(|old| old.name() != f.name());
            p.hypernets.push(f);
        }
        p.hypernets.clone()
    });
    let before = st.state.get_untracked();
    st.state.set("loading");
    st.say(format!("loading {} hypernetwork(s)…", all.len()));
    match worker_client::request(kind::HYPERNETS, vec![("files", files_array(&all))]).await {
        Ok(r) => {
            let names: Vec<String> = r
                .dyn_into::<Array>()
                .map(|a| a.iter().filter_map(|x| x.as_string()).collect())
                .unwrap_or_default();
            let old = st.hypernets.get_untracked();
            st.hypernets.set(
                names
                    .iter()
                    .map(|n| {
                        old.iter()
                            .find(|h| &h.name == n)
                            .cloned()
                            .unwrap_or(HypernetChoice {
                                name: n.clone(),
                                enabled: false,
                                strength: 1.0,
                            })
                    })
                    .collect(),
            );
            st.say(format!(
                "hypernetworks: {} (tick one, or write <hypernet:NAME:STRENGTH> in the prompt)",
                names.join(", ")
            ));
        }
        Err(e) => st.fail(format!("hypernetwork files: {e}")),
    }
    st.state.set(before);
}

async fn load_list(st: AppState, kind_: &str, what: &str, files: Vec<File>) -> Option<JsValue> {
    if files.is_empty() {
        return None;
    }
    let before = st.state.get_untracked();
    st.state.set("loading");
    st.say(format!("loading {} {what} file(s)…", files.len()));
    let r = worker_client::request(kind_, vec![("files", files_array(&files))]).await;
    st.state.set(before);
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            st.fail(format!("{what} files: {e}"));
            None
        }
    }
}

/// LoRA files in A1111's order; a job with `<lora:…>` loads the model again with them.
pub async fn set_loras(st: AppState, files: Vec<File>) {
    if let Some(r) = load_list(st, kind::LORAS, "LoRA", files).await {
        let names: Vec<String> = r
            .dyn_into::<Array>()
            .map(|a| a.iter().filter_map(|x| x.as_string()).collect())
            .unwrap_or_default();
        st.say(format!(
            "LoRAs: {}, used with <lora:NAME:WEIGHT> in the prompt",
            names.len()
        ));
        st.loras.set(names);
    }
}

/// Textual-inversion embeddings in the folder's scan order.
pub async fn set_embeddings(st: AppState, files: Vec<File>) {
    if let Some(r) = load_list(st, kind::EMBEDDINGS, "embedding", files).await {
        let names = get_strings(&r, "names");
        let warnings = get_strings(&r, "warnings");
        let note = if warnings.is_empty() {
            String::new()
        } else {
            format!(" ({})", warnings.join("; "))
        };
        st.status.set((
            format!(
                "embeddings: {} usable by name in prompts{note}",
                names.len()
            ),
            !warnings.is_empty(),
        ));
        st.embeddings.set(names);
    }
}

/// Upscaler models for hires fix, each with its A1111 folder (`ESRGAN`, `RealESRGAN`,
/// `SwinIR`); the form's upscaler list becomes what the worker reports.
pub async fn set_upscalers(st: AppState, files: Vec<(File, &'static str)>) {
    if files.is_empty() {
        return;
    }
    let before = st.state.get_untracked();
    st.state.set("loading");
    let list: Vec<File> = files.iter().map(|(f, _)| f.clone()).collect();
    let folders: Array = files.iter().map(|(_, d)| JsValue::from(*d)).collect();
    let r = worker_client::request(
        kind::UPSCALERS,
        vec![("files", files_array(&list)), ("folders", folders.into())],
    )
    .await;
    st.state.set(before);
    match r {
        Ok(r) => {
            let names: Vec<String> = r
                .dyn_into::<Array>()
                .map(|a| a.iter().filter_map(|x| x.as_string()).collect())
                .unwrap_or_default();
            st.say(format!("upscalers for hires fix: {}", names.join(", ")));
            st.upscalers.set(names);
        }
        Err(e) => st.fail(format!("upscaler files: {e}")),
    }
}

/// TAESD's halves and the VAE-approx network, by their A1111 file names.
pub async fn set_vae_approx(st: AppState, files: Vec<File>) {
    let named = |pred: &dyn Fn(&str) -> bool| {
        files
            .iter()
            .find(|f| pred(&f.name().to_ascii_lowercase()))
            .cloned()
            .map(JsValue::from)
            .unwrap_or(JsValue::NULL)
    };
    let decoder = named(&|n| n.starts_with("taesd_decoder"));
    let encoder = named(&|n| n.starts_with("taesd_encoder"));
    let approx = named(&|n| n == "model.pt" || n == "model.safetensors");
    if decoder.is_null() && encoder.is_null() && approx.is_null() {
        st.fail("none of these is taesd_decoder.pth, taesd_encoder.pth or model.pt");
        return;
    }
    let before = st.state.get_untracked();
    st.state.set("loading");
    let r = worker_client::request(
        kind::TAESD,
        vec![
            ("decoder", decoder),
            ("encoder", encoder),
            ("approx", approx),
        ],
    )
    .await;
    st.state.set(before);
    match r {
        Ok(r) => {
            let have: Vec<&str> = [
                ("decoder", "TAESD decoder"),
                ("encoder", "TAESD encoder"),
                ("approx", "VAE-approx"),
            ]
            .into_iter()
            .filter(|(k, _)| get_bool(&r, k))
            .map(|(_, label)| label)
            .collect();
            st.vae_approx.set(have.join(", "));
            st.say(format!("VAE-approx: {}", have.join(", ")));
        }
        Err(e) => st.fail(format!("VAE-approx files: {e}")),
    }
}

/// Everything in a picked `models/` folder: the first checkpoint loads by itself, then the
/// folder's networks.
pub async fn load_folder(st: AppState, files: Vec<File>) {
    let paths: Vec<String> = files.iter().map(super::discovery::picked_path).collect();
    let pick = |idx: Vec<usize>| {
        idx.into_iter()
            .map(|i| files[i].clone())
            .collect::<Vec<_>>()
    };
    let models: Vec<picked::ModelFiles> = super::discovery::models(&paths)
        .into_iter()
        .map(|m| picked::ModelFiles {
            label: m.label,
            checkpoint: files[m.checkpoint].clone(),
            yaml: m.yaml.map(|i| files[i].clone()),
            vae: m.vae.map(|i| files[i].clone()),
        })
        .collect();
    if models.is_empty() {
        st.fail("no .ckpt or .safetensors checkpoint in that folder");
        return;
    }
    st.folder_models
        .set(models.iter().map(|m| m.label.clone()).collect());
    st.selected_model.set(0);
    picked::with(|p| p.folder_models = models.clone());
    load_model(st, models[0].clone()).await;
    if st.state.get_untracked() == "error" {
        return;
    }
    let hypernets = pick(super::discovery::in_folder(
        &paths,
        "hypernetworks",
        &["pt", "safetensors"],
    ));
    add_hypernets(st, hypernets).await;
    set_embeddings(
        st,
        pick(super::discovery::in_folder(
            &paths,
            "embeddings",
            &["pt", "bin", "safetensors"],
        )),
    )
    .await;
    set_loras(st, pick(super::discovery::loras(&paths))).await;
    let upscalers: Vec<(File, &'static str)> = super::discovery::upscalers(&paths)
        .into_iter()
        .map(|(i, folder)| (files[i].clone(), folder))
        .collect();
    set_upscalers(st, upscalers).await;
    let approx = pick(super::discovery::vae_approx(&paths));
    if !approx.is_empty() {
        set_vae_approx(st, approx).await;
    }
}

/// The settings of the next job: the form, a random seed for -1, the ticked
/// hypernetworks, no hires fix when an init image is set (as A1111's img2img tab).
fn job_settings(st: AppState) -> Result<GenerationSettings, String> {
    let mut form = st.form.get_untracked();
    let seed = fields::get(&form, "seed").as_i64().unwrap_or(-1);
    let seed = if seed < 0 {
        (js_sys::Math::random() * 4294967296.0).floor() as i64
    } else {
        seed
    };
    fields::set(&mut form, "seed", Value::from(seed));
    let hypernets: Vec<Value> = st
        .hypernets
        .get_untracked()
        .into_iter()
        .filter(|h| h.enabled)
        .map(|h| serde_json::json!({"name": h.name, "strength": h.strength}))
        .collect();
    fields::set(&mut form, "hypernets", Value::from(hypernets));
    if st.init_image.with_untracked(Option::is_some) {
        fields::set(&mut form, "enable_hr", Value::from(false));
    }
    GenerationSettings::from_json(&form.to_string()).map_err(|e| e.to_string())
}

/// Runs a job with the form's settings, on this browser's GPU or on the server.
pub async fn generate(st: AppState) {
    let problems = fields::problems(&st.form.get_untracked(), &st.unparsed.get_untracked());
    if !problems.is_empty() {
        st.fail(format!("fix these first: {}", problems.join("; ")));
        st.state.set("invalid");
        return;
    }
    let settings = match job_settings(st) {
        Ok(s) => s,
        Err(e) => {
            st.fail(e);
            st.state.set("invalid");
            return;
        }
    };
    let t0 = now_ms();
    st.state.set("generating");
    st.progress.set(Progress {
        started_ms: t0,
        total: settings.steps as u32,
        batch_count: settings.batch_count as u32,
        ..Default::default()
    });
    st.preview.set(None);
    st.current.set(Vec::new());
    st.say(if st.target.get_untracked() == Target::Server {
        "sent to the server…"
    } else {
        "loading and encoding the prompt…"
    });
    let (init_image, mask) = super::image_inputs::job_images(st).await;
    INTERRUPTED.with(|i| i.set(false));
    let result = match st.target.get_untracked() {
        Target::Browser => browser_job(st, &settings, init_image, mask).await,
        Target::Server => server_client::generate(st, &settings, init_image, mask).await,
    };
    st.preview.set(None);
    st.progress.set(Progress::default());
    match result {
        Ok(images) => {
            let ms = now_ms() - t0;
            test_hooks::set_timing("generateMs", ms);
            let n = images.len();
            for img in &images {
                test_hooks::push_result(img);
            }
            st.current.set(images.clone());
            gallery::add(st, images).await;
            if INTERRUPTED.with(|i| i.get()) {
                // A1111 keeps what an interrupted job made; the model stays ready.
                st.say(format!("interrupted: kept {n} image(s) made so far"));
                st.state.set("loaded");
            } else {
                st.say(format!("{n} image(s) in {:.1} s", ms / 1000.0));
                st.state.set("done");
            }
        }
        Err(e) if e == "interrupted" => {
            st.say("interrupted");
            st.state.set(if st.model.get_untracked().is_some() {
                "loaded"
            } else {
                "ready"
            });
        }
        Err(e) => {
            st.fail(job_error(&e));
            st.state.set("error");
        }
    }
}

/// A PNG made by this page from its bytes and infotext.
pub fn gallery_item(
    png: Vec<u8>,
    infotext: String,
    seed: u64,
    width: u32,
    height: u32,
) -> GalleryItem {
    let url = gallery::object_url(&png);
    GalleryItem {
        key: 0,
        png,
        infotext,
        seed,
        width,
        height,
        url,
    }
}

async fn browser_job(
    st: AppState,
    s: &GenerationSettings,
    init_image: Option<Vec<u8>>,
    mask: Option<Vec<u8>>,
) -> Result<Vec<GalleryItem>, String> {
    let bytes = |b: Option<Vec<u8>>| {
        b.map(|b| JsValue::from(Uint8Array::from(b.as_slice())))
            .unwrap_or(JsValue::NULL)
    };
    let r = worker_client::request(
        kind::GENERATE,
        vec![
            ("settings", s.to_json().into()),
            ("initImage", bytes(init_image)),
            ("mask", bytes(mask)),
            ("previewMethod", st.preview_method.get_untracked().into()),
        ],
    )
    .await?;
    let images: Vec<GalleryItem> = r
        .dyn_into::<Array>()
        .map_err(|_| "the worker answered no images".to_string())?
        .iter()
        .map(|o| {
            let png = get(&o, "png")
                .dyn_into::<Uint8Array>()
                .map(|a| a.to_vec())
                .unwrap_or_default();
            gallery_item(
                png,
                get_string(&o, "infotext").unwrap_or_default(),
                get_f64(&o, "seed").unwrap_or(0.0) as u64,
                get_f64(&o, "width").unwrap_or(0.0) as u32,
                get_f64(&o, "height").unwrap_or(0.0) as u32,
            )
        })
        .collect();
    if images.is_empty() && INTERRUPTED.with(|i| i.get()) {
        return Err("interrupted".into());
    }
    Ok(images)
}

thread_local! {
    static INTERRUPTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A1111's Interrupt: the job ends after the current step and keeps what it made.
pub fn interrupt(st: AppState) {
    INTERRUPTED.with(|i| i.set(true));
    st.say("interrupting after this step…");
    match st.target.get_untracked() {
        Target::Browser => worker_client::notify(kind::INTERRUPT),
        Target::Server => server_client::post_simple("interrupt"),
    }
}

/// A1111's Skip: the current image of the batch count ends, the next one starts.
pub fn skip(st: AppState) {
    st.say("skipping this image after this step…");
    match st.target.get_untracked() {
        Target::Browser => worker_client::notify(kind::SKIP),
        Target::Server => server_client::post_simple("skip"),
    }
}

/// Fills the form from a PNG's infotext, read by the generation service as the CLI reads
/// it (every setting A1111 records).
pub async fn fill_from_png(st: AppState, name: String, png: Vec<u8>) {
    let r = worker_client::request(
        kind::INFOTEXT,
        vec![("png", Uint8Array::from(png.as_slice()).into())],
    )
    .await;
    match r {
        // A picture without parameters is taken as img2img's init image.
        Ok(v) if v.is_null() || v.is_undefined() => {
            super::image_inputs::set_init_image(st, name.clone(), png);
            st.say(format!(
                "{name} has no generation parameters: it is the init image now"
            ));
        }
        Ok(v) => match serde_json::from_str::<Value>(&v.as_string().unwrap_or_default()) {
            Ok(settings) => {
                apply_settings(st, settings);
                st.say(format!("settings from {name}"));
                st.state.set("filled");
            }
            Err(e) => st.fail(format!("{name}: {e}")),
        },
        Err(e) => st.fail(format!("{name}: {e}")),
    }
}

/// Puts pasted settings into the form (and ticks the hypernetworks they name).
pub fn apply_settings(st: AppState, settings: Value) {
    let mut form = fields::default_form();
    if let Value::Object(map) = &settings {
        for (k, v) in map {
            if k != "hypernets" {
                form[k.as_str()] = v.clone();
            }
        }
    }
    if fields::get(&form, "schedule_type").is_null() {
        fields::set(&mut form, "schedule_type", Value::from("Automatic"));
    }
    let wanted: Vec<(String, f64)> = settings
        .get("hypernets")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|h| {
                    (
                        h["name"].as_str().unwrap_or("").to_string(),
                        h["strength"].as_f64().unwrap_or(1.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    st.hypernets.update(|list| {
        for h in list.iter_mut() {
            if let Some((_, s)) = wanted.iter().find(|(n, _)| n.eq_ignore_ascii_case(&h.name)) {
                h.enabled = true;
                h.strength = *s;
            }
        }
    });
    st.unparsed.set(Vec::new());
    st.form.set(form);
}
