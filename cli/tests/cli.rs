//! The `easel` binary end to end on the bundled tiny model: what the README promises a
//! newcomer works, and bad input exits non-zero with a message naming the problem.

use easel_core::formats::open_tensor_store;
use easel_core::infotext::{read_parameters, Infotext};
use std::path::PathBuf;
use std::process::Command;

fn easel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_easel"))
}

/// A small PNG whose `parameters` chunk is `infotext`: an A1111 PNG as far as `--from` looks.
fn png_with_infotext(path: &std::path::Path, infotext: &str) {
    easel_core::infotext::write_png(path, 8, 8, &[0u8; 8 * 8 * 3], Some(infotext)).unwrap();
}

/// `easel generate --models MODELS ARGS -o OUT`, which must succeed; the PNG's bytes.
fn generate_png(models: &std::path::Path, args: &[&str], out: &std::path::Path) -> Vec<u8> {
    let o = easel()
        .args(["generate", "--models"])
        .arg(models)
        .args(args)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(out).unwrap()
}

#[test]
fn generate_writes_png_with_infotext_and_latents() {
    let dir_guard = easel_tests::scratch_dir("easel-cli-gen");
    let dir = dir_guard.path();
    let out = dir.join("fox.png");
    let latents = dir.join("lat.safetensors");
    let status = easel()
        .current_dir(dir) // no ./models here: the bundled tiny model is used
        .args([
            "generate",
            "--prompt",
            "a red fox, (snow:1.2)",
            "--negative",
            "blurry",
            "--steps",
            "2",
            "--seed",
            "7",
        ])
        .args([
            "--size",
            "64x48",
            "--sampler",
            "euler",
            "--batch-size",
            "2",
            "--clip-skip",
            "2",
            "--rng",
            "cpu",
        ])
        .arg("-o")
        .arg(&out)
        .arg("--save-latents")
        .arg(&latents)
        .status()
        .unwrap();
    assert!(status.success());
    let info = Infotext::parse(&read_parameters(&out).unwrap().unwrap());
    assert_eq!(info.prompt, "a red fox, (snow:1.2)");
    assert_eq!(info.negative_prompt, "blurry");
    assert_eq!(info.seed().unwrap(), Some(7));
    assert_eq!(info.size().unwrap(), Some((64, 48)));
    assert_eq!(info.sampler(), Some("Euler"));
    assert_eq!(info.model(), Some("tiny"));
    assert_eq!(info.clip_skip().unwrap(), 2);
    assert_eq!(info.rng(), "CPU");
    // The second image of the batch has seed + 1.
    let second = Infotext::parse(&read_parameters(dir.join("fox-2.png")).unwrap().unwrap());
    assert_eq!(second.seed().unwrap(), Some(8));
    let store = open_tensor_store(&latents).unwrap();
    assert_eq!(store.info("noise").unwrap().shape, vec![2, 4, 6, 8]);
    assert_eq!(store.info("latent").unwrap().shape, vec![2, 4, 6, 8]);
}

#[test]
fn bad_settings_fail_with_a_message() {
    for (args, msg) in [
        (
            vec!["--size", "100x64"],
            "width 100 is not a positive multiple of 8",
        ),
        (vec!["--size", "big"], "--size `big`"),
        (vec!["--sampler", "nope"], "unknown sampler `nope`"),
        (vec!["--rng", "dice"], "dice"),
        (
            vec!["--noise-device", "mps"],
            "unknown torch device `mps` (valid: cuda, cpu)",
        ),
        (
            vec!["--model", "missing-model"],
            "no checkpoint named `missing-model`",
        ),
        (vec!["--steps", "0"], "steps"),
        (vec!["--emphasis", "bogus"], "bogus"),
        (vec!["--backend", "tpu"], "unknown backend `tpu`"),
        (
            vec!["--precision", "fp8"],
            "unknown --precision `fp8` (valid: fp32, bf16, auto)",
        ),
        (
            vec!["--backend", "wgpu", "--precision", "bf16"],
            "--precision bf16 applies to the CPU backend",
        ),
        (
            vec!["--backend", "cuda", "--precision", "bf16"],
            "--precision bf16 applies to the CPU backend, not cuda",
        ),
        (vec!["--backend", "cuda:one"], "unknown backend `cuda:one`"),
        #[cfg(not(feature = "cuda"))]
        (
            vec!["--backend", "cuda:1"],
            "this easel was built without CUDA",
        ),
    ] {
        let out = easel()
            .args(["generate", "-o", "/nonexistent-dir/x.png"])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{args:?}: {err}");
    }
}

