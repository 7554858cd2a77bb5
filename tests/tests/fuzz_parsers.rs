//! The mutation fuzzer (`easel_tests::fuzz`) over every parser of outside data (issue 16):
//! pickles, zip and legacy torch files, safetensors, LDM yaml, hypernetworks, LoRA and
//! embedding files, upscaler models, PNG text chunks, infotexts and the prompt language. (The
//! API's request JSON is fuzzed beside its handlers, in `easel-cli`.) Seeds: the format
//! fixtures, the tiny models' files and the committed hostile corpus
//! (`fixtures/hostile/<class>/`). Every input must return without a panic, within the time
//! and memory bounds of the engine; allocations are counted by [`CountingAlloc`].
//!
//! `EASEL_FUZZ_SECS` sets the seconds per target (default 2; CI's fuzz step runs longer).

use easel_core::formats::{open_tensor_store_from, pickle::unpickle};
use easel_core::infotext::{parameters_from_png_bytes, write_png, Infotext};
use easel_core::io::MemorySource;
use easel_core::model::LdmYaml;
use easel_core::text::{
    check_schedule_nesting, prompt_schedule, split_and, strip_comments, tokenize_prompt,
    ChunkOptions,
};
use easel_tests::fixtures_dir;
use easel_tests::fuzz::{corpus, fuzz, CountingAlloc};
use std::sync::Arc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(rel)).unwrap()
}

fn store_from(name: &str, bytes: &[u8], ext: &str) {
    if let Ok(store) =
        open_tensor_store_from(Arc::new(MemorySource::new(name, bytes.to_vec())), ext)
    {
        // Reading every tensor exercises the view bounds (strides, offsets, counts).
        for key in store.keys().map(str::to_string).collect::<Vec<_>>() {
            let _ = store.read_f32(&key);
        }
    }
}

