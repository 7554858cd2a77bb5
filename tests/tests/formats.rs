//! Model file readers against files written by torch and safetensors themselves:
//! `fixtures/formats/` (written by `fixtures/formats/make_format_fixtures.py`, expected
//! values in `expected.json` as torch reads the files back) and the tiny model in
//! `fixtures/models/Stable-diffusion/` (written by `fixtures/make_fixtures.py`).
//!
//! Tolerance: exact. Every stored dtype converts to f32 without rounding except f64,
//! whose expected values are rounded to f32 the same way (`as f32`).

use easel_core::formats::pickle::unpickle;
use easel_core::formats::zip::ZipArchive;
use easel_core::formats::{
    ckpt, open_tensor_store, open_tensor_store_from, safetensors, DType, TensorStore, Value,
};
use easel_core::io::{ByteSource, MemorySource, MmapSource};
use easel_core::Error;
use easel_tests::{fixtures_dir, models_dir};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join("formats").join(name)
}

fn expected() -> serde_json::Value {
    let path = fixture("expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run make_format_fixtures.py)", path.display()));
    serde_json::from_str(&text).expect("expected.json")
}

fn dtype_of(torch_name: &str) -> DType {
    match torch_name {
        "float32" => DType::F32,
        "float16" => DType::F16,
        "bfloat16" => DType::BF16,
        "float64" => DType::F64,
        "int64" => DType::I64,
        "int32" => DType::I32,
        "uint8" => DType::U8,
        "bool" => DType::Bool,
        other => panic!("dtype {other} not in this test"),
    }
}

/// Checks every tensor in `want` (expected.json's `tensors` object) against the store.
fn assert_tensors(store: &TensorStore, want: &serde_json::Value) {
    let want = want.as_object().expect("tensors object");
    let mut names: Vec<&str> = want.keys().map(String::as_str).collect();
    names.sort_unstable();
    let got: Vec<&str> = store.keys().collect();
    assert_eq!(got, names, "{}: key set", store.name());
    for (key, w) in want {
        let info = store.info(key).unwrap();
        assert_eq!(
            info.dtype,
            dtype_of(w["dtype"].as_str().unwrap()),
            "{key} dtype"
        );
        let shape: Vec<usize> = serde_json::from_value(w["shape"].clone()).unwrap();
        assert_eq!(info.shape, shape, "{key} shape");
        let values: Vec<f64> = serde_json::from_value(w["values"].clone()).unwrap();
        let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        assert_eq!(store.read_f32(key).unwrap(), values, "{key} values");
    }
}

fn assert_metadata(store: &TensorStore, want: &serde_json::Value) {
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(
            store.metadata().get(k).map(String::as_str),
            v.as_str(),
            "{}: metadata {k}",
            store.name()
        );
    }
}

#[test]
fn strided_views_and_every_dtype_read_as_torch_does() {
    let exp = &expected()["views.ckpt"];
    let store = open_tensor_store(&fixture("views.ckpt")).unwrap();
    assert_tensors(&store, &exp["tensors"]);
    assert_metadata(&store, &exp["metadata"]);
    for (k, strides) in exp["strides"].as_object().unwrap() {
        let strides: Vec<usize> = serde_json::from_value(strides.clone()).unwrap();
        assert_eq!(store.info(k).unwrap().strides, strides, "{k} strides");
    }
    // `slice` and `column` are views into `base`'s storage, at torch's storage offsets.
    let base = store.info("base").unwrap();
    for k in ["slice", "column"] {
        let info = store.info(k).unwrap();
        let off = exp["storage_offsets"][k].as_u64().unwrap();
        assert_eq!(info.storage_start, base.storage_start, "{k} shares storage");
        assert_eq!(info.offset, base.offset + off * 4, "{k} offset");
    }
    // The raw bytes of a bf16 tensor come back in its own dtype.
    let (dtype, raw) = store.read_raw("bf16").unwrap();
    assert_eq!((dtype, raw.len()), (DType::BF16, 12));
}