#[test]
fn tokenize_reports_tokens_and_chunks() {
    let out = easel()
        .args(["tokenize", "--json", "a photo of a cat"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["token_count"], 5);
    let tokens: Vec<u64> = v["chunks"][0]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect();
    // CLIP's ids for "a photo of a cat" (REFERENCE.md), after BOS.
    assert_eq!(&tokens[..7], &[49406, 320, 1125, 539, 320, 2368, 49407]);
}

#[test]
fn from_png_regenerates_the_same_image_and_flags_override() {
    let dir_guard = easel_tests::scratch_dir("easel-cli-from");
    let dir = dir_guard.path();
    let first = dir.join("a.png");
    let again = dir.join("b.png");
    let other = dir.join("c.png");
    let gen = |extra: &[&str], out: &PathBuf| {
        let status = easel()
            .current_dir(dir)
            .arg("generate")
            .args(extra)
            .arg("-o")
            .arg(out)
            .status()
            .unwrap();
        assert!(status.success(), "{extra:?}");
    };
    gen(
        &[
            "--prompt",
            "a cat",
            "--steps",
            "3",
            "--size",
            "64x64",
            "--seed",
            "11",
            "--sampler",
            "Euler a",
            "--ensd",
            "31337",
            "--clip-skip",
            "2",
        ],
        &first,
    );
    let from = first.to_str().unwrap();
    gen(&["--from", from], &again);
    gen(&["--from", from, "--seed", "12"], &other);
    // A non-default emphasis mode is recorded (prompt has brackets) and read back by --from.
    let nonorm = dir.join("d.png");
    gen(
        &[
            "--prompt",
            "a (cat:1.2)",
            "--steps",
            "2",
            "--size",
            "64x64",
            "--seed",
            "1",
            "--emphasis",
            "No norm",
        ],
        &nonorm,
    );
    let d = Infotext::parse(&read_parameters(&nonorm).unwrap().unwrap());
    assert_eq!(d.get("Emphasis"), Some("No norm"));
    let nonorm_again = dir.join("e.png");
    gen(&["--from", nonorm.to_str().unwrap()], &nonorm_again);
    let px0 = |p: &PathBuf| easel_core::infotext::read_png_rgb(p).unwrap().2;
    assert_eq!(px0(&nonorm), px0(&nonorm_again));
    let px = |p: &PathBuf| easel_core::infotext::read_png_rgb(p).unwrap().2;
    assert_eq!(px(&first), px(&again));
    assert_ne!(px(&first), px(&other));
    let a = Infotext::parse(&read_parameters(&first).unwrap().unwrap());
    let b = Infotext::parse(&read_parameters(&again).unwrap().unwrap());
    assert_eq!(a, b);
    let c = Infotext::parse(&read_parameters(&other).unwrap().unwrap());
    assert_eq!(c.seed().unwrap(), Some(12));
    assert_eq!(c.ensd().unwrap(), Some(31337));

    let out = easel().args(["info", "--json", from]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["prompt"], "a cat");
    assert_eq!(v["parameters"]["Seed"], "11");
    assert_eq!(v["parameters"]["Size-1"], "64");
    assert_eq!(v["parameters"]["Clip skip"], "2");
}

#[test]
fn info_on_a_png_without_parameters_is_an_error() {
    let dir_guard = easel_tests::scratch_dir("easel-cli-noinfo");
    let dir = dir_guard.path();
    let png = dir.join("plain.png");
    easel_core::infotext::write_png(&png, 2, 2, &[0u8; 12], None).unwrap();
    let out = easel().args(["info"]).arg(&png).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no A1111 `parameters`"));
}

#[test]
fn models_lists_checkpoints_with_hashes_sidecars_and_training_weights() {
    let out = easel()
        .args(["models", "--json"])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cks = v["checkpoints"].as_array().unwrap();
    let find = |name: &str| cks.iter().find(|c| c["name"] == name).unwrap().clone();
    // Hashes as Python's hashlib computed them (golden/hashes.json).
    let hashes: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/golden/hashes.json"
        ))
        .unwrap(),
    )
    .unwrap();
    for (file, name) in [
        ("tiny.ckpt", "tiny"),
        ("tiny-ema.ckpt", "tiny-ema"),
        ("tiny-st.safetensors", "tiny-st"),
    ] {
        assert_eq!(find(name)["hash"], hashes[file]["legacy"], "{name}");
    }
    assert!(find("tiny")["vae"]
        .as_str()
        .unwrap()
        .ends_with("tiny.vae.pt"));
    assert!(find("tiny")["config"]
        .as_str()
        .unwrap()
        .ends_with("tiny.yaml"));
    assert!(find("tiny-st")["config"].is_null());
    assert_eq!(find("tiny-ema")["unet"], "EmaAndTraining");
    assert_eq!(find("tiny")["unet"], "Inference");
    // LoRAs with A1111's short hash (hashlib in tests/fixtures/lora/make_lora_fixtures.py).
    let lora: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/lora/expected.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let loras = v["loras"].as_array().unwrap();
    for (name, facts) in lora["files"].as_object().unwrap() {
        let entry = loras.iter().find(|l| l["name"] == name.as_str()).unwrap();
        assert_eq!(entry["hash"], facts["short_hash"], "{name}");
    }
}

