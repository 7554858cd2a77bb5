//! The `/sdapi/v1` routes. Handlers parse, check and queue; the generation thread does the
//! work. Listings are read from the models folder on each call (so the refresh routes have
//! nothing to rebuild); lists of things Easel does not have are empty, as A1111's are.

use super::api_types::*;
use super::auth::{self, Credentials};
use super::img2img::{base64_bytes, echoed_parameters, img2img_inputs};
use super::limits::RequestLimits;
use super::options::{apply_option, settings_from_options, Applied};
use super::queue::{JobQueue, QueueFull};
use super::static_files::serve_file;
use super::txt2img::{response, settings_for, Endpoint};
use super::worker::{Command, WorkerHandle};
use super::ApiError;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use easel_core::embeddings::{text_encoder_width, EmbeddingsCache, SD1_WIDTH};
use easel_core::image::UpscaleTarget;
use easel_core::infotext::{encode_png, parameters_from_png_bytes, Infotext};
use easel_core::model::files::files_with_ext;
use easel_core::model::{list_folder, resolve_checkpoint, HashCache};
use easel_core::pipeline::latent_preview_rgb;
use easel_core::registry::{SamplerRegistry, SchedulerRegistry};
use easel_core::service::{GenerationInputs, GenerationSettings};
use easel_core::Error;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, OwnedMutexGuard};

pub struct AppState {
    pub worker: WorkerHandle,
    pub queue: JobQueue,
    /// A1111's options as clients set them (see `options.rs`).
    pub options: Mutex<Map<String, Value>>,
    pub models: PathBuf,
    /// The textual-inversion embeddings folder.
    pub embeddings: PathBuf,
    /// The folder as `embeddings` last read it, reused while its files are unchanged (each
    /// read hashes every file).
    pub embeddings_cache: Mutex<EmbeddingsCache>,
    pub samplers: SamplerRegistry,
    pub schedulers: SchedulerRegistry,
    /// What one request may ask for (`easel serve --max-*`).
    pub limits: RequestLimits,
    pub cmd_flags: Value,
}

type Shared = Arc<AppState>;
type ApiResult = Result<Json<Value>, ApiError>;

pub fn router(
    state: Shared,
    credentials: Option<Credentials>,
    cors_origins: Option<&str>,
    max_body: usize,
    page: Option<PathBuf>,
) -> easel_core::Result<Router> {
    let api = Router::new()
        .route("/txt2img", post(txt2img))
        .route("/img2img", post(img2img))
        .route("/extra-single-image", post(extra_single_image))
        .route("/progress", get(progress))
        .route("/interrupt", post(interrupt))
        .route("/skip", post(skip))
        .route("/options", get(get_options).post(set_options))
        .route("/cmd-flags", get(cmd_flags))
        .route("/png-info", post(png_info))
        .route("/samplers", get(samplers))
        .route("/schedulers", get(schedulers))
        .route("/sd-models", get(sd_models))
        .route("/sd-vae", get(sd_vae))
        .route("/hypernetworks", get(hypernetworks))
        .route("/upscalers", get(upscalers))
        .route("/latent-upscale-modes", get(latent_upscale_modes))
        .route("/loras", get(loras))
        .route("/face-restorers", get(empty_list))
        .route("/prompt-styles", get(empty_list))
        .route("/script-info", get(empty_list))
        .route("/extensions", get(empty_list))
        .route("/embeddings", get(embeddings))
        .route("/scripts", get(scripts))
        .route("/memory", get(memory))
        .route("/refresh-checkpoints", post(nothing))
        .route("/refresh-vae", post(nothing))
        .route("/refresh-loras", post(nothing))
        .route("/refresh-embeddings", post(nothing))
        .route("/unload-checkpoint", post(unload_checkpoint))
        .route("/reload-checkpoint", post(reload_checkpoint))
        .fallback(|| async { ApiError::not_found("Not Found") })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state);
    let api = match credentials {
        Some(c) => api.layer(axum::middleware::from_fn_with_state(
            Arc::new(c),
            auth::require,
        )),
        None => api,
    };
    let mut app = Router::new()
        .nest("/sdapi/v1", api)
        .fallback(move |req: axum::extract::Request| serve_file(page.clone(), req));
    if let Some(list) = cors_origins {
        let origins = list
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                HeaderValue::from_str(o)
                    .map_err(|_| Error::Invalid(format!("--cors-allow-origins: bad origin `{o}`")))
            })
            .collect::<easel_core::Result<Vec<_>>>()?;
        app = app.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    axum::http::header::CONTENT_TYPE,
                    axum::http::header::AUTHORIZATION,
                ]),
        );
    }
    Ok(app)
}

