//! Which picked files are what, by A1111's folder layout and names: checkpoints with their
//! sidecars (`<stem>.yaml`, `<stem>.vae.{pt,ckpt,safetensors}`), `hypernetworks/`,
//! `embeddings/`, `Lora/` then `LyCORIS/`, `VAE-approx/`; and the CLI's scan order for a
//! folder (each folder's files by name, then its subfolders by name). Works on paths
//! (`webkitRelativePath`, or the bare name of a single file), so it is tested natively.

use std::cmp::Ordering;

/// The files picked in an `<input type=file>` (in the order the browser gives them).
pub fn picked_files(input: &web_sys::HtmlInputElement) -> Vec<web_sys::File> {
    let list = input.files();
    (0..list.as_ref().map_or(0, |l| l.length()))
        .filter_map(|i| list.as_ref().and_then(|l| l.get(i)))
        .collect()
}

/// A picked file's path inside its picked folder (`webkitRelativePath`), or its name.
pub fn picked_path(f: &web_sys::File) -> String {
    js_sys::Reflect::get(f, &"webkitRelativePath".into())
        .ok()
        .and_then(|v| v.as_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| f.name())
}

/// A checkpoint found among `paths`, as indices into them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundModel {
    /// What the model list shows: the path below `Stable-diffusion/` (or the file name).
    pub label: String,
    pub checkpoint: usize,
    pub yaml: Option<usize>,
    pub vae: Option<usize>,
}

fn lower(p: &str) -> String {
    p.to_ascii_lowercase()
}

fn has_ext(p: &str, exts: &[&str]) -> bool {
    let l = lower(p);
    exts.iter().any(|e| l.ends_with(&format!(".{e}")))
}

/// The folder names on `p`'s way (not the file name).
fn dirs(p: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = p.split('/').collect();
    parts.pop();
    parts
}

fn under(p: &str, folder: &str) -> bool {
    dirs(p).iter().any(|d| d.eq_ignore_ascii_case(folder))
}

const OTHER_FOLDERS: [&str; 9] = [
    "VAE",
    "VAE-approx",
    "hypernetworks",
    "Lora",
    "LyCORIS",
    "embeddings",
    "ESRGAN",
    "RealESRGAN",
    "SwinIR",
];

/// The checkpoints among `paths` with their sidecars, in the CLI's scan order (the browser
/// hands a folder's files over in no fixed order).
pub fn models(paths: &[String]) -> Vec<FoundModel> {
    let find = |want: &str| paths.iter().position(|p| p == want);
    let mut out = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        if !has_ext(p, &["ckpt", "safetensors"]) || lower(p).contains(".vae.") {
            continue;
        }
        if !under(p, "Stable-diffusion") && OTHER_FOLDERS.iter().any(|f| under(p, f)) {
            continue;
        }
        let stem = &p[..p.rfind('.').unwrap_or(p.len())];
        let label = match p.find("Stable-diffusion/") {
            Some(at) => p[at + "Stable-diffusion/".len()..].to_string(),
            None => p.rsplit('/').next().unwrap_or(p).to_string(),
        };
        out.push(FoundModel {
            label,
            checkpoint: i,
            yaml: find(&format!("{stem}.yaml")),
            vae: ["pt", "ckpt", "safetensors"]
                .iter()
                .find_map(|e| find(&format!("{stem}.vae.{e}"))),
        });
    }
    out.sort_by(|a, b| scan_order(&paths[a.checkpoint], &paths[b.checkpoint]));
    out
}

/// Indices of the files in `folder` (anywhere below it) with one of `exts`, in scan order.
pub fn in_folder(paths: &[String], folder: &str, exts: &[&str]) -> Vec<usize> {
    let mut found: Vec<usize> = (0..paths.len())
        .filter(|&i| under(&paths[i], folder) && has_ext(&paths[i], exts))
        .collect();
    found.sort_by(|&a, &b| scan_order(&paths[a], &paths[b]));
    found
}

/// LoRA files: `Lora/` then `LyCORIS/`, as A1111 reads them.
pub fn loras(paths: &[String]) -> Vec<usize> {
    let exts = ["safetensors", "pt", "ckpt"];
    let mut out = in_folder(paths, "Lora", &exts);
    out.extend(in_folder(paths, "LyCORIS", &exts));
    out
}