/// The promise, through the binary: `easel generate --sampler LABEL` gives the
/// reference latent for the same seed. Labels in both A1111 forms (`DPM++ 2M Karras` and
/// `--schedule-type`), against `golden/sampler_matrix.*` (A1111's flow in the reference
/// stack; the measured agreement is in tests/tests/sampler_matrix.rs). Tolerance 1e-4 of
/// the largest reference magnitude, as there.
#[test]
fn sampler_labels_reproduce_reference_latents() {
    let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/golden");
    let cases: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(format!("{golden}/sampler_matrix.json")).unwrap(),
    )
    .unwrap();
    let store = open_tensor_store(std::path::Path::new(&format!(
        "{golden}/sampler_matrix.safetensors"
    )))
    .unwrap();
    let dir_guard = easel_tests::scratch_dir("easel-cli-labels");
    let dir = dir_guard.path();
    // (label as typed, --schedule-type, golden case)
    for (label, schedule_type, case_name) in [
        ("DPM++ 2M Karras", None, "dpmpp_2m_karras"),
        ("Euler a", None, "euler_a_automatic"),
        ("k_lms", Some("Karras"), "lms_karras"),
        ("DPM++ SDE", Some("Automatic"), "dpmpp_sde_automatic_cuda"),
        ("DPM++ 2M SDE Karras", None, "dpmpp_2m_sde_karras_cuda"),
        ("DPM++ 3M SDE", None, "dpmpp_3m_sde_automatic_cuda"),
        (
            "DPM++ 2M SDE Heun Karras",
            None,
            "dpmpp_2m_sde_heun_karras_cpu",
        ),
        ("DPM2 a", None, "dpm2_a_automatic"),
        ("DDIM", None, "ddim_automatic"),
        ("UniPC", None, "unipc_automatic"),
    ] {
        let case = cases
            .iter()
            .find(|c| c["name"] == case_name)
            .unwrap_or_else(|| panic!("golden case {case_name}"));
        assert_eq!(case["batch_size"], 1);
        let latents = dir.join(format!("{case_name}.safetensors"));
        let mut cmd = easel();
        cmd.current_dir(dir).args([
            "generate",
            "--prompt",
            case["prompt"].as_str().unwrap(),
            "--negative",
            case["negative"].as_str().unwrap(),
            "--sampler",
            label,
            "--steps",
            &case["steps"].to_string(),
            "--cfg",
            &case["cfg"].to_string(),
            "--seed",
            &case["seed"].to_string(),
            "--size",
            &format!("{}x{}", case["width"], case["height"]),
            "--rng",
            case["rng"].as_str().unwrap(),
            "--noise-device",
            case["noise_device"].as_str().unwrap(),
        ]);
        if let Some(s) = schedule_type {
            cmd.args(["--schedule-type", s]);
        }
        let status = cmd
            .arg("-o")
            .arg(dir.join(format!("{case_name}.png")))
            .arg("--save-latents")
            .arg(&latents)
            .status()
            .unwrap();
        assert!(status.success(), "{label}");
        let got = open_tensor_store(&latents)
            .unwrap()
            .read_f32("latent")
            .unwrap();
        let want = store.read_f32(case_name).unwrap();
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            diff / scale < 1e-4,
            "{label}: relative difference {}",
            diff / scale
        );
    }
}

/// A1111's sampler parameters: written to the infotext only when not at the sampler's
/// default (`Eta` for ancestral samplers, `Sigma churn` for Euler), read back by `--from`,
/// and they change the image; an eta of 0 drops `ENSD` as A1111 does.
#[test]
fn sampler_parameters_round_trip_through_the_png() {
    let dir_guard = easel_tests::scratch_dir("easel-cli-params");
    let dir = dir_guard.path();
    let gen = |extra: &[&str], name: &str| {
        let out = dir.join(name);
        let status = easel()
            .current_dir(dir)
            .args(["generate", "--prompt", "a cat", "--steps", "3"])
            .args(["--size", "64x64", "--seed", "5", "--ensd", "31337"])
            .args(extra)
            .arg("-o")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success(), "{extra:?}");
        out
    };
    let info = |p: &PathBuf| Infotext::parse(&read_parameters(p).unwrap().unwrap());
    let px = |p: &PathBuf| easel_core::infotext::read_png_rgb(p).unwrap().2;

    let default = gen(&["--sampler", "Euler a"], "default.png");
    let tuned = gen(&["--sampler", "Euler a", "--eta", "0.5"], "tuned.png");
    let zero = gen(&["--sampler", "Euler a", "--eta", "0"], "zero.png");
    let churn = gen(&["--sampler", "Euler", "--s-churn", "2"], "churn.png");
    let again = gen(&["--from", tuned.to_str().unwrap()], "again.png");
    // Schedule settings: recorded as A1111's get_sigmas does (Beta always records α and β).
    let beta = gen(
        &["--sampler", "Euler", "--schedule-type", "Beta"],
        "beta.png",
    );
    let rho = gen(
        &["--sampler", "DPM++ 2M", "--rho", "5", "--sigma-max", "10"],
        "rho.png",
    );
    let rho_again = gen(&["--from", rho.to_str().unwrap()], "rho-again.png");
    let plain_rho = gen(&["--sampler", "Euler", "--rho", "5"], "plain-rho.png");

    assert_eq!(info(&default).get("Eta"), None);
    assert_eq!(info(&default).ensd().unwrap(), Some(31337));
    assert_eq!(info(&tuned).get("Eta"), Some("0.5"));
    assert_eq!(info(&zero).get("Eta"), Some("0"));
    assert_eq!(info(&zero).ensd().unwrap(), None);
    assert_eq!(info(&churn).get("Sigma churn"), Some("2"));
    assert_eq!(info(&churn).get("Eta"), None);
    assert_ne!(px(&default), px(&tuned));
    assert_eq!(info(&again), info(&tuned));
    assert_eq!(px(&again), px(&tuned));
    assert_eq!(info(&beta).get("Beta schedule alpha"), Some("0.6"));
    assert_eq!(info(&beta).get("Beta schedule beta"), Some("0.6"));
    assert_eq!(info(&rho).get("Schedule type"), Some("Karras"));
    assert_eq!(info(&rho).get("Schedule rho"), Some("5"));
    assert_eq!(info(&rho).get("Schedule max sigma"), Some("10"));
    assert_eq!(info(&rho_again), info(&rho));
    assert_eq!(px(&rho_again), px(&rho));
    // Euler's Automatic is the model's own spacing: no schedule takes ρ, none is recorded.
    assert_eq!(info(&plain_rho).get("Schedule rho"), None);

    let out = easel()
        .current_dir(dir)
        .args(["generate", "--eta=-1", "-o", "x.png"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--eta"), "{err}");
}

/// A grid over A1111's `Eta` axis: each cell's PNG records the eta it was made with
/// (DDIM reads the same `p.eta` as `Eta DDIM`), and the cells differ.
#[test]
fn grid_varies_eta_per_cell() {
    let dir_guard = easel_tests::scratch_dir("easel-cli-grid-eta");
    let dir = dir_guard.path();
    let status = easel()
        .current_dir(dir)
        .args([
            "grid", "--prompt", "a cat", "--steps", "2", "--size", "64x64",
        ])
        .args([
            "--seed",
            "3",
            "--x-type",
            "Sampler",
            "--x-values",
            "Euler a,DDIM",
        ])
        .args(["--y-type", "Eta", "--y-values", "0.25,1"])
        .args(["--save-cells", "cells", "-o", "grid.png"])
        .status()
        .unwrap();
    assert!(status.success());
    let mut etas = Vec::new();
    let mut pixels = Vec::new();
    for entry in std::fs::read_dir(dir.join("cells")).unwrap() {
        let path = entry.unwrap().path();
        let info = Infotext::parse(&read_parameters(&path).unwrap().unwrap());
        let key = if info.sampler() == Some("DDIM") {
            "Eta DDIM"
        } else {
            "Eta"
        };
        etas.push(format!("{}={}", key, info.get(key).unwrap_or("default")));
        pixels.push(easel_core::infotext::read_png_rgb(&path).unwrap().2);
    }
    etas.sort();
    assert_eq!(
        etas,
        ["Eta DDIM=0.25", "Eta DDIM=1", "Eta=0.25", "Eta=default"]
    );
    pixels.sort();
    pixels.dedup();
    assert_eq!(pixels.len(), 4);
}

/// `--embeddings-dir` replaces the `embeddings/` folder beside the models: the prompt's
/// embedding is found there (its `TI hashes` entry is the fixture script's sha256 prefix)
/// and not found when the folder is empty.
#[test]
fn embeddings_dir_chooses_the_embeddings_folder() {
    let dir_guard = easel_tests::scratch_dir("easel-cli-embdir");
    let dir = dir_guard.path();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("embeddings/expected.json")).unwrap(),
    )
    .unwrap();
    let want = expected["ti_hashes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["prompt"] == "a cat, tinyneg" && c["negative"] == "")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    let own = dir.join("own");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::copy(
        fixtures.join("embeddings/tinyneg.pt"),
        own.join("tinyneg.pt"),
    )
    .unwrap();
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for (folder, found) in [(&own, true), (&empty, false)] {
        let out = dir.join(format!("{found}.png"));
        let o = easel()
            .args(["generate", "--models"])
            .arg(fixtures.join("models"))
            .args([
                "--prompt",
                "a cat, tinyneg",
                "--steps",
                "1",
                "--size",
                "64x64",
            ])
            .arg("--embeddings-dir")
            .arg(folder)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = read_parameters(&out).unwrap().unwrap();
        let hashes = Infotext::parse(&text).get("TI hashes").map(str::to_string);
        if found {
            assert_eq!(hashes.as_deref(), Some(want.as_str()), "{text}");
        } else {
            assert_eq!(hashes, None, "{text}");
        }
    }
}