/// A JSON body as `T`; malformed JSON or a wrong type is a 422 naming the field, as
/// FastAPI answers A1111's clients.
pub(super) fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let mut loc = vec!["body".to_string()];
        if path != "." {
            loc.extend(path.split('.').map(str::to_string));
        }
        let kind = if inner.is_syntax() || inner.is_eof() {
            "value_error.jsondecode"
        } else {
            "type_error"
        };
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({ "detail": [{ "loc": loc, "msg": inner.to_string(), "type": kind }] }),
        }
    })
}

fn worker_gone() -> ApiError {
    ApiError::internal("the generation thread has stopped")
}

/// Waits for a turn in the queue (503 at once when it is full), hands the generation thread
/// the command `make` builds around the reply channel and the turn, and waits for its
/// answer; also how long the request waited for its turn.
async fn ask_worker<T>(
    st: &AppState,
    make: impl FnOnce(oneshot::Sender<T>, OwnedMutexGuard<()>) -> Command,
) -> Result<(T, f64), ApiError> {
    let (turn, waited) = st.queue.enter().await.map_err(|QueueFull| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the queue is full: try again later",
        )
    })?;
    let (reply, answer) = oneshot::channel();
    st.worker
        .commands
        .send(make(reply, turn))
        .map_err(|_| worker_gone())?;
    let value = answer.await.map_err(|_| worker_gone())?;
    Ok((value, waited.as_secs_f64()))
}

/// Runs a generation job and answers as A1111 does (`images`, `parameters`, `info`).
async fn generate_and_answer(
    st: &AppState,
    req: &Txt2ImgRequest,
    parameters: Value,
    settings: GenerationSettings,
    inputs: GenerationInputs,
    warnings: &[String],
) -> Result<Json<Txt2ImgResponse>, ApiError> {
    let job = Box::new(settings.clone());
    let (generated, waited) = ask_worker(st, |reply, turn| Command::Generate {
        settings: job,
        inputs: Box::new(inputs),
        reply,
        turn,
    })
    .await?;
    let mut warnings = warnings.to_vec();
    if generated.timed_out {
        warnings.push(format!(
            "the job ran past this server's limit of {} s (easel serve --max-job-seconds) and \
             was interrupted: the images finished so far are returned",
            st.limits.max_job_seconds
        ));
    }
    let generated = generated.result.map_err(generation_error)?;
    Ok(Json(response(
        req, parameters, &settings, &generated, &warnings, waited,
    )?))
}

async fn txt2img(State(st): State<Shared>, body: Bytes) -> Result<Json<Txt2ImgResponse>, ApiError> {
    let req: Txt2ImgRequest = parse_body(&body)?;
    let base = settings_from_options(&st.options.lock().unwrap_or_else(|e| e.into_inner()));
    let (settings, warnings) = settings_for(
        Endpoint::Txt2Img,
        &req,
        base,
        &st.models,
        &st.samplers,
        &st.schedulers,
    )?;
    st.limits.check(&settings)?;
    let parameters = serde_json::to_value(&req).unwrap_or(Value::Null);
    generate_and_answer(
        &st,
        &req,
        parameters,
        settings,
        GenerationInputs::default(),
        &warnings,
    )
    .await
}

/// `POST img2img`: the body is read twice, as the fields txt2img shares and as img2img's
/// own, so a wrong type in either is a 422 naming its field.
async fn img2img(State(st): State<Shared>, body: Bytes) -> Result<Json<Txt2ImgResponse>, ApiError> {
    let mut req: Txt2ImgRequest = parse_body(&body)?;
    let fields: Img2ImgFields = parse_body(&body)?;
    for name in Img2ImgFields::NAMES {
        req.unknown.remove(name);
    }
    let base = settings_from_options(&st.options.lock().unwrap_or_else(|e| e.into_inner()));
    let (mut settings, mut warnings) = settings_for(
        Endpoint::Img2Img,
        &req,
        base,
        &st.models,
        &st.samplers,
        &st.schedulers,
    )?;
    let inputs = img2img_inputs(&fields, &mut settings, &mut warnings)?;
    st.limits.check(&settings)?;
    let parameters = echoed_parameters(&req, &fields);
    generate_and_answer(&st, &req, parameters, settings, inputs, &warnings).await
}

