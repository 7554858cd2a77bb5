//! A seeded, bounded mutation fuzzer over every parser of outside data, run as an ordinary
//! test on stable Rust (issue 16). Each target starts from committed seed inputs (the format
//! fixtures, the tiny model's yaml, a PNG and prompts made here) plus the hostile inputs of
//! the issue made by code, mutates them with a fixed-seed generator, and asserts that the
//! parser returns (an `Ok` or an `Err`) without panicking, for a time budget per target.
//!
//! Budget: `EASEL_FUZZ_SECS` seconds per target (default 2, so `cargo test` stays quick;
//! CI or a person hunting bugs sets more), seed `EASEL_FUZZ_SEED` (default 1). The number of
//! executions per target is printed (`cargo test -- --nocapture` shows it).

use easel_core::formats::{open_tensor_store_from, pickle::unpickle};
use easel_core::infotext::{parameters_from_png_bytes, write_png, Infotext};
use easel_core::io::MemorySource;
use easel_core::model::LdmYaml;
use easel_core::text::{
    check_schedule_nesting, prompt_schedule, split_and, strip_comments, tokenize_prompt,
    ChunkOptions,
};
use easel_tests::fixtures_dir;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that tend to matter to parsers: limits, opcodes, brackets, separators.
const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'(', b')', b'[', b']', b':', b'|', b'\\', b'.', b'}', b'{', b'\n',
    b'"', b',', b'a', b'h', b'q', b'R', b'b', 0x94, 0x95, 0x8c,
];

/// One to four random edits: flip a bit, set an interesting byte, insert or delete a run,
/// repeat a slice (nesting), truncate, or splice in a piece of another seed.
fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let b = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(i..i, std::iter::repeat_n(b, n));
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                v.drain(i..i + n);
            }
            4 if len > 0 => {
                // Repeat a short slice many times: deep nesting, long runs.
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(4));
                let piece = v[i..i + n].to_vec();
                let times = 1 + rng.below(2000);
                let rep: Vec<u8> = piece.iter().copied().cycle().take(n * times).collect();
                v.splice(i..i, rep);
            }
            5 if len > 0 => v.truncate(rng.below(len)),
            6 if len >= 8 => {
                // Overwrite a little-endian word with an extreme value (lengths, offsets).
                let i = rng.below(len - 7);
                let word = [0u64, 1, u32::MAX as u64, u64::MAX, 1 << 62][rng.below(5)];
                v[i..i + 8].copy_from_slice(&word.to_le_bytes());
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = a + rng.below((other.len() - a).min(256));
                    let i = rng.below(v.len() + 1);
                    v.splice(i..i, other[a..b].iter().copied());
                }
            }
        }
    }
    v
}

fn budget() -> Duration {
    let secs = std::env::var("EASEL_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

fn seed() -> u64 {
    std::env::var("EASEL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Runs `target` on every seed unmutated, then on mutations until the budget is spent.
/// A panic fails the test with the target's name, the seed and the execution number (the
/// input is written to the temp folder for reproduction).
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, target: impl Fn(&[u8])) {
    assert!(!seeds.is_empty());
    let mut rng = Rng(seed().wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let start = Instant::now();
    let mut execs = 0u64;
    let run = |input: &[u8], execs: u64| {
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            let path = std::env::temp_dir().join(format!("easel-fuzz-{name}-{execs}.bin"));
            let _ = std::fs::write(&path, input);
            panic!(
                "fuzz target `{name}` panicked on execution {execs} (seed {}); input saved to {}",
                seed(),
                path.display()
            );
        }
    };
    for s in &seeds {
        run(s, execs);
        execs += 1;
    }
    let limit = budget();
    while start.elapsed() < limit {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, &seeds);
        run(&input, execs);
        execs += 1;
    }
    eprintln!(
        "fuzz {name}: {execs} executions in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(rel)).unwrap()
}

/// The hostile inputs for pickles, made here: 40k nested lists (past what a
/// recursive drop survives on a test thread's stack; the binary test uses 131k), a truncated copy,
/// a self-reference, a memo blow-up.
fn hostile_pickles() -> Vec<Vec<u8>> {
    let mut deep = vec![0x80, 2];
    deep.extend(std::iter::repeat_n(b']', 40_000));
    deep.extend(std::iter::repeat_n(b'a', 39_999));
    deep.push(b'.');
    let cut = deep[..deep.len() / 2].to_vec();
    let mut blowup = b"\x80\x02]K\x00a".to_vec();
    for _ in 0..60 {
        blowup.extend_from_slice(b"q\x00]h\x00h\x00\x86a");
    }
    blowup.push(b'.');
    vec![deep, cut, b"\x80\x02]q\x00h\x00a.".to_vec(), blowup]
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
    let mut seeds = hostile_pickles();
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
    let seeds = vec![
        fixture("formats/pair.ckpt"),
        fixture("formats/views.ckpt"),
        fixture("formats/deflated-pickle.ckpt"),
        fixture("formats/deflated-storage.ckpt"),
        fixture("formats/unsafe-global.ckpt"),
    ];
    fuzz("ckpt", seeds, |b| store_from("f.ckpt", b, "ckpt"));
}

#[test]
fn fuzz_legacy_torch() {
    fuzz("legacy_torch", vec![fixture("formats/legacy.pt")], |b| {
        store_from("f.pt", b, "pt")
    });
}

#[test]
fn fuzz_safetensors() {
    let seeds = vec![
        fixture("formats/pair.safetensors"),
        fixture("formats/bad-offsets.safetensors"),
    ];
    fuzz("safetensors", seeds, |b| {
        store_from("f.safetensors", b, "safetensors")
    });
}

#[test]
fn fuzz_hypernetwork() {
    let seeds = vec![fixture("formats/hypernet.pt")];
    fuzz("hypernetwork", seeds, |b| {
        let source = Arc::new(MemorySource::new("h.pt", b.to_vec()));
        if let Ok(store) = open_tensor_store_from(source, "pt") {
            let _ = easel_hypernetwork::Hypernetwork::from_store(&store, "h");
        }
    });
}

#[test]
fn fuzz_ldm_yaml() {
    let yaml = fixture("models/Stable-diffusion/tiny.yaml");
    let nested = format!("model:\n  params: {}{}", "[".repeat(5000), "]".repeat(5000));
    fuzz("yaml", vec![yaml, nested.into_bytes()], |b| {
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
    fuzz("png", vec![png], |b| {
        let _ = parameters_from_png_bytes(b, "f.png");
    });
}

#[test]
fn fuzz_infotext() {
    fuzz("infotext", vec![INFOTEXT.as_bytes().to_vec()], |b| {
        let info = Infotext::parse(&String::from_utf8_lossy(b));
        let _ = (info.steps(), info.seed(), info.size(), info.cfg_scale());
        let _ = (info.clip_skip(), info.ensd(), info.model(), info.hypernet());
    });
}

#[test]
fn fuzz_prompt_language() {
    let seeds: Vec<Vec<u8>> = [
        INFOTEXT.lines().next().unwrap().to_string(),
        "((masterpiece)), [a:b:0.3] [cat|dog|] (x:1.3) \\(lit\\) {nai} BREAK end # note".into(),
        "(".repeat(17_000),
        "[a:".repeat(17_000),
        "a BREAK ".repeat(2_000),
        "a AND ".repeat(2_000),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
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
