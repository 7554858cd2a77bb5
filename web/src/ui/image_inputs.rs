//! img2img and inpainting inputs: the init image (picked, dropped or sent from the gallery)
//! and its mask, painted on a canvas over the image (white = repaint) or picked as a file.

use super::fields_view::FieldGroup;
use super::state::{picked, use_state, AppState};
use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlInputElement, PointerEvent};

thread_local! {
    /// The mask canvas, when one is shown (read at Generate).
    static MASK_CANVAS: std::cell::RefCell<Option<web_sys::HtmlCanvasElement>> = const { std::cell::RefCell::new(None) };
    static PAINTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Reads the first file of an `<input type=file>`.
pub async fn first_file_bytes(input: &HtmlInputElement) -> Option<(String, Vec<u8>)> {
    let file = input.files()?.get(0)?;
    let blob = gloo_file::Blob::from(web_sys::Blob::from(file.clone()));
    gloo_file::futures::read_as_bytes(&blob)
        .await
        .ok()
        .map(|b| (file.name(), b))
}

/// Makes `png` the init image (and clears the mask).
pub fn set_init_image(st: AppState, name: String, bytes: Vec<u8>) {
    let decoded = easel_core::image::decode_image(&bytes, &name);
    match decoded {
        Ok(img) => {
            let url = super::gallery::object_url(&bytes);
            picked::with(|p| p.init_image = Some(bytes));
            PAINTED.with(|p| p.set(false));
            st.mask_name.set(None);
            st.init_image
                .set(Some((name, url, img.width as u32, img.height as u32)));
        }
        Err(e) => st.fail(e.to_string()),
    }
}

/// The job's init image and mask bytes (the painted mask wins over a picked file).
pub async fn job_images(st: AppState) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    if st.init_image.with_untracked(Option::is_none) {
        return (None, None);
    }
    let init = picked::with(|p| p.init_image.clone());
    let painted = if PAINTED.with(|p| p.get()) {
        MASK_CANVAS.with(|c| c.borrow().as_ref().and_then(mask_png))
    } else {
        None
    };
    let mask = painted.or_else(|| picked::with(|p| p.mask_file.clone()));
    (init, mask)
}

/// The painted mask as a black-and-white PNG at the init image's size.
fn mask_png(canvas: &web_sys::HtmlCanvasElement) -> Option<Vec<u8>> {
    let ctx = context(canvas)?;
    let (w, h) = (canvas.width(), canvas.height());
    let data = ctx
        .get_image_data(0.0, 0.0, w as f64, h as f64)
        .ok()?
        .data();
    let rgb: Vec<u8> = data
        .chunks(4)
        .flat_map(|p| if p[3] > 0 { [255u8; 3] } else { [0u8; 3] })
        .collect();
    easel_core::infotext::encode_png(w, h, &rgb, None).ok()
}

fn context(canvas: &web_sys::HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok().flatten()?.dyn_into().ok()
}