/// A1111 v1.x writes `Model hash: <AutoV2>` (the first 10 hex of the file's sha256) and
/// resolves it against the hashes it has computed, then by name (the shortest title that
/// contains it). A checkpoint it cannot find is a warning and the default one is used,
/// as A1111's paste keeps the current model; `--strict` makes that an error. The same for a
/// missing hypernetwork, an unknown sampler, and fields of features Easel lacks.
#[test]
fn from_resolves_autov2_hashes_and_warns_like_a1111s_paste() {
    let dir_guard = easel_tests::scratch_dir("easel-cli-autov2");
    let dir = dir_guard.path();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models");
    let sd = dir.join("models/Stable-diffusion");
    std::fs::create_dir_all(&sd).unwrap();
    // Two checkpoints; the renamed one sorts last, so the default is the other.
    for (from, to) in [("tiny-ema", "a-default"), ("tiny", "zz-renamed")] {
        for ext in ["ckpt", "yaml"] {
            let link = sd.join(format!("{to}.{ext}"));
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(
                fixtures.join(format!("Stable-diffusion/{from}.{ext}")),
                &link,
            )
            .unwrap();
        }
    }
    let sha = easel_core::model::sha256_file(&sd.join("zz-renamed.ckpt"), &mut |_, _| {}).unwrap();
    let cache = dir.join("cache");
    let png = dir.join("a1111.png");
    let text = format!(
        "a cat\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 64x64, \
         Model hash: {}, Model: some-other-name, Hypernet: not-installed, \
         Variation seed: 9, Variation seed strength: 0.2, Version: v1.10.1",
        &sha[..10]
    );
    png_with_infotext(&png, &text);
    let run = |extra: &[&str], out: &str| {
        easel()
            .env("XDG_CACHE_HOME", &cache)
            .args(["generate", "--models"])
            .arg(dir.join("models"))
            .arg("--from")
            .arg(&png)
            .args(extra)
            .arg("-o")
            .arg(dir.join(out))
            .output()
            .unwrap()
    };
    // Hash not known yet, name not installed: warnings, the default checkpoint.
    let o = run(&[], "default.png");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    for w in ["some-other-name", "not-installed", "Variation seed"] {
        assert!(err.contains(w), "no warning about {w}: {err}");
    }
    let model = |out: &str| {
        let t = read_parameters(dir.join(out)).unwrap().unwrap();
        Infotext::parse(&t).get("Model").unwrap().to_string()
    };
    assert_eq!(model("default.png"), "a-default");
    let o = run(&["--strict"], "strict.png");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--strict"));
    // Once `easel hash` has hashed the folder, the AutoV2 hash finds the renamed file.
    let o = easel()
        .env("XDG_CACHE_HOME", &cache)
        .arg("hash")
        .arg(sd.join("zz-renamed.ckpt"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&[], "hashed.png");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(model("hashed.png"), "zz-renamed");
    // A name contained in one title is enough (A1111's closest match).
    let text = "a cat\nSteps: 2, Sampler: Euler, Seed: 3, Size: 64x64, Model: renamed";
    png_with_infotext(&png, text);
    let o = run(&[], "substring.png");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(model("substring.png"), "zz-renamed");
}

/// A PNG of A1111 before v1.7.0-225 sampled over the fp16 schedule: `--from` turns on
/// "Downcast alphas_cumprod" for it (written back into the new PNG), which changes the
/// image; `--downcast-alphas-cumprod` on a fresh run gives that same image.
#[test]
fn old_version_pngs_sample_over_the_fp16_schedule() {
    let dir_guard = easel_tests::scratch_dir("easel-cli-downcast");
    let dir = dir_guard.path();
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models");
    let base = [
        "--prompt",
        "a cat",
        "--steps",
        "3",
        "--size",
        "64x64",
        "--seed",
        "5",
        "--sampler",
        "Euler",
    ];
    let gen = |extra: &[&str], out: &str| generate_png(&models, extra, &dir.join(out));
    let plain = gen(&base, "plain.png");
    let mut args = base.to_vec();
    args.push("--downcast-alphas-cumprod");
    let downcast = gen(&args, "downcast.png");
    let rgb = |png: &[u8]| easel_core::infotext::decode_png_rgb(png, "png").unwrap().2;
    assert!(
        rgb(&plain) != rgb(&downcast),
        "the fp16 schedule changed nothing"
    );
    let text = read_parameters(dir.join("downcast.png")).unwrap().unwrap();
    assert!(text.contains("Downcast alphas_cumprod: True"), "{text}");
    // An A1111 v1.6.0 PNG of the plain settings (no key: the version decides).
    let plain_text = read_parameters(dir.join("plain.png")).unwrap().unwrap();
    let old = dir.join("old.png");
    png_with_infotext(&old, &format!("{plain_text}, Version: v1.6.0"));
    let from_old = gen(&["--from", old.to_str().unwrap()], "from-old.png");
    assert!(
        rgb(&from_old) == rgb(&downcast),
        "v1.6.0 PNG did not regenerate over fp16"
    );
    let new = dir.join("new.png");
    png_with_infotext(&new, &format!("{plain_text}, Version: v1.10.1"));
    let from_new = gen(&["--from", new.to_str().unwrap()], "from-new.png");
    assert!(
        rgb(&from_new) == rgb(&plain),
        "v1.10.1 PNG changed the schedule"
    );
}

/// `easel models` lists the embeddings beside the folder with what the fixture script read
/// from each file: name, vector count, width, and the 12-hex sha256 prefix of `TI hashes`.
#[test]
fn models_lists_embeddings() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let out = easel()
        .args(["models", "--json", "--models"])
        .arg(fixtures.join("models"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("embeddings/expected.json")).unwrap(),
    )
    .unwrap();
    for e in expected["embeddings"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let got = listed["embeddings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {listed}"));
        assert_eq!(got["vectors"], e["vectors"], "{name}");
        assert_eq!(got["width"], e["width"], "{name}");
        assert_eq!(
            got["hash"].as_str().unwrap(),
            &e["sha256"].as_str().unwrap()[..12],
            "{name}"
        );
    }
}

