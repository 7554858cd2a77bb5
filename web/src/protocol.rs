//! The messages between the page and its Web Worker. Requests carry the user's `File`
//! handles (the worker reads them by byte range), so they are plain JS objects sent by
//! structured clone rather than serialised bytes: gloo-worker's bincode channel cannot carry
//! a `File`. Each request has an `id`; the worker answers it once with `ok` (and a `value`)
//! or `error` (and a `message`). Progress arrives in between as `step` and `preview` events.

use js_sys::{Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// A plain object with these properties.
pub fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let out = Object::new();
    for (k, v) in pairs {
        // Setting a property on an object just created cannot fail.
        let _ = Reflect::set(&out, &JsValue::from_str(k), v);
    }
    out.into()
}

/// Property `key` of `v` (`undefined` when missing).
pub fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

pub fn get_string(v: &JsValue, key: &str) -> Option<String> {
    get(v, key).as_string()
}

pub fn get_f64(v: &JsValue, key: &str) -> Option<f64> {
    get(v, key).as_f64()
}

pub fn get_bool(v: &JsValue, key: &str) -> bool {
    get(v, key).as_bool().unwrap_or(false)
}

/// Property `key` as a JS value of type `T`, when it is one.
pub fn get_as<T: JsCast>(v: &JsValue, key: &str) -> Option<T> {
    get(v, key).dyn_into::<T>().ok()
}

/// A JS array of strings as a vector (non-strings skipped).
pub fn get_strings(v: &JsValue, key: &str) -> Vec<String> {
    match get_as::<js_sys::Array>(v, key) {
        Some(a) => a.iter().filter_map(|x| x.as_string()).collect(),
        None => Vec::new(),
    }
}

/// The message of a thrown JS value (an `Error`'s `message`, or the value as text).
pub fn error_text(e: &JsValue) -> String {
    get_string(e, "message")
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Request kinds (the `type` of a request).
pub mod kind {
    pub const INIT: &str = "init";
    pub const LOAD: &str = "load";
    pub const HYPERNETS: &str = "hypernets";
    pub const TAESD: &str = "taesd";
    pub const LORAS: &str = "loras";
    pub const EMBEDDINGS: &str = "embeddings";
    /// Upscaler model `files` with the A1111 `folders` they came from (same order).
    pub const UPSCALERS: &str = "upscalers";
    pub const GENERATE: &str = "generate";
    pub const INFOTEXT: &str = "infotext";
    /// Ends the current image of the batch count and goes on with the next (A1111's Skip).
    pub const SKIP: &str = "skip";
    /// Ends the job after the current step, keeping its images (A1111's Interrupt).
    pub const INTERRUPT: &str = "interrupt";
}

/// Worker → page messages that are not answers.
pub mod event {
    /// The worker has its handlers set and takes requests.
    pub const READY: &str = "ready";
    /// A sampling step finished: `step`, `total`, `batch`, `batchCount`, and the cheap
    /// preview as `rgba`, `width`, `height`.
    pub const STEP: &str = "step";
    /// A network preview (Approx NN, TAESD): `rgba`, `width`, `height`.
    pub const PREVIEW: &str = "preview";
    /// A model load's progress: `read` bytes of `size`, the wasm heap as `memoryBytes`.
    pub const LOAD: &str = "load";
    pub const OK: &str = "ok";
    pub const ERROR: &str = "error";
}
