//! Checkpoint tools against independent references:
//!
//! * prune: `tiny-ema.ckpt`'s EMA UNet is, by construction in `make_fixtures.py`, exactly
//!   `tiny.ckpt`'s UNet, so the EMA prune must reproduce `tiny.ckpt` tensor for tensor;
//!   precision changes are compared with torch's own `.half()` / `.bfloat16()` output
//!   (`fixtures/tools/ema-f32-pruned-*.safetensors`, by `make_tools_fixtures.py`).
//! * hashes: `fixtures/tools/hashes.json`, computed with Python's hashlib and zlib.
//! * import: `fixtures/tools/release/` with a `sha256sum` written by hashlib, and the
//!   expected outcome in `release-expected.json`.
//!
//! Tolerance: exact everywhere (bytes of tensors, hash strings).

use easel_core::convert::checksum::{verify_checksum_list, CheckStatus};
use easel_core::convert::import::{import_release, FileStatus, ImportOptions, LinkMode, Verify};
use easel_core::convert::{
    convert_checkpoint, prune_checkpoint, write_store, EmaMode, OutputFormat, Precision,
    RewriteOptions,
};
use easel_core::formats::{open_tensor_store, open_tensor_store_from, DType, TensorStore};
use easel_core::io::ByteSource;
use easel_core::model::{hash_file, hash_file_cached, HashCache};
use easel_core::Error;
use easel_tests::{fixtures_dir, models_dir};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn tools(name: &str) -> PathBuf {
    fixtures_dir().join("tools").join(name)
}
fn model(name: &str) -> PathBuf {
    models_dir().join("Stable-diffusion").join(name)
}

/// A fresh, empty temporary folder for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("easel-tools-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn no_progress(_: u64, _: u64) {}

fn options(precision: Precision) -> RewriteOptions {
    RewriteOptions {
        format: None,
        precision,
        overwrite: false,
    }
}

