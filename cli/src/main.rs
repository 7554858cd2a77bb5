//! `easel`: the command-line front end. It only wires core and plugins together; every
//! format, network and sampler lives in the library crates.

mod bench;
mod generate;
mod info;
mod models;
mod progress;
mod session;
mod tokenize;

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
    /// Print the A1111 infotext (generation parameters) stored in PNGs.
    Info(info::InfoArgs),
    /// Show a prompt's CLIP tokens, emphasis weights and chunk count.
    Tokenize(tokenize::TokenizeArgs),
    /// List the registered samplers and schedule types.
    Samplers,
    /// Time one UNet step with CFG on full-size SD1.5 weights (random) and print figures.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(a) => generate::run(a),
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
        Command::Bench(a) => bench::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
