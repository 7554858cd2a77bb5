//! The form's inputs, rendered from the field table ([`super::fields`]): each reads its
//! value from the settings JSON and writes it back; a text that is not a valid value is
//! marked and listed (Generate names every one) instead of being sent.

use super::fields::{self, Field, Kind, ListName};
use super::state::{use_state, AppState};
use leptos::prelude::*;

fn write(st: AppState, f: Field, text: String) {
    match fields::parse(&f, &text) {
        Ok(v) => {
            st.unparsed.update(|u| u.retain(|(id, _)| id != f.id));
            st.form.update(|form| fields::set(form, f.key, v));
        }
        Err(e) => st.unparsed.update(|u| {
            u.retain(|(id, _)| id != f.id);
            u.push((f.id.to_string(), e));
        }),
    }
}

fn shown(st: AppState, f: Field) -> String {
    st.form
        .with(|form| fields::display(&f, fields::get(form, f.key)))
}

fn list(st: AppState, name: ListName) -> Vec<String> {
    match name {
        ListName::Samplers => st.samplers.get(),
        ListName::Schedules => st.schedules.get(),
        ListName::Upscalers => st.upscalers.get(),
        ListName::HiresSamplers => std::iter::once(String::new())
            .chain(st.samplers.get())
            .collect(),
        ListName::HiresSchedules => std::iter::once(String::new())
            .chain(st.schedules.get())
            .collect(),
    }
}

/// One field: its label and input.
#[component]
pub fn FieldInput(field: Field) -> impl IntoView {
    let st = use_state();
    let f = field;
    let bad = move || st.unparsed.with(|u| u.iter().any(|(id, _)| id == f.id));
    match f.kind {
        Kind::Check => view! {
            <label title=f.title>
                <input id=f.id type="checkbox"
                    prop:checked=move || st.form.with(|form| fields::get(form, f.key).as_bool().unwrap_or(false))
                    on:change=move |ev| write(st, f, event_target_checked(&ev).to_string())/>
                " " {f.label}
            </label>
        }
        .into_any(),
        Kind::Text => view! {
            <label class="wide" title=f.title>{f.label}
                <textarea id=f.id rows=2
                    prop:value=move || shown(st, f)
                    on:input=move |ev| write(st, f, event_target_value(&ev))></textarea>
            </label>
        }
        .into_any(),
        Kind::Choice(values) => view! {
            <label title=f.title>{f.label} " "
                <select id=f.id on:change=move |ev| write(st, f, event_target_value(&ev))>
                    {values.iter().map(|v| {
                        let v = *v;
                        view! { <option value=v selected=move || shown(st, f) == v>{choice_label(f, v)}</option> }
                    }).collect_view()}
                </select>
            </label>
        }
        .into_any(),
        Kind::List(name) => view! {
            <label title=f.title>{f.label} " "
                <select id=f.id on:change=move |ev| write(st, f, event_target_value(&ev))>
                    {move || list(st, name).into_iter().map(|v| {
                        let (sel, value) = (v.clone(), v.clone());
                        let label = if v.is_empty() { "(the first pass's)".to_string() } else { v };
                        view! { <option value=value selected=move || shown(st, f) == sel>{label}</option> }
                    }).collect_view()}
                </select>
            </label>
        }
        .into_any(),
        Kind::Int { min, max, multiple } => view! {
            <label title=f.title class:invalid=bad>{f.label} " "
                <input id=f.id type="number" min=min step=multiple max=(max < i64::MAX).then_some(max)
                    prop:value=move || shown(st, f)
                    on:input=move |ev| write(st, f, event_target_value(&ev))/>
            </label>
        }
        .into_any(),
        Kind::Float { min, max } => view! {
            <label title=f.title class:invalid=bad>{f.label} " "
                <input id=f.id type="number" min=min max=max step="any"
                    prop:value=move || shown(st, f)
                    on:input=move |ev| write(st, f, event_target_value(&ev))/>
            </label>
        }
        .into_any(),
        Kind::OptionalFloat { min } => view! {
            <label title=f.title class:invalid=bad>{f.label} " "
                <input id=f.id type="number" min=min step="any" placeholder="default"
                    prop:value=move || shown(st, f)
                    on:input=move |ev| write(st, f, event_target_value(&ev))/>
            </label>
        }
        .into_any(),
    }
}

/// The human label of a numeric choice (A1111's menu texts).
fn choice_label(f: Field, v: &'static str) -> &'static str {
    match (f.id, v) {
        ("resize-mode", "0") => "Just resize",
        ("resize-mode", "1") => "Crop and resize",
        ("resize-mode", "2") => "Resize and fill",
        ("resize-mode", "3") => "Just resize (latent upscale)",
        ("inpainting-fill", "0") => "fill",
        ("inpainting-fill", "1") => "original",
        ("inpainting-fill", "2") => "latent noise",
        ("inpainting-fill", "3") => "latent nothing",
        _ => v,
    }
}

/// The fields with these ids, in this order.
#[component]
pub fn FieldGroup(ids: &'static [&'static str]) -> impl IntoView {
    fields::group(ids)
        .into_iter()
        .map(|f| view! { <FieldInput field=f/> })
        .collect_view()
}

/// Every invalid value of the form, listed under it.
#[component]
pub fn FormProblems() -> impl IntoView {
    let st = use_state();
    let problems = move || fields::problems(&st.form.get(), &st.unparsed.get());
    view! {
        <ul class="problems" id="problems">
            {move || problems().into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}
        </ul>
    }
}
