//! Hypernetworks (NovelAI and A1111 formats) against torch: module outputs, the tiny UNet's
//! eps with hypernetworks applied in every attention layer the A1111 way, and a whole
//! txt2img. References come from `tests/fixtures/hypernetworks/make_hypernetwork_fixtures.py`
//! (`expected.json` + `expected.safetensors`). Also: loading metadata, models-folder
//! discovery and name matching, prompt tags, infotext entries, and refused files.

use easel_candle::CandleBackend;
use easel_core::formats::{open_tensor_store, TensorStore};
use easel_core::model::{checkpoint_files, StableDiffusion, VaeChoice};
use easel_core::nn::{AttentionHook, UNet, UNetConfig, Weights};
use easel_core::noise::RngKind;
use easel_core::pipeline::{txt2img, Txt2ImgParams};
use easel_core::sampler::block_on;
use easel_core::{Backend, Error};
use easel_hypernetwork::{
    extract_hypernet_tags, find_closest, find_for_infotext, infotext_fields, list_hypernetworks,
    resolve, Hypernetwork, HypernetworkFormat, HypernetworkStack, LoadedHypernetwork,
};
use easel_tests::{fixtures_dir, max_rel_diff, models_dir};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Module outputs (two Linears, maybe a norm and an activation, f32): observed 3.5e-7.
const MODULE_TOL: f32 = 2e-6;
/// UNet eps with hypernetworks, relative to the largest |eps|: observed 1.9e-6 (the plain
/// UNet test allows 2e-5 for 1.6e-6 observed).
const UNET_TOL: f32 = 2e-5;

fn dir() -> PathBuf {
    fixtures_dir().join("hypernetworks")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn golden() -> TensorStore {
    open_tensor_store(&dir().join("expected.safetensors")).unwrap()
}

fn tensor(store: &TensorStore, key: &str) -> (Vec<f32>, Vec<usize>) {
    (
        store.read_f32(key).unwrap(),
        store.info(key).unwrap().shape.clone(),
    )
}

/// The model folder's hypernetworks by the fixture script's keys (`nai`, `relu_ln`, `swish`).
fn model_hypernetworks() -> HashMap<String, Hypernetwork> {
    let exp = expected();
    exp["files"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, facts)| {
            let path = fixtures_dir().join(facts["file"].as_str().unwrap());
            (key.clone(), Hypernetwork::load(&path).unwrap())
        })
        .collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    let rel = max_rel_diff(got, want);
    println!("{what}: max relative difference {rel:e}");
    assert!(rel < tol, "{what}: max relative difference {rel} > {tol}");
}

