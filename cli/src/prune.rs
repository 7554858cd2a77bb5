//! `easel prune IN OUT`: a full training checkpoint to an inference one — the EMA UNet
//! under the normal keys (or the training UNet with `--no-ema`), optionally fp16/bf16,
//! as `.ckpt` or `.safetensors`, streamed with bounded memory.

use crate::hash::{bar_callback, byte_bar};
use clap::Args;
use easel_core::convert::{
    prune_checkpoint, EmaMode, OutputFormat, Precision, RewriteOptions, RewriteReport,
};
use easel_core::Result;
use std::path::PathBuf;

#[derive(Args, Clone)]
pub struct PruneArgs {
    /// Input checkpoint (.ckpt/.pt, zip or legacy, or .safetensors).
    pub input: PathBuf,
    /// Output file; the format follows its extension unless --format is given.
    pub output: PathBuf,
    /// Keep the training UNet instead of the EMA weights (all `model_ema.*` are dropped).
    #[arg(long = "no-ema")]
    pub no_ema: bool,
    #[command(flatten)]
    pub precision: PrecisionArgs,
    /// Output format: ckpt or safetensors.
    #[arg(long)]
    pub format: Option<String>,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `--fp16` / `--bf16` / `--fp32`: the dtype floating tensors are written in.
#[derive(Args, Clone, Default)]
#[group(multiple = false)]
pub struct PrecisionArgs {
    /// Write floating tensors as float16 (integer buffers are kept).
    #[arg(long)]
    pub fp16: bool,
    /// Write floating tensors as bfloat16.
    #[arg(long)]
    pub bf16: bool,
    /// Write floating tensors as float32.
    #[arg(long)]
    pub fp32: bool,
}

impl PrecisionArgs {
    pub fn precision(&self) -> Precision {
        match (self.fp16, self.bf16, self.fp32) {
            (true, _, _) => Precision::F16,
            (_, true, _) => Precision::BF16,
            (_, _, true) => Precision::F32,
            _ => Precision::Keep,
        }
    }
}

pub(crate) fn rewrite_options(
    format: Option<&str>,
    precision: &PrecisionArgs,
    force: bool,
) -> Result<RewriteOptions> {
    Ok(RewriteOptions {
        format: format.map(OutputFormat::parse).transpose()?,
        precision: precision.precision(),
        overwrite: force,
    })
}

pub(crate) fn print_summary(output: &std::path::Path, r: &RewriteReport) {
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "wrote {} ({:?}): {} tensors, {:.1} MiB (input {:.1} MiB){}{}",
        output.display(),
        r.format,
        r.tensors,
        mb(r.output_bytes),
        mb(r.input_bytes),
        if r.dropped > 0 {
            format!(", {} dropped", r.dropped)
        } else {
            String::new()
        },
        if r.converted > 0 {
            format!(", {} converted", r.converted)
        } else {
            String::new()
        },
    );
}

pub fn run(a: PruneArgs) -> Result<()> {
    let options = rewrite_options(a.format.as_deref(), &a.precision, a.force)?;
    let mode = if a.no_ema {
        EmaMode::NoEma
    } else {
        EmaMode::EmaOnly
    };
    let bar = byte_bar("prune");
    let result = prune_checkpoint(&a.input, &a.output, mode, &options, &mut bar_callback(&bar));
    bar.finish_and_clear();
    let r = result?;
    if mode == EmaMode::EmaOnly && !r.ema_found {
        eprintln!(
            "note: {} has no EMA weights; its UNet was kept as it is",
            a.input.display()
        );
    } else if mode == EmaMode::EmaOnly {
        println!("{} UNet tensors taken from their EMA copies", r.ema_used);
    }
    print_summary(&a.output, &r);
    Ok(())
}
