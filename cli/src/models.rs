//! `easel models`: what a models folder holds — checkpoints with hashes and the config and
//! VAE each will use, extra VAEs, hypernetworks, LoRAs with A1111's short hash, upscalers
//! (by A1111 name, with the architecture read off each file's tensors), and the
//! textual-inversion embeddings beside the folder (vectors, width and `TI hashes` hash).

use crate::generate::models_folder;
use clap::Args;
use easel_core::embeddings::{embedding_files, load_embedding_file, Embedding};
use easel_core::model::files::files_with_ext;
use easel_core::model::{list_folder, UnetWeights};
use easel_core::Result;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ModelsArgs {
    /// An A1111-style models folder (default: ./models, else the bundled tiny model).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Textual-inversion embeddings folder [default: `embeddings/` beside the models folder].
    #[arg(long = "embeddings-dir")]
    pub embeddings_dir: Option<PathBuf>,
}

/// One embedding file as listed: what it holds, or why it cannot be read.
struct EmbeddingRow {
    path: PathBuf,
    embedding: std::result::Result<Option<Embedding>, String>,
}

fn embedding_rows(dir: &Path) -> Vec<EmbeddingRow> {
    embedding_files(dir)
        .into_iter()
        .map(|path| EmbeddingRow {
            embedding: load_embedding_file(&path).map_err(|e| e.to_string()),
            path,
        })
        .filter(|r| !matches!(r.embedding, Ok(None)))
        .collect()
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

pub fn run(a: ModelsArgs) -> Result<()> {
    let (models, _) = models_folder(&a.models, "");
    let checkpoints = list_folder(&models);
    let vaes = files_with_ext(&models.join("VAE"), &["pt", "ckpt", "safetensors"]);
    let hypernets = files_with_ext(&models.join("hypernetworks"), &["pt"]);
    let loras: Vec<(easel_lora::LoraEntry, String)> = easel_lora::list_loras(&models)
        .into_iter()
        .map(|e| {
            let h = e
                .short_hash()
                .unwrap_or_else(|err| format!("unreadable: {err}"));
            (e, h)
        })
        .collect();
    let embeddings_dir = a
        .embeddings_dir
        .clone()
        .unwrap_or_else(|| models.parent().unwrap_or(Path::new(".")).join("embeddings"));
    let embeddings = embedding_rows(&embeddings_dir);
    let upscalers: Vec<(easel_upscalers::UpscalerEntry, String)> =
        easel_upscalers::list_upscalers(&models)
            .into_iter()
            .map(|e| {
                let arch = match easel_upscalers::architecture_of(&e.path) {
                    Ok(a) => a.describe(),
                    Err(err) => format!("unreadable: {err}"),
                };
                (e, arch)
            })
            .collect();
    if a.json {
        let cks: Vec<serde_json::Value> = checkpoints
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "path": c.path.display().to_string(),
                    "hash": c.legacy_hash,
                    "size": c.size,
                    "config": c.config.as_ref().map(|p| p.display().to_string()),
                    "vae": c.vae.as_ref().map(|p| p.display().to_string()),
                    "unet": format!("{:?}", c.unet),
                    "error": c.error,
                })
            })
            .collect();
        let names = |v: &[PathBuf]| {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        };
        println!(
            "{}",
            serde_json::json!({ "folder": models.display().to_string(), "checkpoints": cks, "vae": names(&vaes), "hypernetworks": names(&hypernets),
                "loras": loras.iter().map(|(e, h)| serde_json::json!({"name": e.name, "alias": e.alias, "path": e.path.display().to_string(), "hash": h})).collect::<Vec<_>>(),
                "upscalers": upscalers.iter().map(|(e, arch)| serde_json::json!({ "name": e.name, "path": e.path.display().to_string(), "folder": e.folder.dir_name(), "architecture": arch })).collect::<Vec<_>>(),
                "embeddings_folder": embeddings_dir.display().to_string(),
                "embeddings": embeddings.iter().map(|r| match &r.embedding {
                    Ok(Some(e)) => serde_json::json!({ "name": e.name, "path": r.path.display().to_string(), "vectors": e.vectors, "width": e.width, "hash": e.short_hash(), "step": e.step, "sd_checkpoint_name": e.sd_checkpoint_name }),
                    _ => serde_json::json!({ "path": r.path.display().to_string(), "error": r.embedding.as_ref().err() }),
                }).collect::<Vec<_>>() })
        );
        return Ok(());
    }
    println!("{}", models.display());
    println!("checkpoints (Stable-diffusion/):");
    if checkpoints.is_empty() {
        println!("  none");
    }
    let sd = models.join("Stable-diffusion");
    for c in &checkpoints {
        println!(
            "  {} [{}]  {:.2} GB  {}",
            c.name,
            c.legacy_hash,
            c.size as f64 / 1e9,
            rel(&sd, &c.path)
        );
        if let Some(e) = &c.error {
            println!("    unreadable: {e}");
            continue;
        }
        println!(
            "    config: {}",
            c.config
                .as_ref()
                .map(|p| rel(&sd, p))
                .unwrap_or_else(|| "inferred from tensor shapes".into())
        );
        println!(
            "    VAE:    {}",
            c.vae
                .as_ref()
                .map(|p| rel(&sd, p))
                .unwrap_or_else(|| "the checkpoint's own".into())
        );
        match c.unet {
            UnetWeights::EmaAndTraining => println!("    weights: EMA + training UNet (a full training checkpoint; `easel prune` makes the inference one)"),
            UnetWeights::EmaOnly => println!("    weights: EMA UNet only"),
            UnetWeights::None => println!("    weights: no UNet found"),
            UnetWeights::Inference => {}
        }
    }
    println!(
        "VAEs (VAE/): {}",
        if vaes.is_empty() {
            "none".to_string()
        } else {
            vaes.iter()
                .map(|p| rel(&models.join("VAE"), p))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    println!(
        "hypernetworks (hypernetworks/): {}",
        if hypernets.is_empty() {
            "none".to_string()
        } else {
            hypernets
                .iter()
                .map(|p| rel(&models.join("hypernetworks"), p))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    println!(
        "LoRAs (Lora/, LyCORIS/):{}",
        if loras.is_empty() { " none" } else { "" }
    );
    for (e, h) in &loras {
        let alias = if e.alias != e.name {
            format!(" (alias {})", e.alias)
        } else {
            String::new()
        };
        println!("  {} [{h}]{alias}  {}", e.name, rel(&models, &e.path));
    }
    println!("upscalers (ESRGAN/, RealESRGAN/, SwinIR/):");
    if upscalers.is_empty() {
        println!("  none");
    }
    for (e, arch) in &upscalers {
        println!("  {}  {}  ({arch})", e.name, rel(&models, &e.path));
    }
    println!("embeddings ({}):", embeddings_dir.display());
    if embeddings.is_empty() {
        println!("  none");
    }
    for r in &embeddings {
        match &r.embedding {
            Ok(Some(e)) => println!(
                "  {} [{}]  {} vector(s) of {}  {}",
                e.name,
                e.short_hash(),
                e.vectors,
                e.width,
                rel(&embeddings_dir, &r.path)
            ),
            _ => println!(
                "  {}  unreadable: {}",
                rel(&embeddings_dir, &r.path),
                r.embedding.as_ref().err().map_or("", String::as_str)
            ),
        }
    }
    Ok(())
}
