//! `easel`: the command-line front end. It only wires core and plugins together; every
//! format, network and sampler lives in the library crates.

mod allocator;
#[cfg(target_os = "linux")]
mod recycling_allocator;

/// Large blocks recycled (see [`allocator`]); the unit tests keep the system allocator.
#[cfg(all(target_os = "linux", not(test)))]
#[global_allocator]
static GLOBAL_ALLOCATOR: recycling_allocator::RecyclingAllocator =
    recycling_allocator::RecyclingAllocator::new();
mod bench;
mod compute;
mod convert;
mod generate;
mod grid;
mod hash;
mod import;
mod info;
mod interrupt;
mod models;
mod paste;
mod preview;
mod progress;
mod prune;
mod serve;
mod session;
mod tokenize;
mod upscale;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "easel",
    version,
    about = "Stable Diffusion 1.x on your own model files, A1111-compatible"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate images from a prompt (txt2img) and write PNGs with A1111 infotext.
    Generate(generate::GenerateArgs),
    /// List a models folder: checkpoints with hashes, the config and VAE each uses, VAEs, hypernetworks.
    Models(models::ModelsArgs),
    /// X/Y/Z plot: vary up to three settings over A1111-style values into one labelled grid PNG.
    Grid(grid::GridArgs),
    /// Print the A1111 infotext (generation parameters) stored in PNGs.
    Info(info::InfoArgs),
    /// Show a prompt's CLIP tokens, emphasis weights, token counts and prompt schedule.
    Tokenize(tokenize::TokenizeArgs),
    /// List the registered samplers and schedule types.
    Samplers,
    /// Prune a training checkpoint to its EMA (or training) UNet, optionally fp16/bf16.
    Prune(prune::PruneArgs),
    /// Convert between .ckpt and .safetensors, optionally changing precision.
    Convert(convert::ConvertArgs),
    /// Print a file's hashes (legacy, AutoV2, AutoV3, CRC32, sha256) or verify a sha256sum list.
    Hash(hash::HashArgs),
    /// Lay a release folder out as an A1111 models/ tree, verifying checksums.
    Import(import::ImportArgs),
    /// Serve A1111's HTTP API (/sdapi/v1, always on) and the web page (web/dist) on 127.0.0.1.
    Serve(serve::ServeArgs),
    /// Upscale an image with an ESRGAN/Real-ESRGAN/SwinIR model or Lanczos/Nearest (A1111's Extras).
    Upscale(upscale::UpscaleArgs),
    /// Time full-size SD1.5 (random weights): one CFG step, or a whole image with --pipeline.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    allocator::keep_freed_memory();
    interrupt::remove_temp_files_on_signal();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(a) => generate::run(a),
        Command::Grid(a) => grid::run(a),
        Command::Tokenize(a) => tokenize::run(a),
        Command::Info(a) => info::run(a),
        Command::Models(a) => models::run(a),
        Command::Samplers => {
            println!("samplers:");
            for label in generate::sampler_registry().labels() {
                println!("  {label}");
            }
            println!("schedule types (--schedule-type):");
            for label in generate::scheduler_registry().labels() {
                println!("  {label}");
            }
            Ok(())
        }
        Command::Upscale(a) => upscale::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Prune(a) => prune::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Hash(a) => hash::run(a),
        Command::Import(a) => import::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
