//! Server mode: when the page was served by `easel serve` with its A1111 API, a job can run
//! there instead of on this browser's GPU. The same form and settings go out as an A1111
//! request ([`super::a1111_request`]); `/sdapi/v1/progress` is polled for the step and the
//! live preview; the PNGs come back with their infotexts and join the same gallery.

use super::a1111_request::{request_body, ImageInputs};
use super::actions::{gallery_item, step_progress};
use super::state::{AppState, GalleryItem, Preview};
use base64::Engine;
use easel_core::service::GenerationSettings;
use gloo_net::http::Request;
use leptos::prelude::*;
use serde_json::Value;
use std::cell::Cell;
use std::rc::Rc;

const API: &str = "/sdapi/v1";

/// Asks the origin for its checkpoints: a list means server mode is available.
pub async fn probe(st: AppState) {
    let Ok(resp) = Request::get(&format!("{API}/sd-models")).send().await else {
        return;
    };
    if !resp.ok() {
        return;
    }
    let Ok(Value::Array(models)) = resp.json::<Value>().await else {
        return;
    };
    let names: Vec<String> = models
        .iter()
        .filter_map(|m| {
            m.get("model_name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    st.server_models.set(names);
}

/// Interrupt or skip the server's running job.
pub fn post_simple(what: &'static str) {
    leptos::task::spawn_local(async move {
        let _ = Request::post(&format!("{API}/{what}")).send().await;
    });
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Runs the job on the server, showing its progress and preview meanwhile.
pub async fn generate(
    st: AppState,
    s: &GenerationSettings,
    init_image: Option<Vec<u8>>,
    mask: Option<Vec<u8>>,
) -> Result<Vec<GalleryItem>, String> {
    let images = init_image.map(|img| ImageInputs {
        init_image: b64(&img),
        mask: mask.as_deref().map(b64),
    });
    let body = request_body(s, &st.server_model.get_untracked(), images.as_ref());
    let endpoint = if images.is_some() {
        "img2img"
    } else {
        "txt2img"
    };
    let done = Rc::new(Cell::new(false));
    leptos::task::spawn_local(poll_progress(st, done.clone()));
    let sent = Request::post(&format!("{API}/{endpoint}"))
        .json(&body)
        .map_err(|e| e.to_string())?
        .send()
        .await;
    done.set(true);
    let resp = sent.map_err(|e| format!("the server did not answer: {e}"))?;
    let status = resp.status();
    let answer: Value = resp
        .json()
        .await
        .map_err(|e| format!("the server's answer is not JSON: {e}"))?;
    if status != 200 {
        let detail = answer
            .get("detail")
            .map(|d| {
                d.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| d.to_string())
            })
            .or_else(|| {
                answer
                    .get("error")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| answer.to_string());
        return Err(format!("the server refused the job ({status}): {detail}"));
    }
    let info: Value = answer
        .get("info")
        .and_then(Value::as_str)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null);
    let infotexts = info
        .get("infotexts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let seeds = info
        .get("all_seeds")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, image) in answer
        .get("images")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let png = base64::engine::general_purpose::STANDARD
            .decode(image.as_str().unwrap_or(""))
            .map_err(|e| format!("image {i} from the server: {e}"))?;
        let decoded =
            easel_core::image::decode_image(&png, "server image").map_err(|e| e.to_string())?;
        let infotext = infotexts
            .get(i)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let seed = seeds.get(i).and_then(Value::as_u64).unwrap_or(s.seed);
        out.push(gallery_item(
            png,
            infotext,
            seed,
            decoded.width as u32,
            decoded.height as u32,
        ));
    }
    Ok(out)
}

/// Polls the server's progress until `done`: step, image of the batch count, live preview.
async fn poll_progress(st: AppState, done: Rc<Cell<bool>>) {
    while !done.get() {
        gloo_timers::future::TimeoutFuture::new(500).await;
        if done.get() {
            break;
        }
        let Ok(resp) = Request::get(&format!("{API}/progress")).send().await else {
            continue;
        };
        let Ok(p) = resp.json::<Value>().await else {
            continue;
        };
        let state = &p["state"];
        let (step, steps) = (
            state["sampling_step"].as_u64().unwrap_or(0),
            state["sampling_steps"].as_u64().unwrap_or(0),
        );
        if steps == 0 || done.get() {
            continue;
        }
        let batch = state["job_no"].as_u64().unwrap_or(0) as u32;
        let count = st.progress.get_untracked().batch_count.max(1);
        step_progress(st, step as u32, steps as u32, batch, count);
        if let Some(img) = p["current_image"].as_str() {
            if let Ok(png) = base64::engine::general_purpose::STANDARD.decode(img) {
                if let Ok(rgb) = easel_core::image::decode_image(&png, "preview") {
                    st.preview.set(Some(Preview {
                        rgba: rgb
                            .data
                            .chunks(3)
                            .flat_map(|c| [c[0], c[1], c[2], 255])
                            .collect(),
                        width: rgb.width as u32,
                        height: rgb.height as u32,
                    }));
                }
            }
        }
    }
}
