//! The Web Worker's side: takes the page's requests ([`crate::protocol`]), runs them on the
//! engine (which owns the WebGPU device and the loaded model), and answers each once. A
//! generation is async (it waits for the GPU between kernels), so `skip` and `interrupt`
//! messages are handled while it runs; every other request waits its turn in the engine,
//! which refuses one that would interleave with a running job.

use crate::engine;
use crate::protocol::{event, get, get_as, get_string, kind, object};
use js_sys::{Array, Function, Uint8Array, Uint8ClampedArray};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, File, MessageEvent};

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn post(msg: &JsValue) {
    // Posting a plain object of clonable values cannot fail.
    let _ = scope().post_message(msg);
}

fn file(msg: &JsValue, key: &str) -> Option<File> {
    get_as::<File>(msg, key)
}

fn files(msg: &JsValue, key: &str) -> Vec<File> {
    match get_as::<Array>(msg, key) {
        Some(a) => a.iter().filter_map(|f| f.dyn_into::<File>().ok()).collect(),
        None => Vec::new(),
    }
}

fn bytes(msg: &JsValue, key: &str) -> Option<Vec<u8>> {
    get_as::<Uint8Array>(msg, key).map(|a| a.to_vec())
}

fn js(r: Result<impl Into<JsValue>, JsError>) -> Result<JsValue, JsValue> {
    r.map(Into::into).map_err(JsValue::from)
}

/// Runs one request; the answer's value or the error.
async fn handle(msg: JsValue) -> Result<JsValue, JsValue> {
    let kind = get_string(&msg, "type").unwrap_or_default();
    match kind.as_str() {
        kind::INIT => {
            let adapter = engine::init_gpu().await.map_err(JsValue::from)?;
            let strings = |v: Vec<String>| v.into_iter().map(JsValue::from).collect::<Array>();
            Ok(object(&[
                ("adapter", adapter.into()),
                ("samplers", strings(engine::sampler_labels()).into()),
                ("schedules", strings(engine::schedule_labels()).into()),
                (
                    "upscalers",
                    strings(engine::hires_upscaler_labels().map_err(JsValue::from)?).into(),
                ),
            ]))
        }
        kind::LOAD => {
            let checkpoint = file(&msg, "checkpoint").ok_or("no checkpoint file")?;
            // The load is synchronous: report it from the reads (every 64 MiB), with the
            // wasm heap, so the page shows it moving and the tests can sample the heap.
            let size = checkpoint.size() + file(&msg, "vae").map_or(0.0, |f| f.size());
            let last = std::cell::Cell::new(0u64);
            crate::blob_source::observe_reads(move |read| {
                if read >= last.get() + (64 << 20) {
                    last.set(read);
                    post(&object(&[
                        ("type", event::LOAD.into()),
                        ("read", (read as f64).into()),
                        ("size", size.into()),
                        ("memoryBytes", engine::wasm_memory_bytes().into()),
                    ]));
                }
            });
            let info = engine::load_model(checkpoint, file(&msg, "yaml"), file(&msg, "vae"));
            crate::blob_source::stop_observing();
            let info = info.map_err(JsValue::from)?;
            Ok(object(&[
                ("info", info),
                ("memoryBytes", engine::wasm_memory_bytes().into()),
            ]))
        }
        kind::HYPERNETS => js(engine::load_hypernetworks(files(&msg, "files"))
            .map(|n| n.into_iter().map(JsValue::from).collect::<Array>())),
        kind::LORAS => js(engine::load_loras(files(&msg, "files"))
            .map(|n| n.into_iter().map(JsValue::from).collect::<Array>())),
        kind::EMBEDDINGS => js(engine::load_embeddings(files(&msg, "files"))),
        kind::UPSCALERS => {
            let folders = crate::protocol::get_strings(&msg, "folders");
            let picked = files(&msg, "files").into_iter().zip(folders).collect();
            js(engine::set_upscalers(picked)
                .map(|n| n.into_iter().map(JsValue::from).collect::<Array>()))
        }
        kind::TAESD => {
            let (decoder, encoder) = (file(&msg, "decoder"), file(&msg, "encoder"));
            let halves = engine::set_taesd(decoder.clone(), encoder).map_err(JsValue::from)?;
            let previews = engine::set_preview_networks(file(&msg, "approx"), decoder)
                .map_err(JsValue::from)?;
            Ok(object(&[
                ("decoder", get(&halves, "decoder")),
                ("encoder", get(&halves, "encoder")),
                ("approx", get(&previews, "approx")),
            ]))
        }
        kind::GENERATE => {
            let on_step = |e: engine::StepEvent| {
                post(&object(&[
                    ("type", event::STEP.into()),
                    ("step", (e.step as u32).into()),
                    ("total", (e.total as u32).into()),
                    ("batch", (e.batch as u32).into()),
                    ("batchCount", (e.batch_count as u32).into()),
                    ("rgba", Uint8ClampedArray::from(e.rgba.as_slice()).into()),
                    ("width", (e.width as u32).into()),
                    ("height", (e.height as u32).into()),
                ]))
            };
            let on_preview = Closure::<dyn Fn(JsValue, u32, u32)>::new(
                |rgba: JsValue, width: u32, height: u32| {
                    post(&object(&[
                        ("type", event::PREVIEW.into()),
                        ("rgba", rgba),
                        ("width", width.into()),
                        ("height", height.into()),
                    ]))
                },
            );
            let on_preview_fn: Function = on_preview.as_ref().unchecked_ref::<Function>().clone();
            let result = engine::generate(
                get_string(&msg, "settings").unwrap_or_default(),
                bytes(&msg, "initImage"),
                bytes(&msg, "mask"),
                &on_step,
                get_string(&msg, "previewMethod").unwrap_or_default(),
                on_preview_fn,
            )
            .await;
            // Network previews still in flight call it after the job: keep it alive.
            on_preview.forget();
            js(result)
        }
        kind::INFOTEXT => {
            let png = bytes(&msg, "png").unwrap_or_default();
            match engine::read_infotext(&png) {
                Some(text) => js(engine::settings_from_infotext(&text)),
                None => Ok(JsValue::NULL),
            }
        }
        other => Err(JsValue::from_str(&format!("unknown request `{other}`"))),
    }
}

/// Installs the worker's message handler and tells the page it is ready. Called by the
/// worker's bootstrap script once the wasm module is instantiated.
#[wasm_bindgen(js_name = startWorker)]
pub fn start_worker() {
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(|ev: MessageEvent| {
        let msg = ev.data();
        let id = get(&msg, "id");
        match get_string(&msg, "type").as_deref() {
            Some(kind::SKIP) => engine::cancel_running(false),
            Some(kind::INTERRUPT) => engine::cancel_running(true),
            _ => wasm_bindgen_futures::spawn_local(async move {
                let answer = match handle(msg).await {
                    Ok(value) => {
                        object(&[("id", id), ("type", event::OK.into()), ("value", value)])
                    }
                    Err(e) => object(&[
                        ("id", id),
                        ("type", event::ERROR.into()),
                        ("message", crate::protocol::error_text(&e).into()),
                    ]),
                };
                post(&answer);
            }),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    post(&object(&[("type", event::READY.into())]));
}