/// Every tensor of `want` is in `got` with the same dtype, shape and bytes; same key sets.
fn assert_same_tensors(got: &TensorStore, want: &TensorStore) {
    let gk: Vec<&str> = got.keys().collect();
    let wk: Vec<&str> = want.keys().collect();
    assert_eq!(gk, wk, "{} vs {}: key sets", got.name(), want.name());
    for key in wk {
        let (g, w) = (got.info(key).unwrap(), want.info(key).unwrap());
        assert_eq!((g.dtype, &g.shape), (w.dtype, &w.shape), "{key}");
        assert_eq!(
            got.read_raw(key).unwrap(),
            want.read_raw(key).unwrap(),
            "{key} bytes"
        );
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn ema_prune_reproduces_the_reference_weights() {
    let dir = scratch("prune");
    let reference = open_tensor_store(&model("tiny.ckpt")).unwrap();
    for out_name in ["pruned.ckpt", "pruned.safetensors"] {
        let out = dir.join(out_name);
        let r = prune_checkpoint(
            &model("tiny-ema.ckpt"),
            &out,
            EmaMode::EmaOnly,
            &options(Precision::Keep),
            &mut no_progress,
        )
        .unwrap();
        assert!(r.ema_found);
        assert_eq!(r.ema_used, 684);
        assert_eq!(r.tensors, reference.len());
        let got = open_tensor_store(&out).unwrap();
        assert_same_tensors(&got, &reference);
        assert_eq!(
            got.metadata().get("global_step").map(String::as_str),
            Some("4242")
        );
        assert!(got.metadata().keys().all(|k| !k.starts_with("model_ema")));
    }
    assert_eq!(
        files_in(&dir),
        ["pruned.ckpt", "pruned.safetensors"],
        "no temporary files left"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn no_ema_prune_keeps_the_training_unet() {
    let dir = scratch("noema");
    let out = dir.join("train.ckpt");
    let r = prune_checkpoint(
        &model("tiny-ema.ckpt"),
        &out,
        EmaMode::NoEma,
        &options(Precision::Keep),
        &mut no_progress,
    )
    .unwrap();
    assert_eq!(r.ema_used, 0);
    let src = open_tensor_store(&model("tiny-ema.ckpt")).unwrap();
    let got = open_tensor_store(&out).unwrap();
    assert!(got.keys().all(|k| !k.starts_with("model_ema.")));
    assert_eq!(
        got.len(),
        src.keys().filter(|k| !k.starts_with("model_ema.")).count()
    );
    for key in got.keys() {
        assert_eq!(
            got.read_raw(key).unwrap(),
            src.read_raw(key).unwrap(),
            "{key}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn precision_changes_match_torch() {
    let dir = scratch("precision");
    for (flag, precision, format) in [
        ("fp16", Precision::F16, "safetensors"),
        ("fp16", Precision::F16, "ckpt"),
        ("bf16", Precision::BF16, "safetensors"),
        ("bf16", Precision::BF16, "ckpt"),
    ] {
        let out = dir.join(format!("{flag}.{format}"));
        prune_checkpoint(
            &tools("ema-f32.ckpt"),
            &out,
            EmaMode::EmaOnly,
            &options(precision),
            &mut no_progress,
        )
        .unwrap();
        let want =
            open_tensor_store(&tools(&format!("ema-f32-pruned-{flag}.safetensors"))).unwrap();
        let got = open_tensor_store(&out).unwrap();
        assert_same_tensors(&got, &want);
        let ids = got
            .info("cond_stage_model.transformer.text_model.embeddings.position_ids")
            .unwrap();
        assert_eq!(ids.dtype, DType::I64, "integer buffers keep their dtype");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fp16_halves_the_size_and_round_trips_through_fp32() {
    let dir = scratch("halves");
    let f32_path = dir.join("tiny-f32.ckpt");
    convert_checkpoint(
        &model("tiny.ckpt"),
        &f32_path,
        &options(Precision::F32),
        &mut no_progress,
    )
    .unwrap();
    let f16_path = dir.join("tiny-f16.ckpt");
    prune_checkpoint(
        &f32_path,
        &f16_path,
        EmaMode::EmaOnly,
        &options(Precision::F16),
        &mut no_progress,
    )
    .unwrap();
    let (big, small) = (
        std::fs::metadata(&f32_path).unwrap().len() as f64,
        std::fs::metadata(&f16_path).unwrap().len() as f64,
    );
    let ratio = small / big;
    assert!(
        (0.49..0.52).contains(&ratio),
        "fp16/fp32 size ratio {ratio}"
    );
    // f16 -> f32 -> f16 is lossless, so this must be the original file's tensors, except
    // the f32 schedule buffers, which are now f16 as torch's `.half()` makes them.
    let original = open_tensor_store(&model("tiny.ckpt")).unwrap();
    let halved = open_tensor_store(&tools("tiny-f32-buffers-fp16.safetensors")).unwrap();
    let got = open_tensor_store(&f16_path).unwrap();
    for key in original.keys() {
        let info = original.info(key).unwrap();
        if info.dtype == DType::F32 {
            assert_eq!(
                got.read_raw(key).unwrap(),
                halved.read_raw(key).unwrap(),
                "{key}"
            );
        } else {
            assert_eq!(
                got.read_raw(key).unwrap(),
                original.read_raw(key).unwrap(),
                "{key}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn convert_round_trips_bit_exactly_with_metadata() {
    let dir = scratch("convert");
    let st = dir.join("tiny.safetensors");
    let back = dir.join("tiny-back.ckpt");
    convert_checkpoint(
        &model("tiny.ckpt"),
        &st,
        &options(Precision::Keep),
        &mut no_progress,
    )
    .unwrap();
    convert_checkpoint(&st, &back, &options(Precision::Keep), &mut no_progress).unwrap();
    let original = open_tensor_store(&model("tiny.ckpt")).unwrap();
    let st_store = open_tensor_store(&st).unwrap();
    assert_same_tensors(&st_store, &original);
    assert_eq!(st_store.metadata()["global_step"], "4242");
    let back_store = open_tensor_store(&back).unwrap();
    assert_same_tensors(&back_store, &original);
    assert_eq!(back_store.metadata()["global_step"], "4242");
    // safetensors written by the reference library -> ckpt: `__metadata__` becomes
    // top-level entries of the checkpoint.
    let from_st = dir.join("from-st.ckpt");
    convert_checkpoint(
        &model("tiny-st.safetensors"),
        &from_st,
        &options(Precision::Keep),
        &mut no_progress,
    )
    .unwrap();
    let reference = open_tensor_store(&model("tiny-st.safetensors")).unwrap();
    let got = open_tensor_store(&from_st).unwrap();
    assert_same_tensors(&got, &reference);
    assert_eq!(got.metadata()["format"], "pt");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hashes_equal_pythons() {
    let text = std::fs::read_to_string(tools("hashes.json")).unwrap();
    let want: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    let dir = scratch("hashes");
    let mut cache = HashCache::load(&dir.join("cache.json"));
    for (name, w) in &want {
        let path = if name == "sizes.bin" {
            tools(name)
        } else {
            model(name)
        };
        let mut last = (0, 0);
        let h = hash_file(&path, &mut |d, t| last = (d, t)).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(last, (len, len), "{name}: progress reaches the end");
        assert_eq!(h.legacy, w["legacy"].as_str().unwrap(), "{name} legacy");
        assert_eq!(h.autov2(), w["autov2"].as_str().unwrap(), "{name} AutoV2");
        assert_eq!(h.autov3.as_deref(), w["autov3"].as_str(), "{name} AutoV3");
        assert_eq!(h.crc32_hex(), w["crc32"].as_str().unwrap(), "{name} CRC32");
        assert_eq!(h.sha256, w["sha256"].as_str().unwrap(), "{name} sha256");
        assert_eq!(
            easel_core::model::legacy_model_hash(&path).unwrap(),
            h.legacy,
            "{name}: same as the loader's legacy hash"
        );
        let cached = hash_file_cached(&path, &mut cache, &mut no_progress).unwrap();
        assert_eq!(cached, h);
    }
    cache.save().unwrap();
    // A second run answers from the cache without reading the file.
    let mut cache = HashCache::load(&dir.join("cache.json"));
    let mut read = false;
    hash_file_cached(&tools("sizes.bin"), &mut cache, &mut |_, _| read = true).unwrap();
    assert!(!read, "cached result used");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn expected_release() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(tools("release-expected.json")).unwrap()).unwrap()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn checksum_list_verification_reports_each_line() {
    let want = expected_release();
    let results = verify_checksum_list(&tools("release/sha256sum"), &mut |_, _, _| {}).unwrap();
    let with = |pred: &dyn Fn(&CheckStatus) -> bool| -> Vec<String> {
        results
            .iter()
            .filter(|r| pred(&r.status))
            .map(|r| r.path.clone())
            .collect()
    };
    assert_eq!(
        with(&|s| matches!(s, CheckStatus::Mismatch { .. })),
        strings(&want["mismatch"])
    );
    assert_eq!(
        with(&|s| *s == CheckStatus::Missing),
        strings(&want["missing"])
    );
    let refused = with(&|s| matches!(s, CheckStatus::Refused(_)));
    assert_eq!(refused.len(), 2);
    for (line, path) in refused.iter().zip(strings(&want["refused"])) {
        assert!(line.ends_with(&path), "{line}");
    }
    assert_eq!(with(&|s| *s == CheckStatus::Ok).len(), 9);
}

#[test]
fn import_lays_out_the_release_and_holds_back_failures() {
    let want = expected_release();
    let dir = scratch("import");
    let models = dir.join("models");
    let src = tools("release");
    for mode in [LinkMode::Copy, LinkMode::Link] {
        let _ = std::fs::remove_dir_all(&models);
        let opts = ImportOptions {
            mode,
            ..Default::default()
        };
        let report = import_release(&src, &models, &opts, &mut |_, _, _| {}).unwrap();
        assert!(!report.is_clean(), "a wrong hash is a problem to report");
        for (dest, source) in want["placed"].as_object().unwrap() {
            let got = std::fs::read(models.join(dest)).unwrap_or_else(|e| panic!("{dest}: {e}"));
            assert_eq!(
                got,
                std::fs::read(src.join(source.as_str().unwrap())).unwrap(),
                "{dest}"
            );
            let f = report.files.iter().find(|f| &f.dest == dest).unwrap();
            assert!(
                matches!(f.status, FileStatus::Placed(_)),
                "{dest}: {:?}",
                f.status
            );
        }
        for dest in strings(&want["skipped"]) {
            assert!(!models.join(&dest).exists(), "{dest} must not be placed");
            let f = report.files.iter().find(|f| f.dest == dest).unwrap();
            assert!(
                matches!(f.status, FileStatus::Skipped(_)),
                "{dest}: {:?}",
                f.status
            );
        }
        let mut placed_count = 0;
        for sub in ["Stable-diffusion", "hypernetworks"] {
            placed_count += files_in(&models.join(sub)).len();
        }
        assert_eq!(
            placed_count,
            want["placed"].as_object().unwrap().len(),
            "nothing else written"
        );
        let mismatched: Vec<_> = report
            .checks
            .iter()
            .filter(|c| matches!(c.status, CheckStatus::Mismatch { .. }))
            .map(|c| c.path.clone())
            .collect();
        assert_eq!(mismatched, strings(&want["mismatch"]));
        let missing: Vec<_> = report
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Missing)
            .map(|c| c.path.clone())
            .collect();
        assert_eq!(missing, strings(&want["missing"]));
        let refused = report
            .checks
            .iter()
            .filter(|c| matches!(c.status, CheckStatus::Refused(_)))
            .count();
        assert_eq!(refused, 2, "hostile list entries reported");
        let ignored: Vec<_> = report.ignored.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(ignored, strings(&want["ignored"]));
    }
    assert_eq!(
        files_in(&dir),
        ["models"],
        "nothing written beside the models folder"
    );
    // Run again: everything already there is recognised, not a conflict.
    let report =
        import_release(&src, &models, &ImportOptions::default(), &mut |_, _, _| {}).unwrap();
    assert!(report.files.iter().all(|f| matches!(
        f.status,
        FileStatus::AlreadyPresent | FileStatus::Skipped(_)
    )));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn import_dry_run_conflicts_force_and_escapes() {
    let dir = scratch("import2");
    let models = dir.join("models");
    let src = tools("release");
    let dry = ImportOptions {
        dry_run: true,
        ..Default::default()
    };
    let report = import_release(&src, &models, &dry, &mut |_, _, _| {}).unwrap();
    assert!(report.files.iter().any(|f| f.status == FileStatus::Planned));
    assert!(!models.exists(), "a dry run writes nothing");

    // An unrelated file at a destination: refused before anything is written.
    let sd = models.join("Stable-diffusion");
    std::fs::create_dir_all(&sd).unwrap();
    std::fs::write(sd.join("animefull-final-pruned.yaml"), b"mine").unwrap();
    let no_verify = ImportOptions {
        verify: Verify::Off,
        ..Default::default()
    };
    let err = import_release(&src, &models, &no_verify, &mut |_, _, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("animefull-final-pruned.yaml") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(files_in(&sd), ["animefull-final-pruned.yaml"]);
    assert!(!models.join("hypernetworks").exists());
    assert_eq!(
        std::fs::read(sd.join("animefull-final-pruned.yaml")).unwrap(),
        b"mine"
    );
    let force = ImportOptions {
        verify: Verify::Off,
        force: true,
        ..Default::default()
    };
    import_release(&src, &models, &force, &mut |_, _, _| {}).unwrap();
    assert_eq!(
        std::fs::read(sd.join("animefull-final-pruned.yaml")).unwrap(),
        b"model: final\n"
    );

    // A models subfolder that is a link to elsewhere is refused, and nothing lands there.
    #[cfg(unix)]
    {
        let outside = dir.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let models2 = dir.join("models2");
        std::fs::create_dir_all(&models2).unwrap();
        std::os::unix::fs::symlink(&outside, models2.join("hypernetworks")).unwrap();
        let err = import_release(&src, &models2, &no_verify, &mut |_, _, _| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the models folder"), "{err}");
        assert!(files_in(&outside).is_empty());
    }
    // --verify without a list is an error.
    let bare = dir.join("bare");
    std::fs::create_dir_all(bare.join("x")).unwrap();
    std::fs::write(bare.join("x/model.ckpt"), b"w").unwrap();
    let required = ImportOptions {
        verify: Verify::Required,
        ..Default::default()
    };
    let err = import_release(&bare, &dir.join("m3"), &required, &mut |_, _, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("no checksum list"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file whose large reads fail, as a disk error would: opening it (directory, pickle,
/// small headers) works, copying the big token embedding fails half-way through a rewrite.
struct FailingSource {
    inner: Arc<dyn ByteSource>,
    max_read: usize,
}
impl ByteSource for FailingSource {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> easel_core::Result<()> {
        if buf.len() > self.max_read {
            return Err(Error::format(self.name(), "simulated read error"));
        }
        self.inner.read_at(offset, buf)
    }
}

#[test]
fn bad_input_and_bad_output_leave_nothing_behind() {
    let dir = scratch("bad");
    let out = dir.join("out.ckpt");
    let bytes = std::fs::read(model("tiny-ema.ckpt")).unwrap();
    for cut in [0usize, 10, 1000, bytes.len() / 2, bytes.len() - 30] {
        let truncated = dir.join("truncated.ckpt");
        std::fs::write(&truncated, &bytes[..cut]).unwrap();
        let err = prune_checkpoint(
            &truncated,
            &out,
            EmaMode::EmaOnly,
            &options(Precision::Keep),
            &mut no_progress,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("truncated.ckpt"), "cut {cut}: {err}");
        assert_eq!(files_in(&dir), ["truncated.ckpt"], "cut {cut}: no output");
    }
    let err = prune_checkpoint(
        &model("tiny.yaml"),
        &out,
        EmaMode::EmaOnly,
        &options(Precision::Keep),
        &mut no_progress,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("tiny.yaml") && err.contains("unknown model file format"),
        "{err}"
    );
    // A VAE file is a checkpoint but has no UNet to prune.
    let err = prune_checkpoint(
        &model("tiny.vae.pt"),
        &out,
        EmaMode::EmaOnly,
        &options(Precision::Keep),
        &mut no_progress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no `model.diffusion_model"), "{err}");

    // A read failure in the middle of the tensor data: the partial output is removed.
    let inner = easel_core::io::MmapSource::open_arc(&model("tiny-ema.ckpt")).unwrap();
    let store = open_tensor_store_from(
        Arc::new(FailingSource {
            inner,
            max_read: 1 << 20,
        }),
        "ckpt",
    )
    .unwrap();
    let plan = easel_core::convert::prune_plan(&store, EmaMode::EmaOnly).unwrap();
    for format in [OutputFormat::Ckpt, OutputFormat::Safetensors] {
        let err = write_store(
            &store,
            &plan.tensors,
            &BTreeMap::new(),
            &out,
            format,
            &options(Precision::Keep),
            &mut no_progress,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("simulated read error"), "{err}");
    }
    assert_eq!(
        files_in(&dir),
        ["truncated.ckpt"],
        "partial outputs removed"
    );

    // Output where nothing can be written: no folder, a read-only file system.
    for bad in [
        dir.join("no/such/folder/out.ckpt"),
        PathBuf::from("/proc/easel-test-out.ckpt"),
    ] {
        let err = prune_checkpoint(
            &model("tiny-ema.ckpt"),
            &bad,
            EmaMode::EmaOnly,
            &options(Precision::Keep),
            &mut no_progress,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(
            err.to_string().contains(&bad.display().to_string()),
            "{err}"
        );
    }
    // A read-only folder (meaningful only when not running as root).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.join("ro");
        std::fs::create_dir_all(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let probe_writable = std::fs::write(ro.join("probe"), b"").is_ok();
        let _ = std::fs::remove_file(ro.join("probe"));
        if !probe_writable {
            let err = prune_checkpoint(
                &model("tiny-ema.ckpt"),
                &ro.join("out.ckpt"),
                EmaMode::EmaOnly,
                &options(Precision::Keep),
                &mut no_progress,
            )
            .unwrap_err();
            assert!(matches!(err, Error::Io { .. }), "{err}");
            assert!(files_in(&ro).is_empty());
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // An existing output is kept unless overwriting was asked for.
    std::fs::write(&out, b"precious").unwrap();
    let err = prune_checkpoint(
        &model("tiny-ema.ckpt"),
        &out,
        EmaMode::EmaOnly,
        &options(Precision::Keep),
        &mut no_progress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let force = RewriteOptions {
        overwrite: true,
        ..options(Precision::Keep)
    };
    prune_checkpoint(
        &model("tiny-ema.ckpt"),
        &out,
        EmaMode::EmaOnly,
        &force,
        &mut no_progress,
    )
    .unwrap();
    assert!(open_tensor_store(&out)
        .unwrap()
        .contains("model.diffusion_model.out.2.weight"));
    std::fs::remove_dir_all(&dir).unwrap();
}
