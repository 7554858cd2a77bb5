//! Picking the model: a `models/` folder (its first checkpoint loads at once, with the
//! folder's networks), or single files (a checkpoint loads as soon as it is picked; a yaml
//! or VAE picked with it is used). In server mode, the server's checkpoints instead.

use super::actions;
use super::state::{picked, use_state, Target};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{File, HtmlInputElement};

fn files_of(ev: &leptos::ev::Event) -> Vec<File> {
    super::discovery::picked_files(&event_target::<HtmlInputElement>(ev))
}

fn input_file(id: &str) -> Option<File> {
    web_sys::window()?
        .document()?
        .get_element_by_id(id)?
        .dyn_into::<HtmlInputElement>()
        .ok()?
        .files()?
        .get(0)
}

/// The single-file slots as a model to load.
fn single_files() -> Option<picked::ModelFiles> {
    let checkpoint = input_file("ckpt")?;
    Some(picked::ModelFiles {
        label: checkpoint.name(),
        checkpoint,
        yaml: input_file("yaml"),
        vae: input_file("vae"),
    })
}

#[component]
pub fn ModelPicker() -> impl IntoView {
    let st = use_state();
    // `webkitdirectory` (pick a folder) has no typed attribute in Leptos: set it directly.
    let folder = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(input) = folder.get() {
            let input: HtmlInputElement = input;
            let _ = input.set_attribute("webkitdirectory", "");
        }
    });
    let load_single = move || {
        if let Some(files) = single_files() {
            leptos::task::spawn_local(actions::load_model(st, files));
        }
    };
    // A sidecar picked after a checkpoint loaded applies at once; before, it waits for one.
    let reload_single = move || {
        if st.model.with_untracked(Option::is_some) {
            load_single();
        }
    };
    let on_folder = move |ev: leptos::ev::Event| {
        let files = files_of(&ev);
        leptos::task::spawn_local(actions::load_folder(st, files));
    };
    let on_choice = move |ev: leptos::ev::Event| {
        let i: usize = event_target_value(&ev).parse().unwrap_or(0);
        st.selected_model.set(i);
        if let Some(m) = picked::with(|p| p.folder_models.get(i).cloned()) {
            leptos::task::spawn_local(actions::load_model(st, m));
        }
    };
    let model_line = move || match st.model.get() {
        Some(m) => format!(
            "{} [{}]{}",
            m.name,
            m.hash,
            m.vae.map(|v| format!(" + {v}")).unwrap_or_default()
        ),
        None => "no model loaded".into(),
    };
    view! {
        <section id="models">
            <h2>"Model " <small>"(your files stay on this computer)"</small></h2>
            <Show when=move || st.target.get() == Target::Server>
                <label>"Server model "
                    <select id="server-model" on:change=move |ev| st.server_model.set(event_target_value(&ev))>
                        <option value="" selected=move || st.server_model.get().is_empty()>"(the server's current model)"</option>
                        {move || st.server_models.get().into_iter().map(|m| {
                            let (sel, value) = (m.clone(), m.clone());
                            view! { <option value=value selected=move || st.server_model.get() == sel>{m}</option> }
                        }).collect_view()}
                    </select>
                </label>
            </Show>
            <fieldset disabled=move || st.busy() class:hidden=move || st.target.get() == Target::Server>
                <label>"models/ folder " <input id="folder" type="file" multiple node_ref=folder on:change=on_folder/></label>
                <label>"Model "
                    <select id="model" on:change=on_choice>
                        {move || st.folder_models.get().into_iter().enumerate().map(|(i, label)| {
                            view! { <option value=i.to_string() selected=move || st.selected_model.get() == i>{label}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <p class="or">"or single files (or drop them on the page):"</p>
                <label>"Checkpoint " <input id="ckpt" type="file" accept=".ckpt,.safetensors" on:change=move |_| load_single()/></label>
                <label>"Config (.yaml) " <input id="yaml" type="file" accept=".yaml,.yml" on:change=move |_| reload_single()/></label>
                <label>"VAE " <input id="vae" type="file" accept=".pt,.ckpt,.safetensors" on:change=move |_| reload_single()/></label>
                <button id="load" type="button" on:click=move |_| load_single()
                    title="load the picked checkpoint again (with the yaml and VAE picked now)">"Load model"</button>
            </fieldset>
            <p id="model-info">{model_line}</p>
        </section>
    }
}