#[test]
fn fuzz_pickle() {
    let mut seeds = corpus("pickle");
    seeds.push(b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01u.".to_vec());
    seeds.push(
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x8c\x04eval\x93.".to_vec(),
    );
    fuzz("pickle", seeds, |b| {
        let _ = unpickle(b, "f.pkl");
    });
}

#[test]
fn fuzz_zip_checkpoint() {
    let mut seeds = corpus("ckpt");
    seeds.extend([
        fixture("formats/pair.ckpt"),
        fixture("formats/views.ckpt"),
        fixture("formats/training.ckpt"),
        fixture("formats/deflated-pickle.ckpt"),
        fixture("formats/deflated-storage.ckpt"),
        fixture("formats/unsafe-global.ckpt"),
    ]);
    fuzz("ckpt", seeds, |b| store_from("f.ckpt", b, "ckpt"));
}

#[test]
fn fuzz_legacy_torch() {
    let mut seeds = corpus("legacy");
    seeds.push(fixture("formats/legacy.pt"));
    fuzz("legacy_torch", seeds, |b| store_from("f.pt", b, "pt"));
}

#[test]
fn fuzz_safetensors() {
    let mut seeds = corpus("safetensors");
    seeds.extend([
        fixture("formats/pair.safetensors"),
        fixture("formats/bad-offsets.safetensors"),
    ]);
    fuzz("safetensors", seeds, |b| {
        store_from("f.safetensors", b, "safetensors")
    });
}

#[test]
fn fuzz_hypernetwork() {
    let mut seeds = corpus("hypernetwork");
    seeds.extend([
        fixture("formats/hypernet.pt"),
        fixture("models/hypernetworks/tiny-nai.pt"),
    ]);
    fuzz("hypernetwork", seeds, |b| {
        let source = Arc::new(MemorySource::new("h.pt", b.to_vec()));
        if let Ok(store) = open_tensor_store_from(source, "pt") {
            let _ = easel_hypernetwork::Hypernetwork::from_store(&store, "h");
        }
    });
}

#[test]
fn fuzz_ldm_yaml() {
    let mut seeds = corpus("yaml");
    seeds.push(fixture("models/Stable-diffusion/tiny.yaml"));
    fuzz("yaml", seeds, |b| {
        let _ = LdmYaml::parse(&String::from_utf8_lossy(b), "f.yaml");
    });
}

const INFOTEXT: &str = "a (red:1.2) fox, [snow:rain:0.5], <hypernet:anime:0.8> AND a dog:0.5\n\
Negative prompt: blurry, [bad|ugly]\n\
Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, \
Model hash: 925997e9, Model: final-pruned, Clip skip: 2, Hypernet: anime, Hypernet strength: 0.8, \
\"Lora hashes: \\\"a: 1\\\"\", ENSD: 31337";

#[test]
fn fuzz_png_text_chunks() {
    let path = std::env::temp_dir().join(format!("easel-fuzz-{}.png", std::process::id()));
    write_png(&path, 4, 4, &[7u8; 4 * 4 * 3], Some(INFOTEXT)).unwrap();
    let png = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let mut seeds = corpus("png");
    seeds.push(png);
    fuzz("png", seeds, |b| {
        let _ = parameters_from_png_bytes(b, "f.png");
    });
}

#[test]
fn fuzz_infotext() {
    let mut seeds = corpus("infotext");
    seeds.push(INFOTEXT.as_bytes().to_vec());
    fuzz("infotext", seeds, |b| {
        let info = Infotext::parse(&String::from_utf8_lossy(b));
        let _ = (info.steps(), info.seed(), info.size(), info.cfg_scale());
        let _ = (info.clip_skip(), info.ensd(), info.model(), info.hypernet());
    });
}

#[test]
fn fuzz_prompt_language() {
    let mut seeds = corpus("prompt");
    seeds.extend(
        [
            INFOTEXT.lines().next().unwrap(),
            "((masterpiece)), [a:b:0.3] [cat|dog|] (x:1.3) \\(lit\\) {nai} BREAK end # note",
        ]
        .map(|s| s.as_bytes().to_vec()),
    );
    fuzz("prompt", seeds, |b| {
        let text = String::from_utf8_lossy(b);
        let text = strip_comments(&text);
        let _ = check_schedule_nesting(&text);
        for part in split_and(&text).iter().take(4) {
            for entry in prompt_schedule(&part.text, 20).iter().take(4) {
                let _ = tokenize_prompt(&entry.text, ChunkOptions::default());
            }
        }
    });
}

#[test]
fn fuzz_lora() {
    let mut seeds = corpus("lora");
    for name in ["tiny-lora", "tiny-peft", "tiny-ia3", "tiny-norm"] {
        seeds.push(fixture(&format!("models/Lora/{name}.safetensors")));
    }
    seeds.push(fixture("models/LyCORIS/tiny-loha.safetensors"));
    for bad in ["oft", "sdxl", "te2", "truncated"] {
        seeds.push(fixture(&format!("lora/bad/{bad}.safetensors")));
    }
    fuzz("lora", seeds, |b| {
        let source = Arc::new(MemorySource::new("l.safetensors", b.to_vec()));
        if let Ok(store) = open_tensor_store_from(source, "safetensors") {
            let _ = easel_lora::LoraFile::from_store(&store, std::path::Path::new("l"));
        }
    });
}

#[test]
fn fuzz_embedding() {
    let mut seeds = corpus("embedding");
    for name in [
        "tinystyle.pt",
        "tinystyle-v2.pt",
        "oldti.pt",
        "stemb.safetensors",
    ] {
        seeds.push(fixture(&format!("embeddings/{name}")));
    }
    // The file kind follows the name, so each input is read both ways.
    fuzz("embedding", seeds, |b| {
        for name in ["e.pt", "e.safetensors"] {
            let source = Arc::new(MemorySource::new(name, b.to_vec()));
            let _ = easel_core::embeddings::read_embedding(source, name, String::new());
        }
    });
}

#[test]
fn fuzz_upscaler_models() {
    let mut seeds = corpus("upscaler");
    seeds.extend([
        fixture("upscalers/models/ESRGAN/tiny-compact-x2.safetensors"),
        fixture("upscalers/models/SwinIR/tiny-swinir-light-x2.safetensors"),
        fixture("upscalers/models/RealESRGAN/realesr-animevideov3.pth"),
        fixture("upscalers/bad/unknown-arch.pth"),
        fixture("upscalers/bad/wrong-shape.safetensors"),
    ]);
    let backend = easel_candle::CandleBackend::cpu();
    fuzz("upscaler", seeds, |b| {
        for ext in ["pth", "safetensors"] {
            let source = Arc::new(MemorySource::new(format!("u.{ext}"), b.to_vec()));
            if let Ok(store) = open_tensor_store_from(source, ext) {
                let _ = easel_upscalers::model::UpscalerModel::from_store(&backend, &store);
            }
        }
    });
}