/// `POST extra-single-image`: A1111's Extras upscale of one image, on the generation thread
/// (the upscaler models use its backend). The answer's PNG keeps the source's `parameters`
/// and adds the Extras infotext in `postprocessing` and `extras`, as A1111's does.
async fn extra_single_image(
    State(st): State<Shared>,
    body: Bytes,
) -> Result<Json<ExtrasSingleImageResponse>, ApiError> {
    let req: ExtrasSingleImageRequest = parse_body(&body)?;
    if req.gfpgan_visibility > 0.0 || req.codeformer_visibility > 0.0 {
        return Err(ApiError::field(
            if req.gfpgan_visibility > 0.0 {
                "gfpgan_visibility"
            } else {
                "codeformer_visibility"
            },
            "face restoration (GFPGAN, CodeFormer) is not in Easel",
        ));
    }
    let bytes = base64_bytes("image", &req.image).map_err(|m| ApiError::field("image", m))?;
    let image = easel_core::image::decode_image(&bytes, "image")
        .map_err(|e| ApiError::field("image", e.to_string()))?;
    let existing = parameters_from_png_bytes(&bytes, "image").ok().flatten();
    let target = match req.resize_mode {
        0 => UpscaleTarget::Scale(req.upscaling_resize),
        1 => {
            let side = |field: &str, v: i64| {
                usize::try_from(v).ok().filter(|v| *v > 0).ok_or_else(|| {
                    ApiError::field(field, format!("{field} must be at least 1, not {v}"))
                })
            };
            UpscaleTarget::Size {
                width: side("upscaling_resize_w", req.upscaling_resize_w)?,
                height: side("upscaling_resize_h", req.upscaling_resize_h)?,
                crop: req.upscaling_crop,
            }
        }
        m => {
            return Err(ApiError::field(
                "resize_mode",
                format!("resize_mode {m} is not 0 (scale by) or 1 (scale to)"),
            ))
        }
    };
    let (w, h) = (image.width as f64, image.height as f64);
    match target {
        UpscaleTarget::Scale(f) => st.limits.check_upscale("upscaling_resize", w * f, h * f)?,
        UpscaleTarget::Size { width, height, .. } => {
            let f = (width as f64 / w).max(height as f64 / h);
            st.limits
                .check_upscale("upscaling_resize_w", w * f, h * f)?
        }
    }
    let second = (req.upscaler_2 != "None" && req.extras_upscaler_2_visibility > 0.0).then(|| {
        (
            req.upscaler_2.clone(),
            req.extras_upscaler_2_visibility.min(1.0),
        )
    });
    let upscalers = (req.upscaler_1.clone(), second.clone());
    let (out, _) = ask_worker(&st, |reply, turn| Command::Upscale {
        image: Box::new(image),
        target,
        upscalers,
        reply,
        turn,
    })
    .await?;
    let out = out.map_err(generation_error)?;
    let fields = crate::upscale::extras_fields(
        target,
        &req.upscaler_1,
        second.as_ref().map(|(n, _)| n.as_str()),
        (out.width, out.height),
    );
    let info = crate::upscale::extras_infotext(&fields);
    let png = easel_core::infotext::encode_png_with_texts(
        out.width as u32,
        out.height as u32,
        &out.data,
        &crate::upscale::extras_texts(existing.as_deref(), &info),
    )
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let escaped = info
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    Ok(Json(ExtrasSingleImageResponse {
        html_info: format!("<p>{escaped}</p>"),
        image: base64::engine::general_purpose::STANDARD.encode(png),
    }))
}

/// A generation failure: the user's input (422, naming it) or the server's (500).
fn generation_error(e: Error) -> ApiError {
    match e {
        Error::Invalid(msg) => ApiError::unprocessable(msg),
        other => ApiError::internal(other.to_string()),
    }
}

