//! Hypernetworks (ticked, with a strength each), LoRAs, textual-inversion embeddings and
//! A1111's VAE-approx files: picked here, used by name in prompts as in A1111. Picking more
//! hypernetworks adds to the set.

use super::actions;
use super::state::{use_state, Target};
use leptos::prelude::*;
use web_sys::{File, HtmlInputElement};

/// The picked files in the folder's scan order.
fn files_of(ev: &leptos::ev::Event) -> Vec<File> {
    let input: HtmlInputElement = event_target(ev);
    // Each file's path read once (a call into the browser), not once per comparison.
    let mut keyed: Vec<(String, File)> = super::discovery::picked_files(&input)
        .into_iter()
        .map(|f| (super::discovery::picked_path(&f), f))
        .collect();
    keyed.sort_by(|(a, _), (b, _)| super::discovery::scan_order(a, b));
    keyed.into_iter().map(|(_, f)| f).collect()
}

#[component]
pub fn ExtraNetworks() -> impl IntoView {
    let st = use_state();
    let hypernet_rows = move || {
        st.hypernets.get().into_iter().enumerate().map(|(i, h)| {
            let name = h.name.clone();
            view! {
                <div class="hypernet">
                    <label><input type="checkbox" value=name.clone() prop:checked=h.enabled
                        on:change=move |ev| { let on = event_target_checked(&ev); st.hypernets.update(|l| l[i].enabled = on) }/>
                        " " {name.clone()}</label>
                    <label>" strength "
                        <input id=format!("hn-strength-{i}") type="number" step="0.05" min="0" max="2" prop:value=h.strength.to_string()
                            on:input=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<f64>() { st.hypernets.update(|l| l[i].strength = v) } }/>
                    </label>
                </div>
            }
        }).collect_view()
    };
    let names = |v: Vec<String>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    view! {
        <section id="networks" class:hidden=move || st.target.get() == Target::Server>
            <fieldset disabled=move || st.busy()>
                <h3>"Hypernetworks"</h3>
                <label>"Add files " <input id="hypernets" type="file" accept=".pt,.safetensors" multiple
                    on:change=move |ev| { let f = files_of(&ev); leptos::task::spawn_local(actions::add_hypernets(st, f)) }/></label>
                <div id="hypernet-list">{hypernet_rows}</div>
                <h3>"LoRA"</h3>
                <label>"Files " <input id="loras" type="file" accept=".safetensors,.pt,.ckpt" multiple
                    on:change=move |ev| { let f = files_of(&ev); leptos::task::spawn_local(actions::set_loras(st, f)) }/></label>
                <p id="lora-list" class="names">{move || names(st.loras.get())}</p>
                <h3>"Embeddings"</h3>
                <label>"Files " <input id="embeddings" type="file" accept=".pt,.bin,.safetensors" multiple
                    on:change=move |ev| { let f = files_of(&ev); leptos::task::spawn_local(actions::set_embeddings(st, f)) }/></label>
                <p id="embedding-list" class="names">{move || names(st.embeddings.get())}</p>
                <h3>"Upscalers (hires fix)"</h3>
                <label>"Files " <input id="upscalers" type="file" accept=".pth,.pt,.safetensors" multiple
                    title="ESRGAN, Real-ESRGAN and SwinIR models (models/ESRGAN, RealESRGAN, SwinIR)"
                    on:change=move |ev| {
                        let f = files_of(&ev).into_iter().map(|f| { let d = super::discovery::upscaler_folder_of(&f.name()); (f, d) }).collect();
                        leptos::task::spawn_local(actions::set_upscalers(st, f))
                    }/></label>
                <p id="upscaler-list" class="names">{move || {
                    let models: Vec<String> = st.upscalers.get().into_iter().skip_while(|n| n != "Nearest").skip(1).collect();
                    if models.is_empty() { "none".to_string() } else { models.join(", ") }
                }}</p>
                <h3>"VAE-approx (TAESD, previews)"</h3>
                <label>"Files " <input id="taesd" type="file" accept=".pth,.pt,.safetensors" multiple
                    title="taesd_decoder.pth, taesd_encoder.pth and model.pt from models/VAE-approx"
                    on:change=move |ev| { let f = files_of(&ev); leptos::task::spawn_local(actions::set_vae_approx(st, f)) }/></label>
                <p id="vae-approx-list" class="names">{move || { let v = st.vae_approx.get(); if v.is_empty() { "none".to_string() } else { v } }}</p>
            </fieldset>
        </section>
    }
}
