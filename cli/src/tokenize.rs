//! `easel tokenize`: what the text encoder will see for a prompt — token ids, their text,
//! emphasis weights, and the chunk count A1111 shows as `N/75`.

use clap::Args;
use easel_core::text::{token_text, tokenize_prompt, ChunkOptions, BOS, EOS};
use easel_core::Result;

#[derive(Args)]
pub struct TokenizeArgs {
    /// The prompt (A1111 syntax).
    pub prompt: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: TokenizeArgs) -> Result<()> {
    let t = tokenize_prompt(&a.prompt, ChunkOptions::default())?;
    if a.json {
        let chunks: Vec<serde_json::Value> = t
            .chunks
            .iter()
            .map(|c| serde_json::json!({ "tokens": c.tokens.to_vec(), "multipliers": c.multipliers.to_vec() }))
            .collect();
        let out = serde_json::json!({
            "token_count": t.token_count,
            "token_capacity": t.token_capacity(),
            "chunks": chunks,
        });
        println!("{out}");
        return Ok(());
    }
    println!(
        "{}/{} tokens, {} chunk(s)",
        t.token_count,
        t.token_capacity(),
        t.chunks.len()
    );
    for (ci, chunk) in t.chunks.iter().enumerate() {
        println!("chunk {}:", ci + 1);
        for (&id, &w) in chunk.tokens.iter().zip(&chunk.multipliers) {
            if id == BOS || id == EOS {
                continue;
            }
            println!("  {id:>6}  {:<20} {w}", token_text(id).unwrap_or("?"));
        }
    }
    Ok(())
}
