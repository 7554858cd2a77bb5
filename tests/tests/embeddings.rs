//! Textual-inversion embeddings against `fixtures/embeddings/expected.json` and
//! `expected.tensors`, written by `fixtures/embeddings/make_embedding_fixtures.py` with
//! A1111's loader, `EmbeddingDatabase`, `tokenize_line` and `EmbeddingsWithFixes` reproduced
//! on torch and transformers' CLIP of the tiny model: files of every format, token chunks
//! (single and multi-vector, emphasis, chunk boundary, comma backtrack, prefix names, case),
//! conditioning, `TI hashes`, registration rules and bad files.

use easel_candle::CandleBackend;
use easel_core::embeddings::{
    check_ti_hashes, load_embedding_file, load_embeddings_folder, parse_ti_hashes, ti_hashes,
    EmbeddingDatabase, TI_HASHES_KEY,
};
use easel_core::formats::{open_tensor_store, TensorStore};
use easel_core::infotext::Infotext;
use easel_core::model::{checkpoint_files, StableDiffusion, VaeChoice};
use easel_core::pipeline::{encode_scheduled, CancelToken, PromptOptions};
use easel_core::registry::{SamplerRegistry, SchedulerRegistry};
use easel_core::sampler::block_on;
use easel_core::service::{GenerationService, GenerationSettings};
use easel_core::text::{tokenize_prompt_with_embeddings, ChunkOptions};
use easel_tests::{fixtures_dir, max_rel_diff, models_dir};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// The tiny model's CLIP width.
const WIDTH: usize = 128;

