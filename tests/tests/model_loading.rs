//! Loading a checkpoint from a models folder the way A1111 does (sidecar yaml and VAE,
//! EMA selection, name resolution) and the errors users get for broken files.

use easel_candle::CandleBackend;
use easel_core::formats::{open_tensor_store, safetensors, TensorStore};
use easel_core::model::{
    checkpoint_files, legacy_model_hash, resolve_checkpoint, StableDiffusion, VaeChoice,
};
use easel_tests::models_dir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn sd_dir() -> PathBuf {
    models_dir().join("Stable-diffusion")
}

fn load_err(path: &Path) -> String {
    let files = checkpoint_files(&models_dir(), path, &VaeChoice::Builtin).unwrap();
    match StableDiffusion::load(&CandleBackend::cpu(), &files) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

/// A temp folder unique to this test process and name.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("easel-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Copy of `store` as safetensors, with `edit` applied to each (key, shape, bytes).
fn rewrite(
    store: &TensorStore,
    out: &Path,
    edit: impl Fn(&str, Vec<usize>, Vec<u8>) -> Option<(Vec<usize>, Vec<u8>)>,
) {
    let mut tensors = Vec::new();
    for key in store.keys() {
        let (dtype, bytes) = store.read_raw(key).unwrap();
        let shape = store.get(key).unwrap().shape.clone();
        if let Some((shape, bytes)) = edit(key, shape, bytes) {
            tensors.push((key.to_string(), dtype, shape, bytes));
        }
    }
    safetensors::write(out, &tensors, &BTreeMap::new()).unwrap();
}

#[test]
fn sidecars_are_found_by_stem() {
    let ckpt = resolve_checkpoint(&models_dir(), "tiny").unwrap();
    assert_eq!(ckpt, sd_dir().join("tiny.ckpt"));
    let files = checkpoint_files(&models_dir(), &ckpt, &VaeChoice::Auto).unwrap();
    assert_eq!(files.config, Some(sd_dir().join("tiny.yaml")));
    assert_eq!(files.vae, Some(sd_dir().join("tiny.vae.pt")));
    // "none" keeps the checkpoint's own VAE; tiny-st has no sidecars at all.
    assert_eq!(
        checkpoint_files(&models_dir(), &ckpt, &VaeChoice::parse("none"))
            .unwrap()
            .vae,
        None
    );
    let st = resolve_checkpoint(&models_dir(), "tiny-st.safetensors").unwrap();
    let st_files = checkpoint_files(&models_dir(), &st, &VaeChoice::Auto).unwrap();
    assert_eq!((st_files.config, st_files.vae), (None, None));
    // Explicit VAE by name.
    let named = checkpoint_files(&models_dir(), &st, &VaeChoice::parse("tiny.vae.pt")).unwrap();
    assert_eq!(named.vae, Some(sd_dir().join("tiny.vae.pt")));
}

#[test]
fn unknown_model_names_list_what_exists() {
    let err = resolve_checkpoint(&models_dir(), "nonexistent")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no checkpoint named `nonexistent`") && err.contains("tiny-st"),
        "{err}"
    );
    let err = resolve_checkpoint(Path::new("/nonexistent-models"), "")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no checkpoints"), "{err}");
}

#[test]
fn legacy_hash_matches_hashlib() {
    // A1111's legacy hash (sha256 of the 64 KiB at 1 MiB, first 8 hex) as Python's
    // hashlib computed it for the committed files (fixture stage `hashes`).
    let want = std::fs::read_to_string(easel_tests::golden_path("hashes.json")).unwrap();
    let want: serde_json::Value = serde_json::from_str(&want).unwrap();
    for (file, h) in want.as_object().unwrap() {
        let got = legacy_model_hash(&sd_dir().join(file)).unwrap();
        assert_eq!(got, h["legacy"].as_str().unwrap(), "{file}");
    }
}

