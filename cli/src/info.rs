//! `easel info IMG.png`: the A1111 infotext of an image, parsed.

use clap::Args;
use easel_core::infotext::{read_parameters, Infotext};
use easel_core::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
pub struct InfoArgs {
    /// PNG files written by Easel, A1111 or another tool that stores `parameters`.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Print JSON (prompt, negative_prompt, parameters as A1111's paste fields).
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: InfoArgs) -> Result<()> {
    for path in &a.images {
        let text = read_parameters(path)?.ok_or_else(|| {
            Error::Invalid(format!(
                "{}: no A1111 `parameters` text in this PNG",
                path.display()
            ))
        })?;
        let info = Infotext::parse(&text);
        if a.json {
            let params: serde_json::Map<String, serde_json::Value> = info
                .fields()
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            let out = serde_json::json!({
                "file": path.display().to_string(),
                "prompt": info.prompt,
                "negative_prompt": info.negative_prompt,
                "parameters": params,
            });
            println!("{out}");
        } else {
            if a.images.len() > 1 {
                println!("== {}", path.display());
            }
            println!("Prompt: {}", info.prompt);
            if !info.negative_prompt.is_empty() {
                println!("Negative prompt: {}", info.negative_prompt);
            }
            for (k, v) in &info.params {
                println!("{k}: {v}");
            }
        }
    }
    Ok(())
}