fn dir() -> PathBuf {
    fixtures_dir().join("embeddings")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn tensors() -> TensorStore {
    open_tensor_store(&dir().join("expected.tensors")).unwrap()
}

fn database() -> EmbeddingDatabase {
    let db = load_embeddings_folder(&dir(), WIDTH);
    assert!(db.warnings().is_empty(), "{:?}", db.warnings());
    db
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_format_loads_as_a1111_reads_it() {
    let db = database();
    let store = tensors();
    let exp = expected();
    let want = exp["embeddings"].as_array().unwrap();
    assert_eq!(db.embeddings().len(), want.len());
    for w in want {
        let name = w["name"].as_str().unwrap();
        let e = db.get(name).unwrap_or_else(|| panic!("{name} not loaded"));
        assert_eq!(e.vectors as u64, w["vectors"].as_u64().unwrap(), "{name}");
        assert_eq!(e.width as u64, w["width"].as_u64().unwrap(), "{name}");
        assert_eq!(e.sha256, w["sha256"].as_str().unwrap(), "{name}");
        assert_eq!(e.step, w["step"].as_i64(), "{name}");
        assert_eq!(
            e.sd_checkpoint.as_deref(),
            w["sd_checkpoint"].as_str(),
            "{name}"
        );
        assert_eq!(
            e.sd_checkpoint_name.as_deref(),
            w["sd_checkpoint_name"].as_str(),
            "{name}"
        );
        assert_eq!(
            e.path,
            fixtures_dir().join(w["file"].as_str().unwrap()),
            "{name}"
        );
        // float32 copies of the stored values (f16 for quadstyle): exact.
        assert_eq!(
            e.data,
            store.read_f32(&format!("emb.{name}")).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn chunks_match_a1111_tokenize_line() {
    let db = database();
    for case in expected()["chunk_cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let prompt = case["prompt"].as_str().unwrap();
        let t = tokenize_prompt_with_embeddings(prompt, ChunkOptions::default(), Some(&db))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            t.token_count as u64,
            case["token_count"].as_u64().unwrap(),
            "{name}: token count"
        );
        let want = case["chunks"].as_array().unwrap();
        assert_eq!(t.chunks.len(), want.len(), "{name}: chunk count");
        for (i, (got, w)) in t.chunks.iter().zip(want).enumerate() {
            let tokens: Vec<u32> = w["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(got.tokens.to_vec(), tokens, "{name}: chunk {i} tokens");
            for (j, (g, m)) in got
                .multipliers
                .iter()
                .zip(w["multipliers"].as_array().unwrap())
                .enumerate()
            {
                let m = m.as_f64().unwrap();
                assert!(
                    (f64::from(*g) - m).abs() <= 1e-6,
                    "{name}: chunk {i} multiplier {j}: {g} vs {m}"
                );
            }
            let fixes: Vec<(u64, String)> = got
                .fixes
                .iter()
                .map(|f| (f.position as u64, f.embedding.name.clone()))
                .collect();
            let want_fixes: Vec<(u64, String)> = w["fixes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| (f[0].as_u64().unwrap(), f[1].as_str().unwrap().to_string()))
                .collect();
            assert_eq!(fixes, want_fixes, "{name}: chunk {i} embeddings");
        }
    }
}

#[test]
fn conditioning_with_embeddings_matches_a1111() {
    let files = checkpoint_files(
        &models_dir(),
        &models_dir().join("Stable-diffusion/tiny.ckpt"),
        &VaeChoice::Auto,
    )
    .unwrap();
    let b = CandleBackend::cpu();
    let model = StableDiffusion::load(&b, &files).unwrap();
    let store = tensors();
    let options = PromptOptions {
        embeddings: Some(Arc::new(database())),
        ..PromptOptions::default()
    };
    for case in expected()["cond_cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let prompt = case["prompt"].as_str().unwrap();
        let skip = case["clip_skip"].as_u64().unwrap() as usize;
        let cond = block_on(encode_scheduled(
            &b,
            &model.clip,
            prompt,
            20,
            skip,
            &options,
        ))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = &cond.conds[0].data;
        let want = store.read_f32(&format!("cond.{name}")).unwrap();
        assert_eq!(got.len(), want.len(), "{name}: token count");
        let rel = max_rel_diff(got, &want);
        eprintln!("{name}: conditioning max relative difference {rel:.2e}");
        // f32 CLIP vs torch, as for prompts without embeddings.
        assert!(rel < 1e-5, "{name}: relative difference {rel}");
    }
}

#[test]
fn ti_hashes_field_matches_a1111() {
    let db = database();
    for case in expected()["ti_hashes"].as_array().unwrap() {
        let prompt = case["prompt"].as_str().unwrap();
        let negative = case["negative"].as_str().unwrap();
        let got = ti_hashes(prompt, negative, 20, ChunkOptions::default(), &db).unwrap();
        assert_eq!(
            got.as_deref(),
            case["value"].as_str(),
            "{prompt:?} / {negative:?}"
        );
    }
}

#[test]
fn generated_infotext_names_used_embeddings_and_reads_back() {
    let mut samplers = SamplerRegistry::new();
    easel_samplers::register_all(&mut samplers);
    let mut schedulers = SchedulerRegistry::new();
    easel_samplers::register_schedulers(&mut schedulers);
    // The embeddings folder beside the models folder, as A1111 lays it out.
    let mut service = GenerationService::new(CandleBackend::cpu(), samplers, schedulers)
        .with_models_folder(models_dir());
    assert_eq!(service.embeddings_folder(), Some(dir()));
    let case = expected()["ti_hashes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["negative"] == "tinyneg")
        .unwrap()
        .clone();
    let settings = GenerationSettings {
        prompt: case["prompt"].as_str().unwrap().into(),
        negative_prompt: case["negative"].as_str().unwrap().into(),
        steps: 2,
        sampler: "Euler".into(),
        width: 64,
        height: 64,
        model: "tiny".into(),
        ..GenerationSettings::default()
    };
    let out = block_on(service.generate(&settings, &mut |_| {}, &CancelToken::new())).unwrap();
    let text = out[0].infotext.format();
    let value = case["value"].as_str().unwrap();
    assert!(
        text.contains(&format!("{TI_HASHES_KEY}: \"{value}\"")),
        "{text}"
    );
    let back = Infotext::parse(&text);
    assert_eq!(back.get(TI_HASHES_KEY), Some(value));
    // Read back against the folder: every name exists with its hash.
    assert!(check_ti_hashes(value, &dir()).is_empty());
    assert_eq!(parse_ti_hashes(value).len(), 3);

    // A prompt without embeddings writes no field.
    let plain = GenerationSettings {
        prompt: "a cat".into(),
        negative_prompt: String::new(),
        ..settings
    };
    let out = block_on(service.generate(&plain, &mut |_| {}, &CancelToken::new())).unwrap();
    assert!(!out[0].infotext.format().contains(TI_HASHES_KEY));
}

#[test]
fn pasted_ti_hashes_warn_for_missing_or_changed_files() {
    let db = database();
    let tinyneg = db.get("tinyneg").unwrap();
    let value = format!(
        "tinyneg: {}, quadstyle: 000000000000, nosuchembedding: 123456789abc",
        tinyneg.short_hash()
    );
    let warnings = check_ti_hashes(&value, &dir());
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("quadstyle.pt") && warnings[0].contains("000000000000"));
    assert!(warnings[1].contains("nosuchembedding"));
}

#[test]
fn bad_files_are_reported_by_name_and_the_rest_loads() {
    let bad = fixtures_dir().join("embeddings-bad");
    let db = load_embeddings_folder(&bad, WIDTH);
    let exp = expected();
    let registered: Vec<String> = db.embeddings().iter().map(|e| e.name.clone()).collect();
    assert_eq!(registered, names(&exp["bad"]["registered"]));
    let mut skipped: Vec<String> = db.skipped().iter().map(|e| e.name.clone()).collect();
    skipped.sort();
    assert_eq!(skipped, names(&exp["bad"]["skipped"]));
    // Each unreadable file is named in its message, and only those.
    let errors = db.errors();
    let want = names(&exp["bad"]["errors"]);
    assert_eq!(errors.len(), want.len(), "{errors:?}");
    for file in &want {
        assert!(
            errors.iter().any(|e| e.contains(file.as_str())),
            "{file}: {errors:?}"
        );
    }
    let forbidden = errors.iter().find(|e| e.contains("forbidden.pt")).unwrap();
    assert!(forbidden.contains("system"), "{forbidden}");
    let twoterms = errors.iter().find(|e| e.contains("twoterms")).unwrap();
    assert!(twoterms.contains("2 terms"), "{twoterms}");
    // Wrong widths are warnings naming the file and both widths.
    let warnings = db.warnings().join("\n");
    assert!(
        warnings.contains("wrongwidth.pt") && warnings.contains("96"),
        "{warnings}"
    );
    assert!(
        warnings.contains("sdxl.safetensors") && warnings.contains("2048"),
        "{warnings}"
    );

    // A prompt naming a skipped embedding tokenizes as plain words; generation goes on.
    let t = tokenize_prompt_with_embeddings("good wrongwidth", ChunkOptions::default(), Some(&db))
        .unwrap();
    assert_eq!(t.chunks[0].fixes.len(), 1);
    assert_eq!(t.chunks[0].fixes[0].embedding.name, "good");

    // Loading the forbidden file alone is an error naming it and the global.
    let err = load_embedding_file(&bad.join("forbidden.pt"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("forbidden.pt") && err.contains("system"),
        "{err}"
    );
    // Files that are no embeddings are passed over.
    assert!(load_embedding_file(&bad.join("notes.txt"))
        .unwrap()
        .is_none());
}

#[test]
fn duplicate_and_same_token_names_follow_a1111() {
    let dupes = fixtures_dir().join("embeddings-dupes");
    let db = load_embeddings_folder(&dupes, WIDTH);
    assert!(db.warnings().is_empty(), "{:?}", db.warnings());
    let exp = &expected()["dupes"];
    let mut registered: Vec<String> = db.embeddings().iter().map(|e| e.name.clone()).collect();
    registered.sort();
    assert_eq!(registered, names(&exp["registered"]));
    let store = tensors();
    let dup = db.get("dup").unwrap();
    assert_eq!(
        dup.path,
        fixtures_dir().join(exp["dup_file"].as_str().unwrap())
    );
    assert_eq!(dup.data, store.read_f32("dupes.dup").unwrap());
    let t = tokenize_prompt_with_embeddings("twin", ChunkOptions::default(), Some(&db)).unwrap();
    assert_eq!(
        t.chunks[0].fixes[0].embedding.name,
        exp["match_twin"].as_str().unwrap()
    );
}

/// The browser's way in: the same files given as byte sources (in the folder's scan order)
/// make the same database as the folder: names, vectors, widths and file hashes.
#[test]
fn embeddings_from_sources_equal_the_folders() {
    let folder = database();
    let files: Vec<(String, Arc<dyn easel_core::io::ByteSource>)> =
        easel_core::embeddings::embedding_files(&dir())
            .into_iter()
            .map(|p| {
                let name = p.file_name().unwrap().to_str().unwrap().to_string();
                let source: Arc<dyn easel_core::io::ByteSource> = Arc::new(
                    easel_core::io::MemorySource::new(&name, std::fs::read(&p).unwrap()),
                );
                (name, source)
            })
            .collect();
    let sources = easel_core::embeddings::load_embedding_sources(&files, WIDTH);
    assert!(sources.warnings().is_empty(), "{:?}", sources.warnings());
    let summary = |db: &EmbeddingDatabase| -> Vec<(String, usize, usize, String, Vec<f32>)> {
        db.embeddings()
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    e.vectors,
                    e.width,
                    e.sha256.clone(),
                    e.data.clone(),
                )
            })
            .collect()
    };
    assert!(!folder.embeddings().is_empty());
    assert_eq!(summary(&sources), summary(&folder));
}
