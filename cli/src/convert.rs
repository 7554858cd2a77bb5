//! `easel convert IN OUT`: between `.ckpt` and `.safetensors` (either way, or the same
//! format to change precision), metadata carried over where it maps, streamed.

use crate::hash::{bar_callback, byte_bar};
use crate::prune::{print_summary, rewrite_options, PrecisionArgs};
use clap::Args;
use easel_core::convert::convert_checkpoint;
use easel_core::Result;
use std::path::PathBuf;

#[derive(Args, Clone)]
pub struct ConvertArgs {
    /// Input (.ckpt/.pt or .safetensors).
    pub input: PathBuf,
    /// Output; the format follows its extension unless --format is given.
    pub output: PathBuf,
    #[command(flatten)]
    pub precision: PrecisionArgs,
    /// Output format: ckpt or safetensors.
    #[arg(long)]
    pub format: Option<String>,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: ConvertArgs) -> Result<()> {
    let options = rewrite_options(a.format.as_deref(), &a.precision, a.force)?;
    let bar = byte_bar("convert");
    let result = convert_checkpoint(&a.input, &a.output, &options, &mut bar_callback(&bar));
    bar.finish_and_clear();
    print_summary(&a.output, &result?);
    Ok(())
}
