//! `window.easel`: what the browser tests read (timings, the images made, the previews
//! seen, the wasm heap after a load). Plain data a user never needs, kept out of the UI.

use super::state::GalleryItem;
use crate::protocol::{get, object};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::JsValue;

fn hooks() -> JsValue {
    let window: JsValue = js_sys::global().into();
    let h = get(&window, "easel");
    if h.is_object() {
        return h;
    }
    let h = object(&[
        ("timings", Object::new().into()),
        ("results", Array::new().into()),
        ("previews", Array::new().into()),
    ]);
    let _ = Reflect::set(&window, &"easel".into(), &h);
    h
}

pub fn install() {
    hooks();
}

pub fn set(key: &str, value: JsValue) {
    let _ = Reflect::set(&hooks(), &key.into(), &value);
}

/// The worker's wasm heap as last reported (`memoryBytes`) and the largest seen during
/// loads (`memoryPeakBytes`).
pub fn note_memory(bytes: f64) {
    set("memoryBytes", bytes.into());
    let peak = get(&hooks(), "memoryPeakBytes").as_f64().unwrap_or(0.0);
    set("memoryPeakBytes", bytes.max(peak).into());
}

pub fn set_timing(key: &str, ms: f64) {
    let _ = Reflect::set(&get(&hooks(), "timings"), &key.into(), &ms.into());
}

fn push(list: &str, v: JsValue) {
    if let Ok(a) = get(&hooks(), list).dyn_into_array() {
        a.push(&v);
    }
}

trait DynArray {
    fn dyn_into_array(self) -> Result<Array, JsValue>;
}

impl DynArray for JsValue {
    fn dyn_into_array(self) -> Result<Array, JsValue> {
        use wasm_bindgen::JsCast;
        self.dyn_into::<Array>()
    }
}

pub fn push_result(img: &GalleryItem) {
    push("results", super::gallery::record(img));
}

pub fn push_preview(method: &str, width: u32, height: u32) {
    push(
        "previews",
        object(&[
            ("method", method.into()),
            ("width", width.into()),
            ("height", height.into()),
        ]),
    );
}
