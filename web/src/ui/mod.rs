//! The page's UI: a Leptos app (client-side rendering) on the main thread. Generation runs
//! in a Web Worker ([`worker_client`], [`crate::worker_main`]) on WebGPU, or on the server
//! that served the page ([`server_client`]); the UI thread only draws and waits.

pub mod a1111_request;
pub mod actions;
pub mod app;
pub mod attention_edit;
pub mod discovery;
pub mod extra_networks;
pub mod fields;
pub mod fields_view;
pub mod gallery;
pub mod gallery_view;
pub mod image_inputs;
pub mod model_picker;
pub mod progress_view;
pub mod prompt_editor;
pub mod server_client;
pub mod settings_view;
pub mod state;
pub mod test_hooks;
pub mod worker_client;

use wasm_bindgen::prelude::*;

/// Mounts the page. Called by the page's bootstrap script once the wasm module is ready.
#[wasm_bindgen(js_name = startApp)]
pub fn start_app() {
    test_hooks::install();
    leptos::mount::mount_to_body(app::App);
}
