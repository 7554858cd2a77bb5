//! The controls and what a job shows while it runs: Generate / Interrupt / Skip, the
//! status line right under them, the progress bar with its ETA, the live preview (drawn at
//! the image's size, smoothed) and, once done, the job's images in its place.

use super::actions;
use super::state::{use_state, AppState, GalleryItem, Target};
use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::{Clamped, JsCast};

/// The ETA A1111 shows: time per finished step times the steps left (of every image).
pub fn eta_text(st: AppState) -> String {
    let p = st.progress.get();
    if p.step == 0 || p.total == 0 {
        return String::new();
    }
    let done = (p.batch * p.total + p.step) as f64;
    let all = (p.batch_count.max(1) * p.total) as f64;
    let per_step = (p.now_ms - p.started_ms) / done;
    let left = ((all - done) * per_step / 1000.0).max(0.0);
    format!("{:.0}% · ETA {:.0} s", 100.0 * done / all, left)
}

#[component]
fn PreviewCanvas() -> impl IntoView {
    let st = use_state();
    let canvas = NodeRef::<Canvas>::new();
    Effect::new(move |_| {
        let Some(p) = st.preview.get() else { return };
        let Some(c) = canvas.get() else { return };
        let c: web_sys::HtmlCanvasElement = c;
        c.set_width(p.width);
        c.set_height(p.height);
        let ctx: Option<web_sys::CanvasRenderingContext2d> = c
            .get_context("2d")
            .ok()
            .flatten()
            .and_then(|x| x.dyn_into().ok());
        if let (Some(ctx), Ok(img)) = (
            ctx,
            web_sys::ImageData::new_with_u8_clamped_array_and_sh(
                Clamped(&p.rgba),
                p.width,
                p.height,
            ),
        ) {
            let _ = ctx.put_image_data(&img, 0.0, 0.0);
        }
    });
    // Shown at the size of the image being made (at most 512 px), not at the latent's.
    let size = move || {
        st.form.with(|f| {
            let (w, h) = (
                f["width"].as_f64().unwrap_or(512.0),
                f["height"].as_f64().unwrap_or(512.0),
            );
            let scale = (384.0 / w.max(h)).min(1.0).max(256.0 / w.max(h));
            (w * scale, h * scale)
        })
    };
    view! {
        <canvas id="preview" width="64" height="64" node_ref=canvas class:hidden=move || st.preview.with(Option::is_none)
            style:width=move || format!("{}px", size().0) style:height=move || format!("{}px", size().1)></canvas>
    }
}

/// The last job's images, each opening the full-size viewer.
#[component]
fn CurrentImages() -> impl IntoView {
    let st = use_state();
    view! {
        <div id="current" class:hidden=move || st.preview.with(Option::is_some)>
            <For each=move || st.current.get() key=|i: &GalleryItem| i.url.clone() let(img)>
                {
                    let open = img.clone();
                    view! {
                        <figure class="current">
                            <img src=img.url.clone() alt=format!("seed {}", img.seed) on:click=move |_| st.viewer.set(Some(open.clone()))/>
                            <figcaption>
                                <a href=img.url.clone() download=format!("easel-{}.png", img.seed)>"Download PNG"</a>
                            </figcaption>
                        </figure>
                    }
                }
            </For>
        </div>
    }
}

#[component]
pub fn ProgressView() -> impl IntoView {
    let st = use_state();
    let generating = move || st.state.get() == "generating";
    let can_generate =
        move || !st.busy() && (st.model.with(Option::is_some) || st.target.get() == Target::Server);
    let progress_value = move || {
        let p = st.progress.get();
        (p.batch * p.total.max(1) + p.step) as f64
    };
    let progress_max = move || {
        let p = st.progress.get();
        (p.total.max(1) * p.batch_count.max(1)) as f64
    };
    view! {
        <div class="actions">
            <button id="generate" type="button" class="primary" disabled=move || !can_generate()
                title="Ctrl+Enter"
                on:click=move |_| leptos::task::spawn_local(actions::generate(st))>"Generate"</button>
            <button id="cancel" type="button" disabled=move || !generating() on:click=move |_| actions::interrupt(st)
                title="stop after this step and keep what was made">"Interrupt"</button>
            <button id="skip" type="button" disabled=move || !generating() on:click=move |_| actions::skip(st)
                title="end this image of the batch count and go on with the next">"Skip"</button>
            <Show when=move || !st.server_models.get().is_empty()>
                <label title="where Generate runs">"Run on "
                    <select id="target" on:change=move |ev| st.target.set(if event_target_value(&ev) == "server" { Target::Server } else { Target::Browser })>
                        <option value="browser" selected=move || st.target.get() == Target::Browser>"this browser's GPU"</option>
                        <option value="server" selected=move || st.target.get() == Target::Server>"the server"</option>
                    </select>
                </label>
            </Show>
        </div>
        <p id="status" role="status" class:error=move || st.status.get().1>{move || st.status.get().0}</p>
        <div class="progress-line">
            <progress id="progress" prop:max=progress_max prop:value=progress_value></progress>
            <span id="eta">{move || eta_text(st)}</span>
        </div>
        <label>"Live preview "
            <select id="preview-method" on:change=move |ev| st.preview_method.set(event_target_value(&ev))
                title="A1111's live preview method; Approx NN and TAESD need their files from VAE-approx/">
                {["Approx cheap", "Approx NN", "TAESD"].into_iter().map(|m| view! { <option selected=move || st.preview_method.get() == m>{m}</option> }).collect_view()}
            </select>
        </label>
        <div class="output">
            <PreviewCanvas/>
            <CurrentImages/>
        </div>
    }
}
