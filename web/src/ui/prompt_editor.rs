//! The prompt and negative prompt, with A1111's token counter under each and its keys:
//! Ctrl+Enter generates (handled page-wide in [`super::app`]), Ctrl+Up/Down change the
//! attention of the selection or the word at the cursor ([`super::attention_edit`]).

use super::attention_edit::edit_attention;
use super::fields;
use super::state::{use_state, AppState};
use easel_core::text::extra_networks::parse_extra_networks;
use easel_core::text::ui_token_count;
use leptos::html::Textarea;
use leptos::prelude::*;
use serde_json::Value;
use web_sys::KeyboardEvent;

/// A1111's counter text for a prompt (`12/75`), or the reason it cannot count.
pub fn counter_text(prompt: &str, steps: usize) -> String {
    let (text, _) = parse_extra_networks(prompt);
    match ui_token_count(&text, steps.max(1)) {
        Ok(c) => format!("{}/{}", c.token_count, c.capacity),
        Err(e) => e.to_string(),
    }
}

#[component]
fn PromptBox(id: &'static str, key: &'static str, label: &'static str, rows: u32) -> impl IntoView {
    let st: AppState = use_state();
    let area = NodeRef::<Textarea>::new();
    let text = move || {
        st.form
            .with(|f| fields::get(f, key).as_str().unwrap_or("").to_string())
    };
    let steps = move || {
        st.form
            .with(|f| fields::get(f, "steps").as_u64().unwrap_or(20) as usize)
    };
    let on_key = move |ev: KeyboardEvent| {
        if !(ev.ctrl_key() || ev.meta_key())
            || !matches!(ev.key().as_str(), "ArrowUp" | "ArrowDown")
        {
            return;
        }
        let Some(el) = area.get_untracked() else {
            return;
        };
        let el: web_sys::HtmlTextAreaElement = el;
        let (s, e) = (
            el.selection_start().ok().flatten().unwrap_or(0) as usize,
            el.selection_end().ok().flatten().unwrap_or(0) as usize,
        );
        ev.prevent_default();
        if let Some((new, s, e)) = edit_attention(&el.value(), s, e, ev.key() == "ArrowUp") {
            el.set_value(&new);
            let _ = el.set_selection_range(s as u32, e as u32);
            st.form.update(|f| fields::set(f, key, Value::from(new)));
        }
    };
    view! {
        <label class="wide prompt" title="Ctrl+Enter generates; Ctrl+Up/Down change the attention of the selection or word">
            <span>{label}<span class="tokens" id=format!("{id}-tokens")>{move || counter_text(&text(), steps())}</span></span>
            <textarea id=id rows=rows node_ref=area prop:value=text
                on:input=move |ev| st.form.update(|f| fields::set(f, key, Value::from(event_target_value(&ev))))
                on:keydown=on_key></textarea>
        </label>
    }
}

#[component]
pub fn PromptEditor() -> impl IntoView {
    view! {
        <PromptBox id="prompt" key="prompt" label="Prompt" rows=3/>
        <PromptBox id="negative" key="negative_prompt" label="Negative prompt" rows=2/>
    }
}

#[cfg(test)]
mod tests {
    use super::counter_text;

    /// A1111 counts the prompt without its extra-network tags: `a red cube` is 3 tokens.
    #[test]
    fn tags_are_not_counted() {
        assert_eq!(counter_text("a red cube <lora:x:0.5>", 20), "3/75");
        assert_eq!(counter_text("", 20), "0/75");
    }
}