async fn progress(State(st): State<Shared>, Query(q): Query<ProgressQuery>) -> Json<Value> {
    let p = st.worker.progress.lock().unwrap_or_else(|e| e.into_inner());
    let fraction = p.fraction();
    let elapsed = p.started.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
    let eta = if fraction > 0.0 {
        elapsed / fraction - elapsed
    } else {
        0.0
    };
    // A1111's live preview: its "Approx NN" when the models folder has the network (made
    // every few steps by the generation thread), else the cheap approximation of the
    // current latent.
    let current_image = if q.skip_current_image {
        None
    } else {
        let image = match (&p.preview, &p.latent) {
            (Some((rgb, w, h)), _) => Some((rgb.clone(), *w, *h)),
            (None, Some((lat, shape))) => Some((
                latent_preview_rgb(lat, shape[1], shape[2]),
                shape[2],
                shape[1],
            )),
            (None, None) => None,
        };
        image.and_then(|(rgb, w, h)| {
            encode_png(w as u32, h as u32, &rgb, None)
                .ok()
                .map(|png| base64::engine::general_purpose::STANDARD.encode(png))
        })
    };
    let body = ProgressResponse {
        progress: fraction,
        eta_relative: eta,
        state: ProgressState {
            skipped: false,
            interrupted: st.worker.cancel.is_interrupted(),
            stopping_generation: false,
            job: p.job.clone(),
            job_count: usize::from(p.running) + st.queue.waiting(),
            job_timestamp: p.job_timestamp.clone(),
            job_no: p.batch,
            sampling_step: p.step,
            sampling_steps: p.steps,
            queued: st.queue.waiting(),
        },
        current_image,
        textinfo: None,
        current_task: None,
    };
    Json(serde_json::to_value(body).unwrap_or(Value::Null))
}

/// Whether a job is running (Interrupt and Skip act only on one; as in A1111 they are
/// ignored when idle, so a late click cannot stop the next job).
fn job_running(st: &Shared) -> bool {
    st.worker
        .progress
        .lock()
        .map(|p| p.running)
        .unwrap_or(false)
}

async fn interrupt(State(st): State<Shared>) -> Json<Value> {
    if job_running(&st) {
        st.worker.cancel.interrupt();
    }
    Json(json!({}))
}

async fn skip(State(st): State<Shared>) -> Json<Value> {
    if job_running(&st) {
        st.worker.cancel.skip();
    }
    Json(json!({}))
}

async fn get_options(State(st): State<Shared>) -> Json<Value> {
    Json(Value::Object(
        st.options.lock().unwrap_or_else(|e| e.into_inner()).clone(),
    ))
}

/// Sets options; a checkpoint is checked (404 naming it) and loaded now, as in A1111.
async fn set_options(State(st): State<Shared>, body: Bytes) -> ApiResult {
    let req: Map<String, Value> = parse_body(&body)?;
    let mut scratch = settings_from_options(&st.options.lock().unwrap_or_else(|e| e.into_inner()));
    let mut unsupported = Vec::new();
    for (k, v) in &req {
        match apply_option(&mut scratch, k, v) {
            Ok(Applied::Used) => {}
            Ok(Applied::Unsupported) => unsupported.push(k.clone()),
            Err(e) => return Err(ApiError::field(&e.key, e.message)),
        }
    }
    if req.contains_key("sd_model_checkpoint") || req.contains_key("sd_vae") {
        resolve_checkpoint(&st.models, &scratch.model).map_err(|e| {
            ApiError::not_found(format!("Checkpoint not found: {} ({e})", scratch.model))
        })?;
        load(&st, scratch.model.clone(), scratch.vae.clone()).await?;
    }
    let mut opts = st.options.lock().unwrap_or_else(|e| e.into_inner());
    for (k, v) in req {
        opts.insert(k, v);
    }
    if !unsupported.is_empty() {
        eprintln!(
            "options stored but not used by Easel: {}",
            unsupported.join(", ")
        );
    }
    Ok(Json(Value::Null))
}

/// Loads a checkpoint on the generation thread, in turn with generation jobs.
async fn load(st: &AppState, model: String, vae: String) -> Result<(), ApiError> {
    let (loaded, _) = ask_worker(st, |reply, turn| Command::Load {
        model,
        vae,
        reply,
        turn,
    })
    .await?;
    loaded.map_err(generation_error)
}

async fn reload_checkpoint(State(st): State<Shared>) -> ApiResult {
    let s = settings_from_options(&st.options.lock().unwrap_or_else(|e| e.into_inner()));
    load(&st, s.model, s.vae).await?;
    Ok(Json(Value::Null))
}

async fn unload_checkpoint(State(st): State<Shared>) -> ApiResult {
    ask_worker(&st, |reply, turn| Command::Unload { reply, turn }).await?;
    Ok(Json(Value::Null))
}

async fn cmd_flags(State(st): State<Shared>) -> Json<Value> {
    Json(st.cmd_flags.clone())
}

/// A1111's png-info: the `parameters` text, the other text chunks, and the parsed fields.
async fn png_info(body: Bytes) -> ApiResult {
    png_info_of(&body).map(Json)
}