/// `--preview` writes the first image's live preview: A1111's "Approx NN" (twice the latent's
/// size) when the folder has `VAE-approx/model.pt`, here the preview of the final latent
/// after the last step; "Approx cheap" (the latent's size) without it.
#[test]
fn preview_writes_the_live_preview() {
    let dir_guard = easel_tests::scratch_dir("easel-cli-preview");
    let dir = dir_guard.path();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models");
    let run = |models: &std::path::Path, name: &str| {
        let o = easel()
            .args(["generate", "--models"])
            .arg(models)
            .args([
                "--prompt", "a cat", "--steps", "3", "--size", "64x48", "--seed", "2",
            ])
            .args(["--preview-every", "2", "--preview"])
            .arg(dir.join(format!("{name}-preview.png")))
            .arg("--save-latents")
            .arg(dir.join(format!("{name}.safetensors")))
            .arg("-o")
            .arg(dir.join(format!("{name}.png")))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let png = std::fs::read(dir.join(format!("{name}-preview.png"))).unwrap();
        easel_core::infotext::decode_png_rgb(&png, "preview").unwrap()
    };
    let (w, h, rgb) = run(&fixtures, "nn");
    assert_eq!((w, h), (16, 12));
    let store = open_tensor_store(&dir.join("nn.safetensors")).unwrap();
    let latent = store.read_f32("latent").unwrap();
    let b = easel_candle::CandleBackend::cpu();
    let net = easel_core::nn::VaeApprox::load(&b, &fixtures.join("VAE-approx/model.pt")).unwrap();
    let want = easel_core::sampler::block_on(net.preview_rgb(&b, &latent, 6, 8)).unwrap();
    assert!(rgb == want, "the preview is not the final latent's");

    let bare = dir.join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    let link = bare.join("Stable-diffusion");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(fixtures.join("Stable-diffusion"), &link).unwrap();
    let (w, h, _) = run(&bare, "cheap");
    assert_eq!((w, h), (8, 6));

    // TAESD: the full-size image of the final latent, from the folder's taesd_decoder.pth.
    let o = easel()
        .args(["generate", "--models"])
        .arg(&fixtures)
        .args([
            "--prompt", "a cat", "--steps", "2", "--size", "64x48", "--seed", "2",
        ])
        .args(["--preview-method", "taesd", "--preview"])
        .arg(dir.join("taesd-preview.png"))
        .arg("--save-latents")
        .arg(dir.join("taesd.safetensors"))
        .arg("-o")
        .arg(dir.join("taesd.png"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let png = std::fs::read(dir.join("taesd-preview.png")).unwrap();
    let (w, h, rgb) = easel_core::infotext::decode_png_rgb(&png, "preview").unwrap();
    assert_eq!((w, h), (64, 48));
    let latent = open_tensor_store(&dir.join("taesd.safetensors"))
        .unwrap()
        .read_f32("latent")
        .unwrap();
    let taesd =
        easel_core::nn::TaesdDecoder::load(&b, &fixtures.join("VAE-approx/taesd_decoder.pth"))
            .unwrap();
    let want = easel_core::sampler::block_on(taesd.decode_rgb(&b, &latent, 6, 8)).unwrap();
    assert!(rgb == want, "the TAESD preview is not the final latent's");
    // A method whose file is missing is an error naming the file.
    let o = easel()
        .args(["generate", "--models"])
        .arg(&bare)
        .args([
            "--steps",
            "1",
            "--size",
            "64x64",
            "--preview-method",
            "taesd",
            "--preview",
        ])
        .arg(dir.join("x.png"))
        .arg("-o")
        .arg(dir.join("x-out.png"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("taesd_decoder.pth"));
}

/// `--vae-decoder taesd` decodes the final latent with TAESD's decoder from the folder
/// (`VAE Decoder: TAESD` in the infotext, as A1111 writes it) and `--from` reads it back.
#[test]
fn vae_decoder_taesd_decodes_with_the_folders_taesd() {
    let dir_guard = easel_tests::scratch_dir("easel-cli-taesd");
    let dir = dir_guard.path();
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models");
    let out = dir.join("taesd.png");
    let latents = dir.join("taesd.safetensors");
    let png = generate_png(
        &models,
        &[
            "--prompt",
            "a cat",
            "--steps",
            "2",
            "--size",
            "64x48",
            "--seed",
            "4",
            "--vae-decoder",
            "taesd",
            "--save-latents",
            latents.to_str().unwrap(),
        ],
        &out,
    );
    let (w, h, rgb) = easel_core::infotext::decode_png_rgb(&png, "out").unwrap();
    assert_eq!((w, h), (64, 48));
    let latent = open_tensor_store(&latents)
        .unwrap()
        .read_f32("latent")
        .unwrap();
    let b = easel_candle::CandleBackend::cpu();
    let taesd =
        easel_core::nn::TaesdDecoder::load(&b, &models.join("VAE-approx/taesd_decoder.pth"))
            .unwrap();
    let want = easel_core::sampler::block_on(taesd.decode_rgb(&b, &latent, 6, 8)).unwrap();
    assert!(rgb == want, "not TAESD's decode of the final latent");
    let text = read_parameters(&out).unwrap().unwrap();
    // A1111 writes `Version` after every other field.
    let last = format!("VAE Decoder: TAESD, Version: {}", easel_core::VERSION_LABEL);
    assert!(text.ends_with(&last), "{text}");
    let again_png = generate_png(
        &models,
        &["--from", out.to_str().unwrap()],
        &dir.join("again.png"),
    );
    assert!(
        easel_core::infotext::decode_png_rgb(&again_png, "again")
            .unwrap()
            .2
            == rgb
    );
}

/// `--vae-tiling` decodes a latent larger than one 64-latent tile in tiles (the pipeline
/// test checks the tiles against diffusers): the PNG says so and `--from` repeats it. A
/// 72×8 latent is two overlapping tiles side by side, one seam, at an eighth of the work
/// of a square one.
#[test]
fn vae_tiling_is_recorded_and_repeated() {
    let dir_guard = easel_tests::scratch_dir("easel-cli-tiling");
    let dir = dir_guard.path();
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models");
    let gen = |extra: &[&str], out: &str| {
        let png = generate_png(&models, extra, &dir.join(out));
        easel_core::infotext::decode_png_rgb(&png, out).unwrap()
    };
    let args = [
        "--prompt", "a cat", "--steps", "1", "--size", "576x64", "--seed", "3",
    ];
    let whole = gen(&args, "whole.png");
    let mut tiled_args = args.to_vec();
    tiled_args.push("--vae-tiling");
    let tiled = gen(&tiled_args, "tiled.png");
    assert_eq!((tiled.0, tiled.1), (576, 64));
    assert!(tiled.2 != whole.2, "tiling changed nothing at the seams");
    let text = read_parameters(dir.join("tiled.png")).unwrap().unwrap();
    // A1111 writes `Version` after every other field.
    let last = format!("VAE tiling: True, Version: {}", easel_core::VERSION_LABEL);
    assert!(text.ends_with(&last), "{text}");
    let from = dir.join("tiled.png").to_str().unwrap().to_string();
    let again = gen(&["--from", &from], "again.png");
    assert!(again.2 == tiled.2);
}

/// A hypernetwork named by a prompt tag is recorded by the tag alone; one from
/// `--hypernet` by the `Hypernet` keys. A1111 1.x turns a pasted `Hypernet` key into a
/// tag, so a PNG holding both would apply the hypernetwork twice there.
#[test]
fn hypernetworks_are_recorded_once() {
    let dir_guard = easel_tests::scratch_dir("easel-cli-hn-once");
    let dir = dir_guard.path();
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models");
    let gen = |extra: &[&str], out: &str| {
        let mut args = vec!["--steps", "1", "--size", "64x64", "--seed", "1"];
        args.extend_from_slice(extra);
        generate_png(&models, &args, &dir.join(out));
        read_parameters(dir.join(out)).unwrap().unwrap()
    };
    let tagged = gen(&["--prompt", "a cat <hypernet:tiny-nai:0.7>"], "tag.png");
    let t = Infotext::parse(&tagged);
    assert!(t.prompt.contains("<hypernet:tiny-nai:0.7>"), "{tagged}");
    assert_eq!(t.get("Hypernet"), None, "{tagged}");
    let flagged = gen(
        &["--prompt", "a cat", "--hypernet", "tiny-nai:0.7"],
        "flag.png",
    );
    let t = Infotext::parse(&flagged);
    assert!(!t.prompt.contains("<hypernet:"), "{flagged}");
    assert_eq!(t.get("Hypernet"), Some("tiny-nai"), "{flagged}");
    assert_eq!(t.get("Hypernet strength"), Some("0.7"), "{flagged}");
}

/// `--pad-conds-v0` / `--pad-conds` (the sampler matrix checks their images against
/// A1111's CFG denoiser): the PNG records the option only when it padded, after the
/// sampler's fields, and `--from` repeats it.
#[test]
fn cond_padding_is_recorded_when_it_applied_and_repeated() {
    let dir_guard = easel_tests::scratch_dir("easel-cli-padconds");
    let dir = dir_guard.path();
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models");
    let long = "a photo of a cat, ".repeat(20);
    let gen = |extra: &[&str], out: &str| {
        let mut args = vec!["--steps", "2", "--size", "64x64", "--seed", "5"];
        args.extend_from_slice(extra);
        let png = generate_png(&models, &args, &dir.join(out));
        let text = read_parameters(dir.join(out)).unwrap().unwrap();
        (
            easel_core::infotext::decode_png_rgb(&png, out).unwrap().2,
            text,
        )
    };
    let (plain, plain_text) = gen(&["--prompt", &long, "--sampler", "DDIM"], "plain.png");
    assert!(!plain_text.contains("Pad conds"), "{plain_text}");
    let (v0, v0_text) = gen(
        &["--prompt", &long, "--sampler", "DDIM", "--pad-conds-v0"],
        "v0.png",
    );
    assert!(v0 != plain, "padding the negative prompt changed nothing");
    assert!(
        v0_text.contains(", Pad conds v0: True, Version: "),
        "{v0_text}"
    );
    let from = dir.join("v0.png").to_str().unwrap().to_string();
    let (again, _) = gen(&["--from", &from], "again.png");
    assert!(again == v0, "--from did not repeat the padding");
    // Prompts of one length: nothing to pad, nothing recorded.
    let (_, short_text) = gen(&["--prompt", "a cat", "--pad-conds"], "short.png");
    assert!(!short_text.contains("Pad conds"), "{short_text}");
    let (_, empty_text) = gen(&["--prompt", &long, "--pad-conds"], "empty.png");
    assert!(empty_text.contains(", Pad conds: True"), "{empty_text}");
}

/// The infotext corpus (`tests/fixtures/infotext/corpus.json`, written by
/// `make_corpus.py`): 34 texts of A1111 v1.0 to v1.10, Forge and extensions, each with what
/// A1111 1.10's parser and txt2img paste make of it. `easel info --json` must print A1111's
/// parse; `generate --from … --dry-run` must resolve the settings A1111 sets, warn about
/// exactly what A1111 could not read, what Easel lacks and what is not installed (and
/// nothing for a clean text), and `--strict` must fail exactly when there is a warning.
#[test]
fn infotext_corpus_pastes_like_a1111() {
    use serde_json::Value;
    let dir_guard = easel_tests::scratch_dir("easel-cli-corpus");
    let dir = dir_guard.path();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let corpus: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("infotext/corpus.json")).unwrap(),
    )
    .unwrap();
    assert!(corpus.len() >= 30);
    let run = |args: &[&str], png: &std::path::Path| {
        let o = easel()
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .args(args)
            .arg(png)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let models = fixtures.join("models");
    let models = models.to_str().unwrap();
    let mut failures = Vec::new();
    for case in &corpus {
        let name = case["name"].as_str().unwrap();
        let mut fail = |what: String| failures.push(format!("{name}: {what}"));
        let png = dir.join(format!("{name}.png"));
        png_with_infotext(&png, case["text"].as_str().unwrap());

        // The parse.
        let (ok, out, err) = run(&["info", "--json"], &png);
        assert!(ok, "{name}: {err}");
        let info: Value = serde_json::from_str(&out).unwrap();
        let raw = &case["raw"];
        for key in ["prompt", "negative_prompt"] {
            if info[key] != raw[key] {
                fail(format!("info {key} {} != A1111's {}", info[key], raw[key]));
            }
        }
        let want: serde_json::Map<String, Value> = raw["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| (kv[0].as_str().unwrap().to_string(), kv[1].clone()))
            .collect();
        if info["parameters"].as_object() != Some(&want) {
            fail(format!(
                "info parameters {} != A1111's {want:?}",
                info["parameters"]
            ));
        }

        // The paste.
        let (ok, out, err) = run(
            &["generate", "--models", models, "--dry-run", "--from"],
            &png,
        );
        assert!(ok, "{name}: {err}");
        let dry: Value = serde_json::from_str(&out).unwrap();
        let s = &dry["settings"];
        let paste = &case["paste"];
        let mut prompt = s["prompt"].as_str().unwrap().to_string();
        if let Some(h) = paste.get("hypernet") {
            let hname = h["name"].as_str().unwrap();
            let strength = h["strength"].as_str().unwrap();
            prompt += &format!("<hypernet:{hname}:{strength}>");
            let installed = !case["missing"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m == hname);
            let got: Vec<(String, f64)> = s["hypernets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h["name"].as_str().unwrap().to_string(),
                        h["strength"].as_f64().unwrap(),
                    )
                })
                .collect();
            let want: Vec<(String, f64)> = if installed {
                vec![(hname.to_string(), strength.parse().unwrap())]
            } else {
                Vec::new()
            };
            let close = got.len() == want.len()
                && got
                    .iter()
                    .zip(&want)
                    .all(|(g, w)| g.0 == w.0 && (g.1 - w.1).abs() < 1e-6);
            if !close {
                fail(format!("hypernets {got:?}, expected {want:?}"));
            }
        }
        if prompt != paste["prompt"].as_str().unwrap() {
            fail(format!("prompt {prompt:?} != A1111's {}", paste["prompt"]));
        }
        for (key, want) in paste.as_object().unwrap() {
            let got = match key.as_str() {
                "prompt" | "hypernet" => continue,
                "sampler" => &dry["sampler"],
                "schedule" if want.is_null() => continue,
                "schedule" => &dry["schedule_type"],
                other => &s[other],
            };
            let same = match (got.as_f64(), want.as_f64()) {
                (Some(g), Some(w)) => (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                _ => got == want,
            };
            if !same {
                fail(format!("{key} {got} != A1111's {want}"));
            }
        }

        // The warnings.
        let warnings: Vec<String> = dry["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .collect();
        let mut expected = 0;
        for (list, form) in [
            ("unreadable", "`{}:"),
            ("unsupported", "{}"),
            ("missing", "`{}"),
        ] {
            for item in case[list].as_array().unwrap() {
                expected += 1;
                let needle = form.replace("{}", item.as_str().unwrap());
                if !warnings.iter().any(|w| w.contains(&needle)) {
                    fail(format!("no warning naming {needle}: {warnings:?}"));
                }
            }
        }
        if expected == 0 && !warnings.is_empty() {
            fail(format!("warnings for a clean text: {warnings:?}"));
        }
        let (ok, _, err) = run(
            &[
                "generate",
                "--models",
                models,
                "--dry-run",
                "--strict",
                "--from",
            ],
            &png,
        );
        if ok == (expected > 0) {
            fail(format!(
                "--strict succeeded: {ok}, warnings expected: {expected} ({err})"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// LoRAs in grids as in A1111's X/Y/Z plot, through Prompt S/R on the `<lora:…>` tag: each
/// cell patches the UNet with its own weight and equals a plain `generate` of its prompt.
#[test]
fn grid_prompt_sr_varies_a_lora_weight() {
    let dir_guard = easel_tests::scratch_dir("easel-cli-lora-grid");
    let dir = dir_guard.path();
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models");
    let common = ["--steps", "2", "--size", "64x64", "--seed", "3"];
    let o = easel()
        .args(["grid", "--models"])
        .arg(&models)
        .args(["--prompt", "a cat <lora:tiny-lora:0.5>"])
        .args(common)
        .args([
            "--x-type",
            "Prompt S/R",
            "--x-values",
            "tiny-lora:0.5,tiny-lora:1",
        ])
        .arg("-o")
        .arg(dir.join("grid.png"))
        .arg("--save-cells")
        .arg(dir.join("cells"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rgb = |p: &std::path::Path| {
        easel_core::infotext::decode_png_rgb(&std::fs::read(p).unwrap(), "png")
            .unwrap()
            .2
    };
    let mut cells = Vec::new();
    for (i, weight) in ["0.5", "1"].iter().enumerate() {
        let prompt = format!("a cat <lora:tiny-lora:{weight}>");
        let mut args = vec!["--prompt", prompt.as_str()];
        args.extend(common);
        let one = dir.join(format!("one{i}.png"));
        generate_png(&models, &args, &one);
        let cell = dir.join(format!("cells/cell-x{}.png", i + 1));
        assert!(
            rgb(&cell) == rgb(&one),
            "cell {weight} differs from generate"
        );
        cells.push(rgb(&cell));
    }
    assert!(cells[0] != cells[1], "the LoRA weight changed nothing");
}

/// `--precision bf16` runs on every CPU (bf16 products where the CPU has bf16 arithmetic,
/// as `/proc/cpuinfo` lists it, and bf16 weights in f32 products elsewhere), `-v` names
/// which, the image is close to fp32's but not equal, and `auto` is exactly the precision
/// that is faster on this CPU: bf16 with bf16 arithmetic, fp32 without.
#[test]
fn bf16_runs_on_every_cpu_and_auto_picks_it_only_with_bf16_arithmetic() {
    let dir_guard = easel_tests::scratch_dir("easel-cli-precision");
    let dir = dir_guard.path();
    let run = |precision: &str| {
        let latents = dir.join(format!("{precision}.safetensors"));
        let out = easel()
            .current_dir(dir)
            .args(["generate", "--prompt", "a lighthouse", "--steps", "2"])
            .args([
                "--seed",
                "3",
                "--size",
                "64x64",
                "-v",
                "--precision",
                precision,
            ])
            .arg("-o")
            .arg(dir.join(format!("{precision}.png")))
            .arg("--save-latents")
            .arg(&latents)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{precision}: {err}");
        let store = open_tensor_store(&latents).unwrap();
        (store.read_f32("latent").unwrap(), err)
    };
    let (fp32, _) = run("fp32");
    let (bf16, said) = run("bf16");
    let (auto, auto_said) = run("auto");
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let native = cpuinfo.lines().filter(|l| l.starts_with("flags")).any(|l| {
        l.split_whitespace()
            .any(|f| f == "avx512_bf16" || f == "amx_bf16")
    });
    let weights_only = said.contains("bf16 weights only");
    assert!(said.contains("bf16 products on"), "{said}");
    assert_eq!(weights_only, !native, "{said}");
    let largest = fp32.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = fp32
        .iter()
        .zip(&bf16)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff > 1e-4 * largest && diff < 0.1 * largest,
        "{diff} of {largest}"
    );
    if native {
        assert!(auto_said.contains("bf16 products on"), "{auto_said}");
        assert_eq!(auto, bf16);
    } else {
        assert!(auto_said.contains("fp32 products on"), "{auto_said}");
        assert_eq!(auto, fp32);
    }
}