#[component]
fn MaskCanvas(url: String, width: u32, height: u32) -> impl IntoView {
    let st = use_state();
    let canvas = NodeRef::<Canvas>::new();
    let brush = RwSignal::new(24.0f64);
    let drawing = RwSignal::new(false);
    Effect::new(move |_| {
        if let Some(c) = canvas.get() {
            let c: web_sys::HtmlCanvasElement = c;
            MASK_CANVAS.with(|m| *m.borrow_mut() = Some(c));
        }
    });
    let paint = move |ev: PointerEvent| {
        let Some(c) = canvas.get_untracked() else {
            return;
        };
        let c: web_sys::HtmlCanvasElement = c;
        let rect = c.get_bounding_client_rect();
        let sx = c.width() as f64 / rect.width().max(1.0);
        let (x, y) = (
            (ev.client_x() as f64 - rect.left()) * sx,
            (ev.client_y() as f64 - rect.top()) * sx,
        );
        if let Some(ctx) = context(&c) {
            ctx.set_fill_style_str("white");
            ctx.begin_path();
            let _ = ctx.arc(
                x,
                y,
                brush.get_untracked() * sx / 2.0,
                0.0,
                std::f64::consts::TAU,
            );
            ctx.fill();
            PAINTED.with(|p| p.set(true));
            st.mask_name.set(Some("painted".into()));
        }
    };
    let clear = move |_| {
        if let Some(c) = canvas.get_untracked() {
            let c: web_sys::HtmlCanvasElement = c;
            if let Some(ctx) = context(&c) {
                ctx.clear_rect(0.0, 0.0, c.width() as f64, c.height() as f64);
            }
        }
        PAINTED.with(|p| p.set(false));
        st.mask_name
            .set(picked::with(|p| p.mask_file.is_some()).then(|| "file".into()));
    };
    view! {
        <div class="mask-editor">
            <img src=url alt="init image"/>
            <canvas id="mask-canvas" node_ref=canvas width=width height=height
                title="paint the area to repaint"
                on:pointerdown=move |ev: PointerEvent| { drawing.set(true); paint(ev) }
                on:pointermove=move |ev: PointerEvent| if drawing.get_untracked() { paint(ev) }
                on:pointerup=move |_| drawing.set(false)
                on:pointerleave=move |_| drawing.set(false)></canvas>
        </div>
        <label>"Brush " <input type="range" min="4" max="128" prop:value=move || brush.get().to_string()
            on:input=move |ev| brush.set(event_target_value(&ev).parse().unwrap_or(24.0))/></label>
        <button type="button" on:click=clear>"Clear mask"</button>
    }
}

#[component]
pub fn ImageInputs() -> impl IntoView {
    let st = use_state();
    let on_init = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        leptos::task::spawn_local(async move {
            match first_file_bytes(&input).await {
                Some((name, bytes)) => set_init_image(st, name, bytes),
                None => {
                    picked::with(|p| p.init_image = None);
                    st.init_image.set(None);
                }
            }
        });
    };
    let on_mask = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        leptos::task::spawn_local(async move {
            let file = first_file_bytes(&input).await;
            st.mask_name.set(file.as_ref().map(|(n, _)| n.clone()));
            picked::with(|p| p.mask_file = file.map(|(_, b)| b));
        });
    };
    // An init image opens the section (removing it leaves the section as the user has it).
    let details = NodeRef::<leptos::html::Details>::new();
    Effect::new(move |_| {
        if st.init_image.with(Option::is_some) {
            if let Some(d) = details.get() {
                let d: web_sys::HtmlElement = d.into();
                let _ = d.set_attribute("open", "");
            }
        }
    });
    let remove = move |_| {
        picked::with(|p| {
            p.init_image = None;
            p.mask_file = None;
        });
        st.init_image.set(None);
        st.mask_name.set(None);
    };
    view! {
        <details class="wide" id="img2img" node_ref=details>
            <summary>"img2img and inpainting "
                {move || st.init_image.get().map(|(n, _, w, h)| format!("({n}, {w}×{h}{})", if st.mask_name.get().is_some() { ", masked" } else { "" }))}
            </summary>
            <label>"Init image " <input id="init-image" type="file" accept=".png,.jpg,.jpeg,.webp,.bmp" on:change=on_init disabled=move || st.busy()/></label>
            <label>"Mask file (white = repaint) " <input id="mask" type="file" accept=".png,.jpg,.jpeg,.webp,.bmp" on:change=on_mask disabled=move || st.busy()/></label>
            <button type="button" on:click=remove disabled=move || st.init_image.with(Option::is_none)>"Remove init image"</button>
            {move || st.init_image.get().map(|(_, url, w, h)| view! { <MaskCanvas url=url width=w height=h/> })}
            <FieldGroup ids=&["denoising", "resize-mode", "mask-blur", "inpainting-fill", "inpaint-full-res", "inpaint-padding", "mask-invert"]/>
        </details>
    }
}
