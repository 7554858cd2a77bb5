//! LoRA / LyCORIS against the fixture script's reference (`tests/fixtures/lora/`): A1111's
//! network math applied to the tiny model in torch, for every network type, multipliers,
//! `dyn`, several networks at once and their order; a whole txt2img with a LoRA and a
//! hypernetwork through the generation service; names, hashes and bad files. Extra-network
//! tag parsing against A1111's regex (`tests/fixtures/extra_networks/`).

use easel_candle::CandleBackend;
use easel_core::formats::{open_tensor_store, TensorStore};
use easel_core::model::{checkpoint_files, StableDiffusion, VaeChoice};
use easel_core::noise::RngKind;
use easel_core::pipeline::{encode_prompt, CancelToken};
use easel_core::registry::{SamplerRegistry, SchedulerRegistry};
use easel_core::sampler::block_on;
use easel_core::service::{GenerationService, GenerationSettings, WeightPatchProvider};
use easel_core::text::{kinds_in_order, parse_extra_networks};
use easel_core::{Backend, Result};
use easel_hypernetwork::FolderHypernetworks;
use easel_lora::{list_loras, FolderLoras, LoraRequest};
use easel_tests::{fixtures_dir, golden_path, max_rel_diff, models_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Text conditioning and UNet eps with patched weights, relative to the largest value:
/// the change is summed in a different order than torch's (observed below 1e-5).
const TOL: f32 = 1e-4;

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join("lora/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn reference() -> TensorStore {
    open_tensor_store(&fixtures_dir().join("lora/expected.safetensors")).unwrap()
}

fn tiny(
    b: &CandleBackend,
    provider: &mut FolderLoras,
    prompt: &str,
) -> (StableDiffusion<CandleBackend>, Vec<String>) {
    let (_, tags) = parse_extra_networks(prompt);
    let prepared = provider.prepare(&tags, &[]).unwrap();
    assert!(
        prepared.warnings.is_empty(),
        "{prompt}: {:?}",
        prepared.warnings
    );
    let path = models_dir().join("Stable-diffusion/tiny.ckpt");
    let files = checkpoint_files(&models_dir(), &path, &VaeChoice::Auto).unwrap();
    let model = StableDiffusion::load_patched(b, &files, prepared.patch.clone()).unwrap();
    let report = prepared.patch.map(|p| p.report()).unwrap_or_default();
    (model, report)
}

fn outputs(
    b: &CandleBackend,
    model: &StableDiffusion<CandleBackend>,
    prompt: &str,
) -> (Vec<f32>, Vec<f32>) {
    let g = open_tensor_store(&golden_path("unet.safetensors")).unwrap();
    let shape = |k: &str| g.info(k).unwrap().shape.clone();
    let x = b.upload(&g.read_f32("x").unwrap(), &shape("x")).unwrap();
    let ctx = b
        .upload(&g.read_f32("context").unwrap(), &shape("context"))
        .unwrap();
    let t = g.read_f32("t").unwrap();
    let eps = b
        .download(&model.unet.forward(b, &x, &t, &ctx, &[]).unwrap())
        .unwrap();
    let cond = block_on(encode_prompt(b, &model.clip, prompt, 1)).unwrap();
    (cond.data, eps)
}

/// Every case of the fixture script: each network type, te/unet multipliers, `dyn`, named
/// arguments, two networks, (IA)³ before and after a LoRA (order matters for it).
#[test]
fn outputs_match_a1111_math_in_torch() {
    let b = CandleBackend::cpu();
    let exp = expected();
    let r = reference();
    let prompt = exp["prompt"].as_str().unwrap();
    let mut provider = FolderLoras::new(models_dir());
    let (plain, _) = tiny(&b, &mut provider, "");
    let (cond0, eps0) = outputs(&b, &plain, prompt);
    for case in exp["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (model, report) = tiny(&b, &mut provider, case["prompt"].as_str().unwrap());
        let (cond, eps) = outputs(&b, &model, prompt);
        let want_cond = r.read_f32(&format!("cond_{name}")).unwrap();
        let want_eps = r.read_f32(&format!("eps_{name}")).unwrap();
        let (rc, re) = (
            max_rel_diff(&cond, &want_cond),
            max_rel_diff(&eps, &want_eps),
        );
        eprintln!("{name}: conditioning {rc:.2e}, eps {re:.2e}");
        assert!(rc < TOL && re < TOL, "{name}: conditioning {rc}, eps {re}");
        assert!(
            max_rel_diff(&cond0, &want_cond) > 1e-2 && max_rel_diff(&eps0, &want_eps) > 1e-2,
            "{name}: the network must matter"
        );
        // Keys that match no layer are reported, naming the file and the key.
        let unmatched: Vec<&str> = case["unmatched"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        if unmatched.is_empty() {
            assert!(report.is_empty(), "{name}: {report:?}");
        } else {
            for key in unmatched {
                assert!(
                    report
                        .iter()
                        .any(|w| w.contains(key) && w.contains(".safetensors")),
                    "{name}: {report:?}"
                );
            }
        }
    }
}

/// File names, aliases and A1111's short hashes (hashlib in the fixture script).
#[test]
fn names_and_hashes() {
    let exp = expected();
    let entries = list_loras(&models_dir());
    for (name, facts) in exp["files"].as_object().unwrap() {
        let e = easel_lora::resolve(&entries, name).unwrap_or_else(|| panic!("{name} not listed"));
        assert_eq!(e.path, fixtures_dir().join(facts["file"].as_str().unwrap()));
        assert_eq!(e.hash().unwrap(), facts["hash"].as_str().unwrap(), "{name}");
        assert_eq!(
            e.short_hash().unwrap(),
            facts["short_hash"].as_str().unwrap()
        );
    }
}

fn service() -> GenerationService<CandleBackend> {
    let mut samplers = SamplerRegistry::new();
    easel_samplers::register_all(&mut samplers);
    let mut schedulers = SchedulerRegistry::new();
    easel_samplers::register_schedulers(&mut schedulers);
    GenerationService::new(CandleBackend::cpu(), samplers, schedulers)
        .with_models_folder(models_dir())
        .with_networks(Box::new(FolderHypernetworks::new(models_dir())))
        .with_weight_patches(Box::new(FolderLoras::new(models_dir())))
}

fn settings_of(case: &Value, prompt: String) -> GenerationSettings {
    GenerationSettings {
        prompt,
        negative_prompt: case["negative"].as_str().unwrap().into(),
        steps: case["steps"].as_u64().unwrap() as usize,
        sampler: "Euler".into(),
        cfg_scale: case["cfg"].as_f64().unwrap() as f32,
        seed: case["seed"].as_u64().unwrap(),
        width: case["width"].as_u64().unwrap() as usize,
        height: case["height"].as_u64().unwrap() as usize,
        rng: RngKind::Cpu,
        model: "tiny".into(),
        ..Default::default()
    }
}

fn generate(
    svc: &mut GenerationService<CandleBackend>,
    s: &GenerationSettings,
) -> Result<Vec<easel_core::service::Generated>> {
    svc.generate_blocking(s, &mut |_| {}, &CancelToken::new())
}

/// `<lora:…>` and `<hypernet:…>` in one prompt through the service, against the torch
/// txt2img with the patched model and the hypernetwork's attention processor.
#[test]
fn txt2img_with_lora_and_hypernetwork_through_the_service() {
    let exp = expected();
    let case = &exp["txt2img"];
    let (_, want) = reference().read_raw("txt2img_lora_hypernet").unwrap();
    let mut svc = service();
    let prompt = format!(
        "{}{}",
        case["prompt"].as_str().unwrap(),
        "<lora:tiny-lora:0.8><hypernet:tiny-nai:0.5>"
    );
    let out = generate(&mut svc, &settings_of(case, prompt.clone())).unwrap();
    assert!(svc.warnings().is_empty(), "{:?}", svc.warnings());
    let got = &out[0].image.rgb;
    assert_eq!(got.len(), want.len());
    let diffs: Vec<i32> = got
        .iter()
        .zip(&want)
        .map(|(&a, &b)| (a as i32 - b as i32).abs())
        .collect();
    let max = diffs.iter().copied().max().unwrap_or(0);
    let off = diffs.iter().filter(|&&d| d != 0).count() as f64 / diffs.len() as f64;
    assert!(
        max <= 2 && off < 0.02,
        "max pixel diff {max}, {:.2}% differ",
        off * 100.0
    );
    let info = &out[0].infotext;
    assert_eq!(info.prompt, prompt);
    let short = exp["files"]["tiny-lora"]["short_hash"].as_str().unwrap();
    assert_eq!(
        info.get("Lora hashes"),
        Some(format!("tiny-lora: {short}").as_str())
    );
    assert!(info
        .format()
        .contains(&format!("Lora hashes: \"tiny-lora: {short}\"")));

    // The same set again reuses the patched model; another set reloads from the file.
    let s = settings_of(case, prompt);
    assert!(!svc.ready_model(&s).unwrap().1);
    let other = settings_of(case, "a photo of a cat<lora:tiny-lora:0.5>".into());
    assert!(svc.ready_model(&other).unwrap().1);
}

/// Unknown tag kinds are removed from the prompt and warned about (never encoded as text);
/// the negative prompt's tags are text, as in A1111; `--lora` requests and missing names.
#[test]
fn tags_are_stripped_requests_added_and_missing_names_warned() {
    let exp = expected();
    let mut case = exp["txt2img"].clone();
    case["steps"] = 2.into();
    let mut svc = service();
    let base = settings_of(&case, "a photo of a cat".into());
    let plain = generate(&mut svc, &base).unwrap().remove(0).image.rgb;

    let tagged = settings_of(&case, "a photo of a cat<foo:bar:1><lora:nope:1>".into());
    let got = generate(&mut svc, &tagged).unwrap().remove(0);
    assert_eq!(got.image.rgb, plain);
    let w = svc.warnings().join("\n");
    assert!(w.contains("`foo`") && w.contains("<foo:bar:1>"), "{w}");
    assert!(w.contains("Lora not found: nope"), "{w}");
    assert_eq!(got.infotext.get("Lora hashes"), None);

    let mut neg = base.clone();
    neg.negative_prompt = format!("{}<foo:bar>", neg.negative_prompt);
    assert_ne!(generate(&mut svc, &neg).unwrap().remove(0).image.rgb, plain);

    // A front end's own request equals the tag, and the infotext's prompt gets the tag.
    let mut requested = base.clone();
    requested.loras = vec![easel_core::service::NetworkSetting {
        name: "tiny-lora".into(),
        strength: 0.5,
    }];
    let a = generate(&mut svc, &requested).unwrap().remove(0);
    let b = generate(
        &mut svc,
        &settings_of(&case, "a photo of a cat<lora:tiny-lora:0.5>".into()),
    )
    .unwrap()
    .remove(0);
    assert_eq!(a.image.rgb, b.image.rgb);
    assert_ne!(a.image.rgb, plain);
    assert_eq!(a.infotext.prompt, "a photo of a cat<lora:tiny-lora:0.5>");
}

fn temp_models(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("easel-lora-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("Lora")).unwrap();
    d
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
}

/// Files A1111 cannot use are skipped with a warning naming the file and why; the rest
/// of the set is applied.
#[test]
fn bad_files_are_warnings_naming_the_file() {
    let models = temp_models("bad");
    let bad = fixtures_dir().join("lora/bad");
    for f in ["sdxl", "truncated", "oft", "te2"] {
        copy(
            &bad.join(format!("{f}.safetensors")),
            &models.join(format!("Lora/{f}.safetensors")),
        );
    }
    copy(
        &models_dir().join("Lora/tiny-lora.safetensors"),
        &models.join("Lora/good.safetensors"),
    );
    let mut p = FolderLoras::new(&models);
    let prompt = "<lora:sdxl:1><lora:truncated:1><lora:oft:1><lora:te2:1><lora:good:1>";
    let (_, tags) = parse_extra_networks(prompt);
    let prepared = p.prepare(&tags, &[]).unwrap();
    let w = prepared.warnings.join("\n");
    eprintln!("{w}");
    for (file, why) in [
        ("sdxl.safetensors", "SDXL"),
        ("truncated.safetensors", "truncated.safetensors"),
        ("oft.safetensors", "oft_blocks"),
        ("te2.safetensors", "lora_te2_"),
    ] {
        assert!(
            prepared
                .warnings
                .iter()
                .any(|l| l.contains(file) && l.contains(why)),
            "{file}: {w}"
        );
    }
    let patch = prepared.patch.expect("the good file is applied");
    assert!(prepared.key.contains("good.safetensors") && !prepared.key.contains("sdxl"));
    drop(patch);

    // A malformed number skips every LoRA of the prompt, as A1111's activate raises.
    let (_, tags) = parse_extra_networks("<lora:good:1><lora:good:strong>");
    let prepared = p.prepare(&tags, &[]).unwrap();
    assert!(prepared.patch.is_none());
    assert!(
        prepared.warnings[0].contains("strong"),
        "{:?}",
        prepared.warnings
    );
    let _ = std::fs::remove_dir_all(&models);
}

/// A pasted `Lora hashes` finds a renamed copy of the file by its hash (A1111's paste).
#[test]
fn pasted_hashes_rename_to_local_files() {
    let models = temp_models("paste");
    copy(
        &models_dir().join("Lora/tiny-ia3.safetensors"),
        &models.join("Lora/my-copy.safetensors"),
    );
    let exp = expected();
    let short = exp["files"]["tiny-ia3"]["short_hash"].as_str().unwrap();
    let entries = list_loras(&models);
    let prompt = easel_lora::rename_by_pasted_hashes(
        "x <lora:tiny-ia3:0.5>, <lora:other:1>",
        &format!("tiny-ia3: {short}, other: 000000000000"),
        &entries,
        &mut |e| e.short_hash().ok(),
    );
    assert_eq!(prompt, "x <lora:my-copy:0.5>, <lora:other:1>");
    let _ = std::fs::remove_dir_all(&models);
}

/// Tag parsing and LoRA parameters against A1111's regex and `ExtraNetworkParams` /
/// `ExtraNetworkLora.activate`, as the fixture script runs them.
#[test]
fn extra_network_tags_match_a1111() {
    let text =
        std::fs::read_to_string(fixtures_dir().join("extra_networks/expected.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    for case in &cases {
        let prompt = case["prompt"].as_str().unwrap();
        let (stripped, tags) = parse_extra_networks(prompt);
        assert_eq!(stripped, case["stripped"].as_str().unwrap(), "{prompt}");
        let want_tags = case["tags"].as_array().unwrap();
        assert_eq!(tags.len(), want_tags.len(), "{prompt}");
        for (t, w) in tags.iter().zip(want_tags) {
            assert_eq!(t.kind, w["kind"].as_str().unwrap());
            assert_eq!(t.text, w["text"].as_str().unwrap());
            let args: Vec<&str> = w["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(t.args, args);
            let pos: Vec<&str> = w["positional"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(t.positional(), pos, "{prompt}");
            for (k, v) in w["named"].as_object().unwrap() {
                assert_eq!(t.named(k), v.as_str(), "{prompt}: {k}");
            }
        }
        let lora_tags: Vec<_> = kinds_in_order(&tags)
            .into_iter()
            .filter(|k| *k == "lora" || *k == "lyco")
            .flat_map(|k| tags.iter().filter(move |t| t.kind == k))
            .collect();
        let want = case["loras"].as_array().unwrap();
        assert_eq!(lora_tags.len(), want.len(), "{prompt}");
        for (t, w) in lora_tags.iter().zip(want) {
            match LoraRequest::from_tag(t) {
                Ok(r) => {
                    assert!(
                        w.get("error").is_none(),
                        "{prompt}: A1111 fails on {}",
                        t.text
                    );
                    assert_eq!(r.name, w["name"].as_str().unwrap());
                    assert_eq!(
                        r.te_multiplier,
                        w["te"].as_f64().unwrap() as f32,
                        "{prompt}"
                    );
                    assert_eq!(
                        r.unet_multiplier,
                        w["unet"].as_f64().unwrap() as f32,
                        "{prompt}"
                    );
                    assert_eq!(r.dyn_dim, w["dyn"].as_i64(), "{prompt}");
                }
                Err(e) => assert!(w.get("error").is_some(), "{prompt}: {e}"),
            }
        }
    }
}

/// The page's way: the checkpoint and the LoRA files given as byte sources, no models
/// folder. `PickedLoras` names, hashes and reads them as `FolderLoras` does, and the service
/// loads the checkpoint again from its sources for each LoRA set: the images and infotexts
/// equal the folder's, and going back to no LoRA gives the plain image again.
#[test]
fn picked_files_and_model_sources_equal_the_folder() {
    use easel_core::io::{ByteSource, MemorySource};
    use easel_core::model::CheckpointSources;
    use std::sync::Arc;
    let exp = expected();
    let mut case = exp["txt2img"].clone();
    case["steps"] = 2.into();
    let prompt = "a photo of a cat<lora:tiny-lora:0.7><lora:tiny-ia3:0.5>";
    let mut folder = service();
    let want = generate(&mut folder, &settings_of(&case, prompt.into()))
        .unwrap()
        .remove(0);
    let plain = generate(&mut folder, &settings_of(&case, "a photo of a cat".into()))
        .unwrap()
        .remove(0);

    let source = |p: &Path| -> Arc<dyn ByteSource> {
        Arc::new(MemorySource::new(
            p.file_name().unwrap().to_string_lossy(),
            std::fs::read(p).unwrap(),
        ))
    };
    let picked: Vec<(String, Arc<dyn ByteSource>)> = list_loras(&models_dir())
        .iter()
        .map(|e| {
            let name = e.path.file_name().unwrap().to_string_lossy().to_string();
            (name, source(&e.path))
        })
        .collect();
    let mut samplers = SamplerRegistry::new();
    easel_samplers::register_all(&mut samplers);
    let mut schedulers = SchedulerRegistry::new();
    easel_samplers::register_schedulers(&mut schedulers);
    let mut page = GenerationService::new(CandleBackend::cpu(), samplers, schedulers)
        .with_weight_patches(Box::new(easel_lora::PickedLoras::new(picked).unwrap()));
    let sd = models_dir().join("Stable-diffusion");
    let info = page
        .set_model_sources(CheckpointSources {
            checkpoint: source(&sd.join("tiny.ckpt")),
            checkpoint_name: "tiny.ckpt".into(),
            config: Some((
                "tiny.yaml".into(),
                std::fs::read_to_string(sd.join("tiny.yaml")).unwrap(),
            )),
            vae: Some(("tiny.vae.pt".into(), source(&sd.join("tiny.vae.pt")))),
        })
        .unwrap();
    assert_eq!(info.name, "tiny");
    let got = generate(&mut page, &settings_of(&case, prompt.into()))
        .unwrap()
        .remove(0);
    assert!(got.image.rgb == want.image.rgb, "LoRA image differs");
    assert_eq!(got.infotext.format(), want.infotext.format());
    assert!(got.infotext.get("Lora hashes").is_some());
    let back = generate(&mut page, &settings_of(&case, "a photo of a cat".into()))
        .unwrap()
        .remove(0);
    assert!(
        back.image.rgb == plain.image.rgb,
        "the LoRA stayed in the weights"
    );
}