#[test]
fn both_formats_load_with_their_metadata() {
    let exp = expected();
    let hns = model_hypernetworks();
    for (key, facts) in exp["files"].as_object().unwrap() {
        let hn = &hns[key];
        assert_eq!(hn.name, facts["name"].as_str().unwrap(), "{key}");
        let widths: Vec<usize> = facts["widths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(hn.widths(), widths, "{key}");
        assert_eq!(hn.step, facts["step"].as_i64(), "{key}");
        assert_eq!(
            hn.sd_checkpoint.as_deref(),
            facts["sd_checkpoint"].as_str(),
            "{key}"
        );
        assert_eq!(
            hn.sd_checkpoint_name.as_deref(),
            facts["sd_checkpoint_name"].as_str(),
            "{key}"
        );
        let ls: Vec<f64> = facts["layer_structure"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(hn.structure.layer_structure, ls, "{key}");
        assert_eq!(
            hn.structure.activation_func.as_deref(),
            facts["activation_func"].as_str(),
            "{key}"
        );
        assert_eq!(
            hn.structure.layer_norm,
            facts["is_layer_norm"].as_bool().unwrap(),
            "{key}"
        );
        assert_eq!(
            hn.structure.activate_output,
            facts["activate_output"].as_bool().unwrap(),
            "{key}"
        );
    }
    assert_eq!(hns["nai"].format, HypernetworkFormat::NovelAi);
    assert_eq!(hns["relu_ln"].format, HypernetworkFormat::A1111);
}

/// Every width of every model hypernetwork and every supported activation, on the backend
/// (the path the UNet uses) and on the host reference implementation.
#[test]
fn module_outputs_match_torch() {
    let b = CandleBackend::cpu();
    let exp = expected();
    let g = golden();
    let hns = model_hypernetworks();
    let mut activations_seen = 0;
    for case in exp["module_cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let width = case["width"].as_u64().unwrap() as usize;
        let strength = case["strength"].as_f64().unwrap() as f32;
        let hn = match case.get("file").and_then(Value::as_str) {
            Some(file) => {
                activations_seen += 1;
                Hypernetwork::load(&fixtures_dir().join(file)).unwrap()
            }
            None => hns[case["hypernet"].as_str().unwrap()].clone(),
        };
        let (x, shape) = tensor(&g, &format!("{name}_x"));
        let (want_k, _) = tensor(&g, &format!("{name}_k"));
        let (want_v, _) = tensor(&g, &format!("{name}_v"));

        let loaded = Arc::new(LoadedHypernetwork::upload(&b, &hn).unwrap());
        let stack = HypernetworkStack::new(vec![(loaded, strength)]);
        let (k, v) = stack
            .apply(&b, &b.upload(&x, &shape).unwrap(), width)
            .unwrap()
            .expect("width covered");
        assert_close(
            &format!("{name} key"),
            &b.download(&k).unwrap(),
            &want_k,
            MODULE_TOL,
        );
        assert_close(
            &format!("{name} value"),
            &b.download(&v).unwrap(),
            &want_v,
            MODULE_TOL,
        );

        let pair = &hn.modules[&width];
        assert_close(
            &format!("{name} key (host)"),
            &pair.key.forward_host(&x, strength),
            &want_k,
            MODULE_TOL,
        );
        assert_close(
            &format!("{name} value (host)"),
            &pair.value.forward_host(&x, strength),
            &want_v,
            MODULE_TOL,
        );
    }
    assert_eq!(
        activations_seen,
        exp["supported_activations"].as_array().unwrap().len()
    );
    assert_eq!(activations_seen, easel_hypernetwork::SUPPORTED_NAMES.len());
}

fn tiny_unet(b: &CandleBackend) -> UNet<CandleBackend> {
    let store = open_tensor_store(&models_dir().join("Stable-diffusion/tiny.ckpt")).unwrap();
    let config = UNetConfig {
        model_channels: 32,
        attention_resolutions: vec![4, 2, 1],
        channel_mult: vec![1, 1, 2, 2],
        context_dim: 128,
        ..UNetConfig::sd15()
    };
    UNet::load(b, &Weights::new(&store, "model.diffusion_model"), &config).unwrap()
}

fn stack_of(
    b: &CandleBackend,
    hns: &HashMap<String, Hypernetwork>,
    chain: &Value,
) -> HypernetworkStack<CandleBackend> {
    let entries = chain
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            let hn = &hns[pair[0].as_str().unwrap()];
            (
                Arc::new(LoadedHypernetwork::upload(b, hn).unwrap()),
                pair[1].as_f64().unwrap() as f32,
            )
        })
        .collect();
    HypernetworkStack::new(entries)
}

/// NovelAI format at strength 1, A1111 format with ReLU + layer norm (and a dropout index)
/// at 0.5, and two chains (K and V paths chained separately), against diffusers' UNet with
/// an attention processor doing what A1111's patched attention does.
#[test]
fn unet_eps_with_hypernetworks_matches_torch() {
    let b = CandleBackend::cpu();
    let unet = tiny_unet(&b);
    let exp = expected();
    let g = golden();
    let hns = model_hypernetworks();
    let (x, xs) = tensor(&g, "unet_x");
    let (t, _) = tensor(&g, "unet_t");
    let (ctx, cs) = tensor(&g, "unet_context");
    let (x, ctx) = (b.upload(&x, &xs).unwrap(), b.upload(&ctx, &cs).unwrap());
    let run = |hooks: &[&dyn AttentionHook<CandleBackend>]| {
        b.download(&unet.forward(&b, &x, &t, &ctx, hooks).unwrap())
            .unwrap()
    };
    let plain = run(&[]);
    for case in exp["unet_cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let stack = stack_of(&b, &hns, &case["chain"]);
        let eps = run(&[&stack]);
        let want = g.read_f32(&format!("unet_{name}")).unwrap();
        assert!(
            max_rel_diff(&want, &plain) > 1e-2,
            "{name}: the hypernetwork must matter"
        );
        assert_close(&format!("eps {name}"), &eps, &want, UNET_TOL);
    }
}