/// The infotext's `Model hash` and `VAE hash` are A1111 v1.x's short hashes (AutoV2) of
/// the checkpoint and its sidecar VAE, as hashlib computed them.
#[test]
fn loaded_model_carries_a1111_short_hashes() {
    let want = std::fs::read_to_string(easel_tests::golden_path("hashes.json")).unwrap();
    let want: serde_json::Value = serde_json::from_str(&want).unwrap();
    let path = sd_dir().join("tiny.ckpt");
    let files = checkpoint_files(&models_dir(), &path, &VaeChoice::Auto).unwrap();
    let model = StableDiffusion::load(&CandleBackend::cpu(), &files).unwrap();
    assert_eq!(
        model.info.hash,
        want["tiny.ckpt"]["autov2"].as_str().unwrap()
    );
    assert_eq!(
        model.info.vae_hash.as_deref(),
        want["tiny.vae.pt"]["autov2"].as_str()
    );
    assert_eq!(model.info.vae_name.as_deref(), Some("tiny.vae.pt"));
}

#[test]
fn missing_tensor_is_named() {
    let dir = temp_dir("missing");
    let out = dir.join("broken.safetensors");
    let store = open_tensor_store(&sd_dir().join("tiny-st.safetensors")).unwrap();
    let victim = "model.diffusion_model.middle_block.1.proj_out.weight";
    rewrite(&store, &out, |k, s, b| (k != victim).then_some((s, b)));
    let err = load_err(&out);
    std::fs::remove_dir_all(&dir).ok();
    assert!(err.contains(victim) && err.contains("missing"), "{err}");
}

#[test]
fn wrong_shape_is_named() {
    let dir = temp_dir("shape");
    let out = dir.join("broken.safetensors");
    let store = open_tensor_store(&sd_dir().join("tiny-st.safetensors")).unwrap();
    let victim = "first_stage_model.decoder.conv_in.bias";
    rewrite(&store, &out, |k, s, b| {
        if k == victim {
            let half = b.len() / 2;
            Some((vec![s[0] / 2], b[..half].to_vec()))
        } else {
            Some((s, b))
        }
    });
    let err = load_err(&out);
    std::fs::remove_dir_all(&dir).ok();
    assert!(err.contains(victim) && err.contains("shape"), "{err}");
}

#[test]
fn truncated_and_unreadable_checkpoints_give_clear_errors() {
    let dir = temp_dir("trunc");
    let out = dir.join("cut.ckpt");
    let bytes = std::fs::read(sd_dir().join("tiny.ckpt")).unwrap();
    std::fs::write(&out, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(&out);
    assert!(err.contains("cut.ckpt"), "{err}");
    let missing = dir.join("nope.ckpt");
    let err = match open_tensor_store(&missing) {
        Ok(_) => panic!("opened a missing file"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("nope.ckpt"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ema_config_without_ema_weights_is_refused() {
    let dir = temp_dir("noema");
    std::fs::copy(sd_dir().join("tiny.ckpt"), dir.join("plain.ckpt")).unwrap();
    std::fs::copy(sd_dir().join("tiny-ema.yaml"), dir.join("plain.yaml")).unwrap();
    let files =
        checkpoint_files(&models_dir(), &dir.join("plain.ckpt"), &VaeChoice::Builtin).unwrap();
    let err = match StableDiffusion::load(&CandleBackend::cpu(), &files) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    };
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        err.contains("use_ema") && err.contains("plain.ckpt"),
        "{err}"
    );
}

#[test]
fn checkpoints_resolve_by_hash_and_a1111_title() {
    let want = sd_dir().join("tiny-st.safetensors");
    let hash = legacy_model_hash(&want).unwrap();
    assert_eq!(resolve_checkpoint(&models_dir(), &hash).unwrap(), want);
    // The title's hash wins over its name; the name is the fallback for an unknown hash.
    assert_eq!(
        resolve_checkpoint(&models_dir(), &format!("tiny [{hash}]")).unwrap(),
        want
    );
    assert_eq!(
        resolve_checkpoint(&models_dir(), "tiny-st [00000000]").unwrap(),
        want
    );
    assert!(resolve_checkpoint(&models_dir(), "00000000").is_err());
}