#[test]
fn ckpt_and_safetensors_of_same_model_agree() {
    let exp = &expected()["pair"];
    let ckpt = open_tensor_store(&fixture("pair.ckpt")).unwrap();
    let st = open_tensor_store(&fixture("pair.safetensors")).unwrap();
    assert_tensors(&ckpt, &exp["tensors"]);
    assert_tensors(&st, &exp["tensors"]);
    assert_eq!(
        ckpt.metadata().get("global_step").map(String::as_str),
        Some("1")
    );
    assert_eq!(st.metadata().get("format").map(String::as_str), Some("pt"));
}

#[test]
fn tiny_model_ckpt_and_safetensors_hold_identical_values() {
    let dir = models_dir().join("Stable-diffusion");
    let ckpt = open_tensor_store(&dir.join("tiny.ckpt")).unwrap();
    let st = open_tensor_store(&dir.join("tiny-st.safetensors")).unwrap();
    let ck_keys: Vec<&str> = ckpt.keys().collect();
    let st_keys: Vec<&str> = st.keys().collect();
    assert_eq!(ck_keys, st_keys);
    assert!(ckpt.len() > 100, "{} tensors", ckpt.len());
    for key in ck_keys {
        let a = ckpt.info(key).unwrap();
        let b = st.info(key).unwrap();
        assert_eq!((a.dtype, &a.shape), (b.dtype, &b.shape), "{key}");
        assert_eq!(
            ckpt.read_f32(key).unwrap(),
            st.read_f32(key).unwrap(),
            "{key}"
        );
    }
    for key in [
        "model.diffusion_model.input_blocks.0.0.weight",
        "first_stage_model.decoder.conv_in.weight",
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
        "alphas_cumprod",
    ] {
        assert!(ckpt.contains(key), "tiny.ckpt lacks {key}");
    }
    assert!(ckpt.metadata().contains_key("global_step"));
}

#[test]
fn tiny_vae_and_ema_checkpoints_load() {
    let dir = models_dir().join("Stable-diffusion");
    let vae = open_tensor_store(&dir.join("tiny.vae.pt")).unwrap();
    assert!(vae.contains("decoder.conv_in.weight"));
    assert!(vae.keys().all(|k| !k.starts_with("first_stage_model.")));
    assert_eq!(
        vae.info("decoder.conv_in.weight").unwrap().dtype,
        DType::F32
    );
    let ema = open_tensor_store(&dir.join("tiny-ema.ckpt")).unwrap();
    assert!(ema.contains("model_ema.decay") && ema.contains("model_ema.num_updates"));
    assert!(ema
        .keys()
        .any(|k| k.starts_with("model_ema.diffusion_model")));
    assert!(ema.keys().any(|k| k.starts_with("model.diffusion_model.")));
}

#[test]
fn hypernetwork_int_keys_flatten_to_dotted_names() {
    let exp = &expected()["hypernet.pt"];
    let store = open_tensor_store(&fixture("hypernet.pt")).unwrap();
    assert!(store.contains("8.0.linear.0.weight"));
    assert!(store.contains("16.1.linear.1.bias"));
    assert_tensors(&store, &exp["tensors"]);
    assert_metadata(&store, &exp["metadata"]);
    // The structured tree keeps the int keys and the float list.
    let src = MmapSource::open_arc(&fixture("hypernet.pt")).unwrap();
    let tree = ckpt::load_value(src).unwrap();
    let dict = tree.as_dict().unwrap();
    assert!(dict
        .iter()
        .any(|(k, v)| *k == Value::Int(16) && v.as_seq().map(|s| s.len()) == Some(2)));
    let layers: Vec<f64> = tree
        .get("layer_structure")
        .unwrap()
        .as_seq()
        .unwrap()
        .iter()
        .map(|v| v.as_float().unwrap())
        .collect();
    assert_eq!(layers, [1.0, 2.0, 1.0]);
}