/// A hypernetwork with modules only for widths the UNet never sees changes nothing, and an
/// empty stack is no hook at all.
#[test]
fn widths_the_model_does_not_use_are_skipped() {
    let b = CandleBackend::cpu();
    let hns = model_hypernetworks();
    let mut only_16 = hns["nai"].clone();
    only_16.modules.retain(|&w, _| w == 16);
    let stack = HypernetworkStack::new(vec![(
        Arc::new(LoadedHypernetwork::upload(&b, &only_16).unwrap()),
        1.0,
    )]);
    let ctx = b.upload(&[0.5; 2 * 3 * 32], &[2, 3, 32]).unwrap();
    assert!(stack.apply(&b, &ctx, 32).unwrap().is_none());
    let empty = HypernetworkStack::<CandleBackend>::new(Vec::new());
    assert!(empty.is_empty() && empty.apply(&b, &ctx, 32).unwrap().is_none());

    let unet = tiny_unet(&b);
    let g = golden();
    let (x, xs) = tensor(&g, "unet_x");
    let (t, _) = tensor(&g, "unet_t");
    let (c, cs) = tensor(&g, "unet_context");
    let (x, c) = (b.upload(&x, &xs).unwrap(), b.upload(&c, &cs).unwrap());
    let plain = b
        .download(&unet.forward(&b, &x, &t, &c, &[]).unwrap())
        .unwrap();
    let skipped = b
        .download(&unet.forward(&b, &x, &t, &c, &[&stack]).unwrap())
        .unwrap();
    assert_eq!(plain, skipped);
}

/// The whole pipeline with `<hypernet:tiny-nai>` resolved from the models folder, against
/// A1111-style txt2img in torch (Euler, CPU noise, CFG 7.5, 6 steps).
#[test]
fn txt2img_with_a_hypernetwork_matches_reference() {
    let b = CandleBackend::cpu();
    let exp = expected();
    let case = &exp["txt2img_cases"][0];
    let g = golden();
    let (_, want) = g
        .read_raw(&format!("txt2img_{}", case["name"].as_str().unwrap()))
        .unwrap();

    let prompt = format!("{}<hypernet:tiny-nai>", case["prompt"].as_str().unwrap());
    let (cleaned, requests) = extract_hypernet_tags(&prompt).unwrap();
    assert_eq!(cleaned, case["prompt"].as_str().unwrap());
    let entries = list_hypernetworks(&models_dir());
    let stack = HypernetworkStack::new(
        requests
            .iter()
            .map(|r| {
                let hn = resolve(&entries, &r.name).unwrap().load().unwrap();
                (
                    Arc::new(LoadedHypernetwork::upload(&b, &hn).unwrap()),
                    r.strength,
                )
            })
            .collect(),
    );

    let path = models_dir()
        .join("Stable-diffusion")
        .join(case["model"].as_str().unwrap());
    let files = checkpoint_files(&models_dir(), &path, &VaeChoice::Auto).unwrap();
    let model = StableDiffusion::load(&b, &files).unwrap();
    let (sampler, scheduler) =
        easel_tests::sampler_and_schedule(case["sampler"].as_str().unwrap(), None);
    let params = Txt2ImgParams {
        downcast_alphas_cumprod: false,
        vae_decoder: Default::default(),
        vae_encoder: Default::default(),
        vae_tiling: false,
        prompt: cleaned,
        negative_prompt: case["negative"].as_str().unwrap().to_string(),
        steps: case["steps"].as_u64().unwrap() as usize,
        cfg_scale: case["cfg"].as_f64().unwrap() as f32,
        seed: case["seed"].as_u64().unwrap(),
        width: case["width"].as_u64().unwrap() as usize,
        height: case["height"].as_u64().unwrap() as usize,
        batch_size: 1,
        clip_skip: 1,
        rng: RngKind::Cpu,
        noise_device: Default::default(),
        ensd: 0,
        sampler,
        scheduler,
    };
    let images = block_on(txt2img(
        &b,
        &model,
        &params,
        vec![&stack],
        &mut |_, _, _| {},
    ))
    .unwrap();
    let got = &images[0].rgb;
    assert_eq!(got.len(), want.len());
    // As the plain txt2img test: truncation to u8 turns tiny float differences into an
    // occasional off-by-one.
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
}

