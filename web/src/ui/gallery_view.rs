//! The gallery (every image kept in this browser, newest first) and the full-size viewer:
//! per image its infotext, copy infotext, download (the PNG carries its `parameters`),
//! reuse its settings, send it to img2img, delete.

use super::actions;
use super::gallery;
use super::state::{use_state, AppState, GalleryItem};
use easel_core::infotext::Infotext;
use easel_core::service::GenerationSettings;
use leptos::prelude::*;
use wasm_bindgen::JsValue;

/// Fills the form from an infotext (A1111's paste), keeping going past fields it cannot
/// read and naming them.
pub fn paste_infotext(st: AppState, text: &str, from: &str) {
    let mut s = GenerationSettings::default();
    let warnings = s.paste_infotext(&Infotext::parse(text));
    match serde_json::from_str(&s.to_json()) {
        Ok(v) => {
            actions::apply_settings(st, v);
            if warnings.is_empty() {
                st.say(format!("settings from {from}"));
            } else {
                st.fail(format!(
                    "settings from {from}; not read: {}",
                    warnings.join("; ")
                ));
            }
            st.state.set("filled");
        }
        Err(e) => st.fail(e.to_string()),
    }
}

fn copy_text(text: &str) {
    let Some(w) = web_sys::window() else { return };
    let clipboard =
        js_sys::Reflect::get(&w.navigator(), &"clipboard".into()).unwrap_or(JsValue::UNDEFINED);
    if let Ok(write) = js_sys::Reflect::get(&clipboard, &"writeText".into()) {
        if let Ok(f) = wasm_bindgen::JsCast::dyn_into::<js_sys::Function>(write) {
            let _ = f.call1(&clipboard, &JsValue::from_str(text));
        }
    }
}

#[component]
fn GalleryCard(img: GalleryItem) -> impl IntoView {
    let st = use_state();
    let (view_img, send, paste, copy, key) = (
        img.clone(),
        img.clone(),
        img.infotext.clone(),
        img.infotext.clone(),
        img.key,
    );
    view! {
        <figure class="card">
            <img src=img.url.clone() alt=format!("seed {}", img.seed) title="open full size" on:click=move |_| st.viewer.set(Some(view_img.clone()))/>
            <figcaption>
                <pre class="infotext">{img.infotext.clone()}</pre>
                <div class="card-actions">
                    <button type="button" on:click=move |_| copy_text(&copy)>"Copy infotext"</button>
                    <a href=img.url.clone() download=format!("easel-{}.png", img.seed)>"Download PNG"</a>
                    <button type="button" class="use-settings" on:click=move |_| paste_infotext(st, &paste, "the gallery")>"Use settings"</button>
                    <button type="button" class="send-img2img" on:click=move |_| {
                        super::image_inputs::set_init_image(st, format!("easel-{}.png", send.seed), send.png.clone());
                        st.say("sent to img2img: paint a mask on it to inpaint");
                    }>"Send to img2img / inpaint"</button>
                    <button type="button" class="delete" on:click=move |_| leptos::task::spawn_local(gallery::remove(st, Some(key)))>"Delete"</button>
                </div>
            </figcaption>
        </figure>
    }
}

#[component]
pub fn Gallery() -> impl IntoView {
    let st = use_state();
    view! {
        <section id="gallery">
            <h2>"Gallery " <small>{move || format!("({} kept in this browser)", st.gallery.with(Vec::len))}</small>
                <button type="button" id="clear-history" on:click=move |_| leptos::task::spawn_local(gallery::remove(st, None))
                    disabled=move || st.gallery.with(Vec::is_empty)>"Clear"</button>
            </h2>
            <div class="cards">
                <For each=move || st.gallery.get() key=|i: &GalleryItem| (i.key, i.url.clone()) let(img)>
                    <GalleryCard img=img/>
                </For>
            </div>
        </section>
    }
}

/// The image at full size over the page; a click or Escape closes it.
#[component]
pub fn Viewer() -> impl IntoView {
    let st = use_state();
    view! {
        <Show when=move || st.viewer.with(Option::is_some)>
            <div id="viewer" on:click=move |_| st.viewer.set(None)>
                {move || st.viewer.get().map(|img| view! {
                    <img src=img.url.clone() alt="full size"/>
                    <pre>{img.infotext.clone()}</pre>
                })}
            </div>
        </Show>
    }
}