#[test]
fn deflated_pickle_is_inflated_but_deflated_storage_is_refused() {
    let exp = &expected()["views.ckpt"];
    let store = open_tensor_store(&fixture("deflated-pickle.ckpt")).unwrap();
    assert_tensors(&store, &exp["tensors"]);
    let err = open_tensor_store(&fixture("deflated-storage.ckpt"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("views/data/0") && err.contains("compressed"),
        "{err}"
    );
}

#[test]
fn legacy_non_zip_torch_file_loads() {
    let store = open_tensor_store(&fixture("legacy.pt")).unwrap();
    assert_tensors(&store, &expected()["legacy.pt"]["tensors"]);
    // Cut inside the storage data: a clear error, not a short read.
    let full = std::fs::read(fixture("legacy.pt")).unwrap();
    let msg = open_bytes("cut.pt", full[..full.len() - 5].to_vec(), "pt")
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("cut.pt") && msg.contains("truncated"), "{msg}");
}

/// Training checkpoints carry numpy arrays and scalars beside the weights (loop and callback
/// states); A1111's safe unpickler accepts `numpy.core.multiarray._reconstruct`,
/// `numpy.ndarray` and `numpy.dtype`, so the file loads here too, its weights as torch reads
/// them and the numpy values as data.
#[test]
fn training_checkpoint_with_numpy_arrays_loads() {
    let exp = &expected()["training.ckpt"];
    let store = open_tensor_store(&fixture("training.ckpt")).unwrap();
    assert_tensors(&store, &exp["tensors"]);
    assert_metadata(&store, &exp["metadata"]);
}

#[test]
fn unknown_pickle_global_is_refused_by_name() {
    match open_tensor_store(&fixture("unsafe-global.ckpt")) {
        Err(Error::UnsafeGlobal { file, global }) => {
            assert_eq!(global, "os.system");
            assert!(file.ends_with("unsafe-global.ckpt"), "{file}");
        }
        other => panic!("expected UnsafeGlobal, got {:?}", other.err()),
    }
}

#[test]
fn missing_key_names_key_and_file() {
    let store = open_tensor_store(&fixture("pair.ckpt")).unwrap();
    match store.read_f32("model.nope.weight") {
        Err(Error::MissingKey { file, key }) => {
            assert_eq!(key, "model.nope.weight");
            assert!(file.ends_with("pair.ckpt"), "{file}");
        }
        other => panic!("expected MissingKey, got {other:?}"),
    }
}

#[test]
fn safetensors_offsets_outside_the_file_are_refused() {
    let err = open_tensor_store(&fixture("bad-offsets.safetensors"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("bad-offsets.safetensors")
            && err.contains("`w`")
            && err.contains("past the end"),
        "{err}"
    );
}

#[test]
fn unreadable_path_is_an_io_error_naming_it() {
    let path = fixture("does-not-exist.ckpt");
    match open_tensor_store(&path) {
        Err(Error::Io { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected Io, got {:?}", other.err()),
    }
}

/// Deterministic pseudo-random bytes (a 64-bit LCG), so failures reproduce.
fn noise_bytes(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        })
        .collect()
}

fn open_bytes(name: &str, bytes: Vec<u8>, ext: &str) -> Result<TensorStore, Error> {
    let src: Arc<dyn ByteSource> = Arc::new(MemorySource::new(name, bytes));
    open_tensor_store_from(src, ext)
}

#[test]
fn truncated_and_random_files_give_errors_not_panics() {
    let full = std::fs::read(fixture("views.ckpt")).unwrap();
    for cut in [0, 3, 100, full.len() / 2, full.len() - 30, full.len() - 1] {
        let err = open_bytes("cut.ckpt", full[..cut].to_vec(), "ckpt").err();
        let msg = err
            .unwrap_or_else(|| panic!("cut at {cut} loaded"))
            .to_string();
        assert!(msg.contains("cut.ckpt"), "{msg}");
    }
    // Zeroing the storage region keeps the directory intact: loading still fails cleanly
    // (bad local headers), never panics.
    let mut holed = full.clone();
    let mid = full.len() / 2;
    holed[mid - 600..mid].fill(0);
    let _ = open_bytes("holed.ckpt", holed, "ckpt").map(|s| {
        s.keys()
            .map(|k| s.read_f32(k).map(|_| ()))
            .collect::<Vec<_>>()
    });
    for (seed, ext) in [(1, "ckpt"), (2, "safetensors"), (3, ""), (4, "pt")] {
        let bytes = noise_bytes(4096, seed);
        let msg = open_bytes("noise.bin", bytes, ext)
            .err()
            .unwrap()
            .to_string();
        assert!(msg.contains("noise.bin"), "{msg}");
    }
    let mut fake_zip = b"PK\x03\x04".to_vec();
    fake_zip.extend(noise_bytes(2000, 5));
    let msg = open_bytes("fake.ckpt", fake_zip, "ckpt")
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("fake.ckpt") && msg.contains("zip"), "{msg}");
    let msg = open_bytes("empty.ckpt", Vec::new(), "ckpt")
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("empty"), "{msg}");
    // A safetensors file cut inside its data.
    let st = std::fs::read(fixture("pair.safetensors")).unwrap();
    let msg = open_bytes(
        "cut.safetensors",
        st[..st.len() - 10].to_vec(),
        "safetensors",
    )
    .err()
    .unwrap()
    .to_string();
    assert!(msg.contains("past the end"), "{msg}");
}

