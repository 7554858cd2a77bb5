//! The page: layout, the page-wide keys (Ctrl+Enter generates, Escape closes the viewer),
//! dropping files (a PNG with parameters fills the form, another picture becomes img2img's
//! init image, a checkpoint with its sidecars loads), the form remembered across reloads, and `data-state` on
//! `<body>` for the browser tests.

use super::actions;
use super::extra_networks::ExtraNetworks;
use super::fields;
use super::fields_view::FormProblems;
use super::gallery_view::{Gallery, Viewer};
use super::image_inputs::ImageInputs;
use super::model_picker::ModelPicker;
use super::progress_view::ProgressView;
use super::prompt_editor::PromptEditor;
use super::settings_view::SamplerSettings;
use super::state::{picked, AppState};
use gloo_events::EventListener;
use gloo_storage::{LocalStorage, Storage};
use leptos::prelude::*;
use serde_json::Value;
use wasm_bindgen::JsCast;
use web_sys::{DragEvent, File, KeyboardEvent};

const FORM_KEY: &str = "easel.form";

/// The form as saved: the defaults with the saved values over them (fields the page no
/// longer has are dropped, new ones keep their defaults).
fn saved_form() -> Value {
    let mut form = fields::default_form();
    if let Ok(Value::Object(saved)) = LocalStorage::get::<Value>(FORM_KEY) {
        for (k, v) in saved {
            if form.get(&k).is_some() && k != "hypernets" {
                form[k.as_str()] = v;
            }
        }
    }
    form
}

fn dropped_files(ev: &DragEvent) -> Vec<File> {
    let list = ev.data_transfer().and_then(|d| d.files());
    (0..list.as_ref().map_or(0, |l| l.length()))
        .filter_map(|i| list.as_ref().and_then(|l| l.get(i)))
        .collect()
}

fn on_drop(st: AppState, files: Vec<File>) {
    let lower = |f: &File| f.name().to_ascii_lowercase();
    if let Some(png) = files.iter().find(|f| lower(f).ends_with(".png")).cloned() {
        leptos::task::spawn_local(async move {
            let blob = gloo_file::Blob::from(web_sys::Blob::from(png.clone()));
            match gloo_file::futures::read_as_bytes(&blob).await {
                Ok(bytes) => actions::fill_from_png(st, png.name(), bytes).await,
                Err(e) => st.fail(format!("{}: {e}", png.name())),
            }
        });
        return;
    }
    if st.busy() {
        st.fail(
            "a model is loading or a job is running: drop the model files again when it is done",
        );
        return;
    }
    let paths: Vec<String> = files.iter().map(File::name).collect();
    let found = super::discovery::models(&paths);
    match found.first() {
        Some(m) => {
            let files = picked::ModelFiles {
                label: m.label.clone(),
                checkpoint: files[m.checkpoint].clone(),
                yaml: m.yaml.map(|i| files[i].clone()),
                vae: m.vae.map(|i| files[i].clone()),
            };
            leptos::task::spawn_local(actions::load_model(st, files));
        }
        None => st.fail("drop a .ckpt or .safetensors checkpoint (with its .yaml and .vae.pt), or a PNG to read its settings"),
    }
}

#[component]
pub fn App() -> impl IntoView {
    let st = AppState::default();
    provide_context(st);
    st.form.set(saved_form());
    Effect::new(move |_| {
        let form = st.form.get();
        let _ = LocalStorage::set(FORM_KEY, &form);
    });
    Effect::new(move |_| {
        let state = st.state.get();
        if let Some(body) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.body())
        {
            let _ = body.set_attribute("data-state", state);
        }
    });
    let document = web_sys::window()
        .and_then(|w| w.document())
        .expect("a page has a document");
    EventListener::new_with_options(
        &document,
        "dragover",
        gloo_events::EventListenerOptions::enable_prevent_default(),
        |ev| ev.prevent_default(),
    )
    .forget();
    EventListener::new_with_options(
        &document,
        "drop",
        gloo_events::EventListenerOptions::enable_prevent_default(),
        move |ev| {
            ev.prevent_default();
            if let Some(d) = ev.dyn_ref::<DragEvent>() {
                on_drop(st, dropped_files(d));
            }
        },
    )
    .forget();
    EventListener::new(&document, "keydown", move |ev| {
        let Some(k) = ev.dyn_ref::<KeyboardEvent>() else {
            return;
        };
        if k.key() == "Escape" {
            st.viewer.set(None);
        }
        if k.key() == "Enter"
            && (k.ctrl_key() || k.meta_key())
            && !st.busy()
            && st.model.with_untracked(Option::is_some)
        {
            k.prevent_default();
            leptos::task::spawn_local(actions::generate(st));
        }
    })
    .forget();
    leptos::task::spawn_local(actions::start(st));
    leptos::task::spawn_local(super::gallery::restore(st));
    leptos::task::spawn_local(super::server_client::probe(st));
    view! {
        <header>
            <h1>"Easel"</h1>
            <span id="gpu">{move || st.gpu.get()}</span>
        </header>
        <main>
            <aside>
                <ModelPicker/>
                <ExtraNetworks/>
            </aside>
            <section id="form">
                <PromptEditor/>
                <ProgressView/>
                <FormProblems/>
                <SamplerSettings/>
                <ImageInputs/>
            </section>
        </main>
        <Gallery/>
        <Viewer/>
    }
}