/// Upscaler models (`ESRGAN/`, `RealESRGAN/`, `SwinIR/`, in A1111's order) with the
/// folder each is in (it decides how the model is tiled).
pub fn upscalers(paths: &[String]) -> Vec<(usize, &'static str)> {
    let mut out = Vec::new();
    for folder in UPSCALER_FOLDERS {
        let mut found: Vec<usize> = (0..paths.len())
            .filter(|&i| {
                under(&paths[i], folder) && has_ext(&paths[i], &["pth", "pt", "safetensors"])
            })
            .collect();
        found.sort_by(|&a, &b| paths[a].cmp(&paths[b]));
        out.extend(found.into_iter().map(|i| (i, folder)));
    }
    out
}

/// The upscaler folders, in the order A1111 lists their models.
pub const UPSCALER_FOLDERS: [&str; 3] = ["ESRGAN", "RealESRGAN", "SwinIR"];

/// The folder a single picked upscaler file is taken from: SwinIR by its name, else ESRGAN
/// (the tiling of ESRGAN and Real-ESRGAN is the same).
pub fn upscaler_folder_of(name: &str) -> &'static str {
    if lower(name).contains("swinir") {
        "SwinIR"
    } else {
        "ESRGAN"
    }
}

/// `VAE-approx/` files the page uses: TAESD's halves and the VAE-approx network.
pub fn vae_approx(paths: &[String]) -> Vec<usize> {
    (0..paths.len())
        .filter(|&i| {
            let name = lower(paths[i].rsplit('/').next().unwrap_or(""));
            under(&paths[i], "VAE-approx")
                && (name.starts_with("taesd_decoder.")
                    || name.starts_with("taesd_encoder.")
                    || name == "model.pt")
        })
        .collect()
}

/// The CLI's order of a folder walk: at each level the files (by name) before the
/// subfolders (by name).
pub fn scan_order(a: &str, b: &str) -> Ordering {
    let (pa, pb): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
    for i in 0.. {
        let (last_a, last_b) = (i == pa.len() - 1, i == pb.len() - 1);
        if pa[i] != pb[i] {
            if last_a != last_b {
                return if last_a {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
            }
            return pa[i].cmp(pb[i]);
        }
        if last_a || last_b {
            return last_b.cmp(&last_a);
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn checkpoints_with_sidecars_outside_other_folders() {
        let p = paths(&[
            "models/Stable-diffusion/sub/b.safetensors",
            "models/Stable-diffusion/a.ckpt",
            "models/Stable-diffusion/a.yaml",
            "models/Stable-diffusion/a.vae.pt",
            "models/Lora/l.safetensors",
            "models/VAE/v.ckpt",
        ]);
        let m = models(&p);
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].label.as_str(), m[0].yaml, m[0].vae),
            ("a.ckpt", Some(2), Some(3))
        );
        assert_eq!(m[1].label, "sub/b.safetensors");
        assert_eq!(models(&paths(&["x.safetensors"]))[0].label, "x.safetensors");
    }

    #[test]
    fn folders_in_the_cli_scan_order() {
        let p = paths(&[
            "m/embeddings/z/a.pt",
            "m/embeddings/b.pt",
            "m/embeddings/a.bin",
            "m/LyCORIS/c.safetensors",
            "m/Lora/d.safetensors",
            "m/VAE-approx/model.pt",
            "m/VAE-approx/taesd_decoder.pth",
            "m/VAE-approx/other.pt",
        ]);
        assert_eq!(
            in_folder(&p, "embeddings", &["pt", "bin", "safetensors"]),
            vec![2, 1, 0]
        );
        assert_eq!(loras(&p), vec![4, 3]);
        assert_eq!(vae_approx(&p), vec![5, 6]);
        let u = paths(&[
            "m/SwinIR/s.pth",
            "m/ESRGAN/b.pth",
            "m/ESRGAN/a.pth",
            "m/RealESRGAN/r.pth",
            "m/ESRGAN/x.txt",
        ]);
        assert_eq!(
            upscalers(&u),
            vec![
                (2, "ESRGAN"),
                (1, "ESRGAN"),
                (3, "RealESRGAN"),
                (0, "SwinIR")
            ]
        );
        assert_eq!(
            upscaler_folder_of("003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth"),
            "SwinIR"
        );
    }
}