#[test]
fn discovery_and_name_matching_follow_a1111() {
    let exp = expected();
    let entries = list_hypernetworks(&models_dir());
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    // Sorted by lower-cased path: `a1111/…` before `tiny-nai.pt`.
    assert_eq!(names, ["tiny-relu-ln", "tiny-swish", "tiny-nai"]);
    assert_eq!(
        entries[0].stored_name().unwrap().as_deref(),
        Some("relu-ln")
    );
    assert_eq!(entries[2].stored_name().unwrap(), None);
    assert_eq!(entries[2].display_name(), "tiny-nai");

    assert_eq!(resolve(&entries, "tiny-nai").unwrap().name, "tiny-nai");
    assert_eq!(resolve(&entries, "TINY-SWISH").unwrap().name, "tiny-swish");
    assert_eq!(resolve(&entries, "swish").unwrap().name, "tiny-swish");
    assert_eq!(find_closest(&entries, "tiny").unwrap().name, "tiny-nai");
    let err = resolve(&entries, "anime").unwrap_err().to_string();
    assert!(err.contains("`anime`") && err.contains("tiny-nai"), "{err}");
    let by_path = resolve(&entries, entries[1].path.to_str().unwrap()).unwrap();
    assert_eq!(by_path.path, entries[1].path);

    // Hashes vs Python's hashlib.
    for facts in exp["files"].as_object().unwrap().values() {
        let stem = facts["stem"].as_str().unwrap();
        let e = entries.iter().find(|e| e.name == stem).unwrap();
        assert_eq!(e.hash().unwrap(), facts["legacy_hash"].as_str().unwrap());
    }
    // Infotext lookup: by stem prefix, else by the stored name.
    assert_eq!(
        find_for_infotext(&entries, "tiny-n", None).unwrap().name,
        "tiny-nai"
    );
    assert_eq!(
        find_for_infotext(&entries, "swish", None).unwrap().name,
        "tiny-swish"
    );
    assert!(find_for_infotext(&entries, "pony", Some("0123abcd")).is_none());
}

#[test]
fn infotext_entries() {
    let hns = model_hypernetworks();
    let exp = expected();
    let hash = exp["files"]["nai"]["legacy_hash"]
        .as_str()
        .unwrap()
        .to_string();
    let kv = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(infotext_fields(&[]).unwrap(), vec![]);
    assert_eq!(
        infotext_fields(&[(&hns["nai"], 1.0)]).unwrap(),
        kv(&[("Hypernet", "tiny-nai"), ("Hypernet hash", &hash)])
    );
    assert_eq!(
        infotext_fields(&[(&hns["relu_ln"], 0.5)]).unwrap(),
        kv(&[
            ("Hypernet", "relu-ln"),
            ("Hypernet hash", &hash),
            ("Hypernet strength", "0.5")
        ])
    );
    let two = infotext_fields(&[(&hns["nai"], 1.0), (&hns["swish"], 0.8)]).unwrap();
    assert_eq!(two[0].1, "tiny-nai, swish");
    assert_eq!(
        two[2],
        ("Hypernet strength".to_string(), "1, 0.8".to_string())
    );
}

#[test]
fn bad_files_are_refused_naming_file_and_key() {
    let bad = dir().join("bad");
    let err = |f: &str| Hypernetwork::load(&bad.join(f)).unwrap_err();

    match err("wrong-width.pt") {
        Error::Shape {
            file,
            key,
            got,
            expected,
        } => {
            assert!(file.contains("wrong-width.pt"), "{file}");
            assert_eq!(key, "64.0.linear.0.weight");
            assert_eq!((got, expected), (vec![64, 32], vec![128, 64]));
        }
        other => panic!("wrong width: {other}"),
    }
    match err("missing-key.pt") {
        Error::MissingKey { file, key } => {
            assert!(file.contains("missing-key.pt"), "{file}");
            assert_eq!(key, "32.1.linear.1.weight");
        }
        other => panic!("missing key: {other}"),
    }
    for (file, needle) in [
        ("unknown-activation.pt", "`bogus`"),
        ("no-modules.pt", "not a hypernetwork"),
        ("truncated.pt", "truncated.pt"),
    ] {
        let msg = err(file).to_string();
        assert!(msg.contains(file) && msg.contains(needle), "{file}: {msg}");
    }
    // A model checkpoint is not a hypernetwork either.
    let msg = Hypernetwork::load(&models_dir().join("Stable-diffusion/tiny.vae.pt"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("tiny.vae.pt") && msg.contains("not a hypernetwork"),
        "{msg}"
    );
    let msg = extract_hypernet_tags("<hypernet:tiny-nai:x>")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("<hypernet:tiny-nai:x>"), "{msg}");
}
