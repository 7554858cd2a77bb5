//! Sampling settings (sampler, steps, CFG, seed with random / reuse, size with swap, batch,
//! clip skip, noise, emphasis, VAE methods), A1111's sampler parameters, and hires fix.

use super::fields;
use super::fields_view::{FieldGroup, FieldInput};
use super::gallery_view::paste_infotext;
use super::state::use_state;
use leptos::prelude::*;
use serde_json::Value;

#[component]
pub fn SamplerSettings() -> impl IntoView {
    let st = use_state();
    let field = |id| fields::field(id).map(|f| view! { <FieldInput field=f/> });
    let reuse_seed = move |_| {
        let seed = st
            .current
            .with(|c| c.first().map(|i| i.seed))
            .or_else(|| st.gallery.with(|g| g.first().map(|i| i.seed)));
        match seed {
            Some(s) => st.form.update(|f| fields::set(f, "seed", Value::from(s))),
            None => st.fail("no image made yet whose seed could be reused"),
        }
    };
    let swap = move |_| {
        st.form.update(|f| {
            let (w, h) = (
                fields::get(f, "width").clone(),
                fields::get(f, "height").clone(),
            );
            fields::set(f, "width", h);
            fields::set(f, "height", w);
        })
    };
    let paste = move |_| {
        let prompt = st
            .form
            .with(|f| fields::get(f, "prompt").as_str().unwrap_or("").to_string());
        if prompt.contains("Steps: ") {
            paste_infotext(st, &prompt, "the prompt box");
        } else if let Some(text) = st
            .current
            .with(|c| c.first().map(|i| i.infotext.clone()))
            .or_else(|| st.gallery.with(|g| g.first().map(|i| i.infotext.clone())))
        {
            paste_infotext(st, &text, "the last image");
        } else {
            st.fail("paste an infotext into the prompt box first (or make an image)");
        }
    };
    view! {
        <div class="row">
            <FieldGroup ids=&["sampler", "schedule", "steps", "cfg"]/>
            <button type="button" id="paste" on:click=paste title="read generation parameters from the prompt box, or from the last image when it has none">"Paste parameters"</button>
        </div>
        <div class="row">
            {field("seed")}
            <button id="random-seed" type="button" title="use a random seed" on:click=move |_| st.form.update(|f| fields::set(f, "seed", Value::from(-1)))>"Random"</button>
            <button id="reuse-seed" type="button" title="reuse the seed of the last image" on:click=reuse_seed>"Reuse"</button>
            {field("width")}
            <button id="swap-size" type="button" title="swap width and height" on:click=swap>"⇅"</button>
            {field("height")}
        </div>
        <div class="row">
            <FieldGroup ids=&["batch-count", "batch", "clip-skip", "rng", "noise-device", "ensd", "emphasis", "nai-braces", "vae-decoder", "vae-encoder"]/>
        </div>
        <details class="wide" id="sampler-params">
            <summary>"Sampler parameters (blank = default)"</summary>
            <FieldGroup ids=&["sp-eta", "sp-eta_ddim", "sp-s_churn", "sp-s_tmin", "sp-s_tmax", "sp-s_noise", "sp-sigma_min", "sp-sigma_max", "sp-rho", "sp-beta_alpha", "sp-beta_beta"]/>
        </details>
        <details class="wide" id="hires">
            <summary>"Hires fix (txt2img)"</summary>
            <FieldGroup ids=&["enable-hr", "hr-upscaler", "hr-scale", "hr-steps", "hr-resize-x", "hr-resize-y", "hr-sampler", "hr-schedule", "hr-prompt", "hr-negative"]/>
            <p class="note">"Hires denoising uses the Denoising strength of img2img, as in A1111."</p>
        </details>
        <details class="wide" id="compatibility">
            <summary>"Compatibility with older A1111 versions, VAE tiling"</summary>
            <FieldGroup ids=&["old-prompt-timelines", "downcast-alphas-cumprod", "pad-conds", "pad-conds-v0", "vae-tiling"]/>
        </details>
    }
}