#[test]
fn fuzzed_checkpoints_never_panic() {
    // Flip bytes all over a real checkpoint and read everything that still opens: each
    // outcome must be a value or an error.
    let full = std::fs::read(fixture("views.ckpt")).unwrap();
    for seed in 0..200u64 {
        let mut bytes = full.clone();
        for (i, r) in noise_bytes(8, seed).chunks(2).enumerate() {
            let at = (seed as usize * 7919 + i * 104729 + r[0] as usize * 31) % bytes.len();
            bytes[at] ^= r[1] | 1;
        }
        if let Ok(store) = open_bytes("fuzz.ckpt", bytes, "ckpt") {
            for k in store.keys() {
                let _ = store.read_f32(k);
            }
        }
    }
}

#[test]
fn fuzzed_and_truncated_pickles_never_panic() {
    // The zip CRC guards data.pkl above, so mutate the pickle itself.
    let src = MmapSource::open_arc(&fixture("views.ckpt")).unwrap();
    let zip = ZipArchive::open(src).unwrap();
    let pkl = zip.read(zip.require("views/data.pkl").unwrap()).unwrap();
    assert!(unpickle(&pkl, "views").is_ok());
    for cut in 0..pkl.len() {
        assert!(
            unpickle(&pkl[..cut], "views").is_err(),
            "cut at {cut} parsed"
        );
    }
    for seed in 0..3000u64 {
        let mut bytes = pkl.clone();
        for r in noise_bytes(6, seed).chunks(3) {
            let at = (r[0] as usize * 256 + r[1] as usize + seed as usize) % bytes.len();
            bytes[at] = r[2];
        }
        let _ = unpickle(&bytes, "fuzz");
    }
}

#[test]
fn safetensors_writer_output_reads_back() {
    let dir = std::env::temp_dir().join(format!("easel-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.safetensors");
    let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    let half: Vec<u8> = [1.0f32, -0.5].iter().flat_map(|&v| f16_bytes(v)).collect();
    safetensors::write(
        &path,
        &[
            ("a".to_string(), DType::F16, vec![2], half),
            (
                "b".to_string(),
                DType::I64,
                vec![1],
                7i64.to_le_bytes().to_vec(),
            ),
        ],
        &meta,
    )
    .unwrap();
    let store = open_tensor_store(&path).unwrap();
    assert_eq!(store.read_f32("a").unwrap(), [1.0, -0.5]);
    assert_eq!(store.read_f32("b").unwrap(), [7.0]);
    assert_eq!(store.metadata()["format"], "pt");
    // Header length is a multiple of 8 so data starts aligned, as the reference writer does.
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(u64::from_le_bytes(bytes[..8].try_into().unwrap()) % 8, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// f16 bit patterns of two exactly representable values, spelled out so the test does not
/// depend on the `half` crate.
fn f16_bytes(v: f32) -> [u8; 2] {
    match v {
        1.0 => 0x3C00u16.to_le_bytes(),
        -0.5 => 0xB800u16.to_le_bytes(),
        _ => unreachable!("only 1.0 and -0.5 are used"),
    }
}
