//! `easel tokenize`: what the text encoder will see for a prompt — token ids, their text,
//! emphasis weights, the chunk count of the prompt as written, the `N/75` counter A1111's UI
//! shows (largest over `AND` parts and prompt-editing steps), and with `--steps` the prompt
//! schedule of every `AND` part.

use clap::Args;
use easel_core::embeddings::{
    load_embeddings_folder, text_encoder_width, EmbeddingDatabase, SD1_WIDTH,
};
use easel_core::model::resolve_checkpoint;
use easel_core::text::{
    part_schedules, strip_comments, token_text, tokenize_prompt_with_embeddings, ui_token_count,
    ChunkOptions, PartSchedule, ScheduleOptions, BOS, EOS,
};
use easel_core::{Error, Result};
use easel_hypernetwork::parse_extra_networks;
use std::path::{Path, PathBuf};

/// A1111's default "Sampling steps", which its counter uses until the user changes them.
const DEFAULT_UI_STEPS: usize = 20;

#[derive(Args)]
pub struct TokenizeArgs {
    /// The prompt (A1111 syntax).
    pub prompt: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Sampling steps: print the prompt schedule (`[a:b:when]`, `[a|b]`) of every `AND` part
    /// and count tokens over it as A1111's UI does (default for the count: 20).
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,
    /// Hires-fix steps: also print the schedule of the hires pass (needs --steps).
    #[arg(long, value_name = "M", requires = "steps")]
    pub hr_steps: Option<usize>,
    /// An A1111-style models folder: its `embeddings/` neighbour's textual-inversion
    /// embeddings are matched in the prompt, for the width of `--model`'s text encoder
    /// (default: ./models when it exists; without a folder, no embeddings).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Checkpoint whose text encoder width selects the usable embeddings [default: the first].
    #[arg(long)]
    pub model: Option<String>,
    /// Textual-inversion embeddings folder [default: `embeddings/` beside the models folder].
    #[arg(long = "embeddings-dir")]
    pub embeddings_dir: Option<PathBuf>,
}

/// The embeddings the prompt can use, as `easel generate` would load them, or `None`
/// without a models or embeddings folder. Skipped files are reported on stderr.
fn embeddings(a: &TokenizeArgs) -> Option<EmbeddingDatabase> {
    let models = a.models.clone().or_else(|| {
        Path::new("models/Stable-diffusion")
            .is_dir()
            .then(|| "models".into())
    });
    let dir = a.embeddings_dir.clone().or_else(|| {
        let m = models.as_ref()?;
        Some(m.parent().unwrap_or(Path::new(".")).join("embeddings"))
    })?;
    let width = models
        .as_ref()
        .and_then(|m| resolve_checkpoint(m, a.model.as_deref().unwrap_or("")).ok())
        .and_then(|c| text_encoder_width(&c))
        .unwrap_or(SD1_WIDTH);
    let db = load_embeddings_folder(&dir, width);
    for w in db.warnings() {
        eprintln!("warning: {w}");
    }
    Some(db)
}

fn schedules_json(parts: &[PartSchedule]) -> serde_json::Value {
    parts
        .iter()
        .map(|part| {
            let steps: Vec<serde_json::Value> = part
                .schedule
                .iter()
                .map(|e| serde_json::json!({ "end_at_step": e.end_at_step, "text": e.text }))
                .collect();
            serde_json::json!({ "text": part.text, "weight": part.weight, "schedule": steps })
        })
        .collect()
}

fn print_schedules(title: &str, parts: &[PartSchedule]) {
    println!("{title}:");
    for (i, part) in parts.iter().enumerate() {
        if parts.len() > 1 {
            println!("  AND part {} (weight {}):", i + 1, part.weight);
        }
        let mut first = 1;
        for entry in &part.schedule {
            let range = if first >= entry.end_at_step {
                format!("step {}", entry.end_at_step)
            } else {
                format!("steps {first}-{}", entry.end_at_step)
            };
            println!("    {range:<14} {}", entry.text);
            first = entry.end_at_step + 1;
        }
    }
}

pub fn run(a: TokenizeArgs) -> Result<()> {
    for (flag, value) in [("--steps", a.steps), ("--hr-steps", a.hr_steps)] {
        if value == Some(0) {
            return Err(Error::Invalid(format!("{flag} must be at least 1")));
        }
    }
    let db = embeddings(&a);
    let t = tokenize_prompt_with_embeddings(&a.prompt, ChunkOptions::default(), db.as_ref())?;
    // What A1111 encodes: comments and extra-network tags gone, then AND parts and schedules.
    let (encoded_prompt, _tags) = parse_extra_networks(&strip_comments(&a.prompt));
    let ui_steps = a.steps.unwrap_or(DEFAULT_UI_STEPS);
    let counter = ui_token_count(&encoded_prompt, ui_steps)?;
    let schedules = a
        .steps
        .map(|steps| part_schedules(&encoded_prompt, steps, &ScheduleOptions::default()));
    let hires = a.steps.zip(a.hr_steps).map(|(steps, hr)| {
        let options = ScheduleOptions {
            hires_steps: Some(hr),
            ..ScheduleOptions::default()
        };
        part_schedules(&encoded_prompt, steps, &options)
    });
    if a.json {
        let chunks: Vec<serde_json::Value> = t
            .chunks
            .iter()
            .map(|c| {
                // Where each embedding's vectors start among the chunk's 77 tokens (BOS is
                // 0) and its name.
                let fixes: Vec<serde_json::Value> = c
                    .fixes
                    .iter()
                    .map(|f| serde_json::json!([f.position, f.embedding.name]))
                    .collect();
                serde_json::json!({ "tokens": c.tokens.to_vec(), "multipliers": c.multipliers.to_vec(), "fixes": fixes })
            })
            .collect();
        let mut out = serde_json::json!({
            "token_count": t.token_count,
            "token_capacity": t.token_capacity(),
            "ui_token_count": counter.token_count,
            "ui_token_capacity": counter.capacity,
            "ui_steps": ui_steps,
            "chunks": chunks,
        });
        if let Some(parts) = &schedules {
            out["schedule"] = schedules_json(parts);
        }
        if let Some(parts) = &hires {
            out["hires_schedule"] = schedules_json(parts);
        }
        println!("{out}");
        return Ok(());
    }
    println!(
        "{}/{} tokens, {} chunk(s) (the prompt as written)",
        t.token_count,
        t.token_capacity(),
        t.chunks.len()
    );
    println!(
        "{}/{} in A1111's counter ({ui_steps} steps: largest AND part / scheduled prompt)",
        counter.token_count, counter.capacity
    );
    if let (Some(parts), Some(steps)) = (&schedules, a.steps) {
        print_schedules(&format!("schedule ({steps} steps)"), parts);
    }
    if let (Some(parts), Some(hr)) = (&hires, a.hr_steps) {
        print_schedules(&format!("hires schedule ({hr} steps)"), parts);
    }
    for (ci, chunk) in t.chunks.iter().enumerate() {
        println!("chunk {}:", ci + 1);
        for (pos, (&id, &w)) in chunk.tokens.iter().zip(&chunk.multipliers).enumerate() {
            if id == BOS || id == EOS {
                continue;
            }
            // An embedding's vectors sit on placeholder tokens from its position on.
            let text = match chunk
                .fixes
                .iter()
                .find(|f| pos >= f.position && pos < f.position + f.embedding.vectors)
            {
                Some(f) => format!("<{}>", f.embedding.name),
                None => token_text(id).unwrap_or("?").to_string(),
            };
            println!("  {id:>6}  {text:<20} {w}");
        }
    }
    Ok(())
}