/// `POST png-info`'s answer for a request body: A1111's `info`, `items` and `parameters`
/// (numbers as numbers) of the image's infotext.
pub(super) fn png_info_of(body: &Bytes) -> Result<Value, ApiError> {
    let req: PngInfoRequest = parse_body(body)?;
    let b64 = match req.image.split_once(";base64,") {
        Some((_, data)) => data,
        None => req.image.as_str(),
    };
    if b64.trim().is_empty() {
        return Err(ApiError::field("image", "Image not found"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| ApiError::field("image", format!("image is not base64: {e}")))?;
    let text = parameters_from_png_bytes(&bytes, "image")
        .map_err(|e| ApiError::field("image", e.to_string()))?;
    let Some(text) = text else {
        return Ok(json!({ "info": "", "items": {}, "parameters": {} }));
    };
    let t = Infotext::parse(&text);
    let mut parameters = Map::new();
    parameters.insert("Prompt".into(), Value::from(t.prompt.clone()));
    parameters.insert(
        "Negative prompt".into(),
        Value::from(t.negative_prompt.clone()),
    );
    for (k, v) in t.fields() {
        // A1111 turns numbers into numbers.
        let value = if let Ok(i) = v.parse::<i64>() {
            Value::from(i)
        } else if let Some(f) = v.parse::<f64>().ok().filter(|f| f.is_finite()) {
            Value::from(f)
        } else {
            Value::from(v)
        };
        parameters.insert(k, value);
    }
    Ok(json!({
        "info": text,
        "items": { "parameters": text },
        "parameters": parameters,
    }))
}

async fn samplers(State(st): State<Shared>) -> Json<Value> {
    let items: Vec<SamplerItem> = st
        .samplers
        .samplers()
        .map(|s| SamplerItem {
            name: s.label().to_string(),
            aliases: vec![s.name().to_string()],
            options: Map::new(),
        })
        .collect();
    Json(serde_json::to_value(items).unwrap_or(Value::Null))
}

async fn schedulers(State(st): State<Shared>) -> Json<Value> {
    let items: Vec<SchedulerItem> = st
        .schedulers
        .schedulers()
        .map(|s| SchedulerItem {
            name: s.name().to_string(),
            label: s.label().to_string(),
            aliases: None,
            default_rho: -1.0,
            need_inner_model: false,
        })
        .collect();
    Json(serde_json::to_value(items).unwrap_or(Value::Null))
}

/// Files small enough to hash on the spot (the tiny test model); bigger ones report the
/// sha256 only once `easel hash` has cached it, as A1111 reports it only once computed.
const HASH_NOW_BELOW: u64 = 256 << 20;

async fn sd_models(State(st): State<Shared>) -> Json<Value> {
    let models = st.models.clone();
    let items = tokio::task::spawn_blocking(move || {
        let cache = HashCache::default_path().map(|p| HashCache::load(&p));
        list_folder(&models)
            .into_iter()
            .map(|c| {
                let sha256 = cache
                    .as_ref()
                    .and_then(|cache| cache.get(&c.path))
                    .map(|h| h.sha256.clone())
                    .or_else(|| {
                        (c.size < HASH_NOW_BELOW)
                            .then(|| easel_core::model::sha256_file(&c.path, &mut |_, _| {}).ok())
                            .flatten()
                    });
                SdModelItem {
                    title: format!("{} [{}]", c.name, c.legacy_hash),
                    model_name: c.name.clone(),
                    hash: Some(c.legacy_hash.clone()),
                    sha256,
                    filename: c.path.display().to_string(),
                    config: c.config.as_ref().map(|p| p.display().to_string()),
                }
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    Json(serde_json::to_value(items).unwrap_or(Value::Null))
}

async fn sd_vae(State(st): State<Shared>) -> Json<Value> {
    let items: Vec<SdVaeItem> =
        files_with_ext(&st.models.join("VAE"), &["pt", "ckpt", "safetensors"])
            .into_iter()
            .map(|p| SdVaeItem {
                model_name: p
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                filename: p.display().to_string(),
            })
            .collect();
    Json(serde_json::to_value(items).unwrap_or(Value::Null))
}

async fn hypernetworks(State(st): State<Shared>) -> Json<Value> {
    let items: Vec<HypernetworkItem> = easel_hypernetwork::list_hypernetworks(&st.models)
        .into_iter()
        .map(|e| HypernetworkItem {
            name: e.name,
            path: e.path.display().to_string(),
        })
        .collect();
    Json(serde_json::to_value(items).unwrap_or(Value::Null))
}

/// A1111's `/sdapi/v1/loras`: name, alias, path and metadata of each file.
async fn loras(State(st): State<Shared>) -> Json<Value> {
    let items: Vec<Value> = easel_lora::list_loras(&st.models)
        .into_iter()
        .map(|e| {
            let metadata = easel_core::formats::open_tensor_store(&e.path)
                .map(|s| s.metadata().clone())
                .unwrap_or_default();
            json!({ "name": e.name, "alias": e.alias, "path": e.path.display().to_string(), "metadata": metadata })
        })
        .collect();
    Json(Value::Array(items))
}

/// A1111's `/sdapi/v1/upscalers`: "None", the built-in Lanczos and Nearest, then the
/// folder's models by name (what hires fix's `hr_upscaler` can name besides a latent mode).
async fn upscalers(State(st): State<Shared>) -> Json<Value> {
    let builtin = |name: &str| UpscalerItem {
        name: name.to_string(),
        model_name: None,
        model_path: None,
        model_url: None,
        scale: 4.0,
    };
    let mut items: Vec<UpscalerItem> = ["None", "Lanczos", "Nearest"]
        .into_iter()
        .map(builtin)
        .collect();
    for e in easel_upscalers::list_upscalers(&st.models) {
        let scale = if e.name == "R-ESRGAN 2x+" { 2.0 } else { 4.0 };
        items.push(UpscalerItem {
            model_name: Some(e.folder.dir_name().to_string()),
            model_path: Some(e.path.display().to_string()),
            model_url: None,
            scale,
            name: e.name,
        });
    }
    Json(serde_json::to_value(items).unwrap_or(Value::Null))
}

/// A1111's `/sdapi/v1/latent-upscale-modes`: the latent upscalers of hires fix.
async fn latent_upscale_modes() -> Json<Value> {
    let items: Vec<LatentUpscaleModeItem> = easel_core::pipeline::LATENT_UPSCALERS
        .iter()
        .map(|(name, _)| LatentUpscaleModeItem {
            name: name.to_string(),
        })
        .collect();
    Json(serde_json::to_value(items).unwrap_or(Value::Null))
}

async fn empty_list() -> Json<Value> {
    Json(json!([]))
}

async fn nothing() -> Json<Value> {
    Json(Value::Null)
}

/// A1111's `/sdapi/v1/embeddings`: the embeddings the current checkpoint can use
/// (`loaded`) and those of another width (`skipped`), each with what its file records.
async fn embeddings(State(st): State<Shared>) -> Json<Value> {
    let checkpoint = st
        .options
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get("sd_model_checkpoint")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_default();
    let width = resolve_checkpoint(&st.models, &checkpoint)
        .ok()
        .and_then(|p| text_encoder_width(&p))
        .unwrap_or(SD1_WIDTH);
    let state = st.clone();
    let db = tokio::task::spawn_blocking(move || {
        let mut cache = state
            .embeddings_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        cache.get(&state.embeddings, width).0
    })
    .await
    .unwrap_or_else(|_| Arc::new(easel_core::embeddings::EmbeddingDatabase::new(width)));
    let describe =
        |list: Vec<&std::sync::Arc<easel_core::embeddings::Embedding>>| -> Map<String, Value> {
            list.into_iter()
                .map(|e| {
                    (
                        e.name.clone(),
                        json!({
                            "step": e.step,
                            "sd_checkpoint": e.sd_checkpoint,
                            "sd_checkpoint_name": e.sd_checkpoint_name,
                            "shape": e.width,
                            "vectors": e.vectors,
                        }),
                    )
                })
                .collect()
        };
    Json(json!({
        "loaded": describe(db.embeddings()),
        "skipped": describe(db.skipped().iter().collect()),
    }))
}

async fn scripts() -> Json<Value> {
    Json(json!({ "txt2img": [], "img2img": [] }))
}

/// `kB` figures of `/proc/meminfo` and this process's resident set, in bytes.
fn ram() -> Value {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |text: &str, key: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|v| v * 1024)
    };
    let total = kb(&meminfo, "MemTotal:");
    let free = kb(&meminfo, "MemAvailable:");
    json!({
        "free": free,
        "used": total.zip(free).map(|(t, f)| t.saturating_sub(f)),
        "total": total,
        "process_rss": kb(&status, "VmRSS:"),
    })
}

async fn memory() -> Json<Value> {
    Json(json!({ "ram": ram(), "cuda": { "error": "Easel does not use CUDA through torch" } }))
}
