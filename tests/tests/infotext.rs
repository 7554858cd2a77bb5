//! A1111 infotext and PNG text chunks.
//!
//! Expected values come from `tests/fixtures/infotext/make_infotext_fixtures.py`: Pillow wrote
//! the PNGs (tEXt / zTXt / iTXt, as A1111 does through Pillow) and read their text back, and a
//! Python re-implementation of A1111's `parse_generation_parameters` / `create_infotext` (with
//! Python's own `re` and `json`) produced the parses and layouts. Text comparisons are exact.

use std::path::{Path, PathBuf};

use easel_core::infotext::{
    decode_png_rgb, encode_png, parameters_from_png_bytes, read_parameters, read_png_rgb,
    write_png, Infotext,
};
use easel_core::Error;
use easel_tests::fixtures_dir;
use serde_json::Value;

fn infotext_dir() -> PathBuf {
    fixtures_dir().join("infotext")
}

fn expected() -> Value {
    let path = infotext_dir().join("expected.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("expected.json is valid JSON")
}

fn pairs(value: &Value) -> Vec<(String, String)> {
    value
        .as_array()
        .expect("list of pairs")
        .iter()
        .map(|kv| {
            (
                kv[0].as_str().expect("key").to_string(),
                kv[1].as_str().expect("value").to_string(),
            )
        })
        .collect()
}

fn str_of(value: &Value) -> &str {
    value.as_str().expect("string")
}

/// Checks a parse against one Python-computed expectation (`prompt`, `negative_prompt`,
/// `params`, `fields`).
fn assert_parse_matches(parsed: &Infotext, want: &Value, context: &str) {
    assert_eq!(
        parsed.prompt,
        str_of(&want["prompt"]),
        "prompt of {context}"
    );
    assert_eq!(
        parsed.negative_prompt,
        str_of(&want["negative_prompt"]),
        "negative prompt of {context}"
    );
    assert_eq!(parsed.params, pairs(&want["params"]), "params of {context}");
    assert_eq!(
        parsed.fields(),
        pairs(&want["fields"]),
        "fields of {context}"
    );
}

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("infotext-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A small RGB test image whose pixels differ everywhere.
fn gradient(width: u32, height: u32) -> Vec<u8> {
    (0..height)
        .flat_map(|y| (0..width).flat_map(move |x| [(x * 7) as u8, (y * 11) as u8, (x ^ y) as u8]))
        .collect()
}

// ---------------------------------------------------------------- text: parse and format

#[test]
fn parse_matches_a1111_on_every_text_case() {
    let expected = expected();
    let cases = expected["parse"].as_array().expect("parse cases");
    assert!(cases.len() > 30);
    for case in cases {
        let text = str_of(&case["text"]);
        assert_parse_matches(&Infotext::parse(text), case, &format!("{text:?}"));
    }
}

#[test]
fn parse_matches_a1111_on_random_texts() {
    // 300 seeded random texts made of the pieces that steer A1111's regex (see the generator).
    let expected = expected();
    let cases = expected["parse_random"].as_array().expect("random cases");
    assert_eq!(cases.len(), 300);
    for case in cases {
        let text = str_of(&case["text"]);
        assert_parse_matches(&Infotext::parse(text), case, &format!("{text:?}"));
    }
}

#[test]
fn format_matches_a1111_layout() {
    let expected = expected();
    for case in expected["format"].as_array().expect("format cases") {
        let info = Infotext {
            prompt: str_of(&case["prompt"]).to_string(),
            negative_prompt: str_of(&case["negative_prompt"]).to_string(),
            params: pairs(&case["params"]),
        };
        assert_eq!(info.format(), str_of(&case["text"]), "format of {info:?}");
        assert_eq!(info.to_string(), info.format());
    }
}

#[test]
fn reference_md_example_parses() {
    // REFERENCE.md §5.
    let text = "prompt\nNegative prompt: neg\nSteps: 28, Sampler: Euler, CFG scale: 12, Seed: 1, Size: 512x512, Model hash: 925997e9, Hypernet: anime";
    let info = Infotext::parse(text);
    assert_eq!(info.prompt, "prompt");
    assert_eq!(info.negative_prompt, "neg");
    assert_eq!(info.steps().unwrap(), Some(28));
    assert_eq!(info.sampler(), Some("Euler"));
    assert_eq!(info.cfg_scale().unwrap(), Some(12.0));
    assert_eq!(info.seed().unwrap(), Some(1));
    assert_eq!(info.size().unwrap(), Some((512, 512)));
    assert_eq!(info.model_hash(), Some("925997e9"));
    assert_eq!(info.hypernet(), Some("anime"));
    assert_eq!(info.model(), None);
    // Defaults A1111 assumes when the keys are missing.
    assert_eq!(info.clip_skip().unwrap(), 1);
    assert_eq!(info.rng(), "GPU");
    // It is also exactly what A1111 writes for these values.
    assert_eq!(info.format(), text);
}

#[test]
fn design_md_example_round_trips() {
    // DESIGN.md §4, as Easel's `generate` would build it.
    let info = Infotext::new("1girl, (solo:1.2)", "lowres, bad anatomy")
        .with("Steps", 28)
        .with("Sampler", "Euler")
        .with("CFG scale", 12)
        .with("Seed", 1)
        .with("Size", "512x512")
        .with("Model hash", "925997e9")
        .with("Model", "final-pruned")
        .with("Clip skip", 2)
        .with("Hypernet", "anime")
        .with("Hypernet strength", 1);
    let text = info.format();
    assert_eq!(
        text,
        "1girl, (solo:1.2)\nNegative prompt: lowres, bad anatomy\nSteps: 28, Sampler: Euler, CFG scale: 12, Seed: 1, Size: 512x512, Model hash: 925997e9, Model: final-pruned, Clip skip: 2, Hypernet: anime, Hypernet strength: 1"
    );
    let back = Infotext::parse(&text);
    assert_eq!(back, info);
    assert_eq!(back.clip_skip().unwrap(), 2);
    assert_eq!(back.hypernet_strength().unwrap(), Some(1.0));
}

#[test]
fn format_then_parse_round_trips() {
    let cases = [
        Infotext::new("a cat", "")
            .with("Steps", 20)
            .with("Sampler", "Euler a")
            .with("Seed", 3405691582u64),
        // Multi-line prompts and values that must be quoted.
        Infotext::new("line one,\nline two\n\nline four", "neg one\nneg two")
            .with("Steps", 5)
            .with("Template", "a, b: c")
            .with("Note", "two\nlines \"quoted\" \\ back\tslash")
            .with("Lora hashes", "x: 1, y: 2")
            .with("RNG", "CPU"),
        // Unicode everywhere.
        Infotext::new("桜の木の下の猫 🌸", "低品質")
            .with("Steps", 30)
            .with("Model", "日本語, モデル")
            .with("Size", "640x448")
            .with("Seed", 7),
    ];
    for info in cases {
        let back = Infotext::parse(&info.format());
        assert_eq!(back, info, "round trip of {:?}", info.format());
    }
}

#[test]
fn fewer_than_three_params_on_last_line_belong_to_the_prompt() {
    let info = Infotext::parse("a cat\nSteps: 20, Seed: 1");
    assert_eq!(info.prompt, "a cat\nSteps: 20, Seed: 1");
    assert!(info.params.is_empty());
    assert_eq!(info.steps().unwrap(), None);

    let info = Infotext::parse("a cat\nNegative prompt: dog\nSteps: 20, Seed: 1");
    assert_eq!(info.negative_prompt, "dog\nSteps: 20, Seed: 1");
}

#[test]
fn getters_interpret_values() {
    let info = Infotext::parse(
        "x\nSteps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 4294967295, Size: 768x512, Clip skip: 2, RNG: NV, ENSD: 31337, Eta: 0.67, VAE: anime.vae.pt, Hypernet strength: 0.8, Seed: 5",
    );
    assert_eq!(info.steps().unwrap(), Some(30));
    assert_eq!(info.sampler(), Some("DPM++ 2M"));
    assert_eq!(info.schedule_type(), Some("Karras"));
    assert_eq!(info.cfg_scale().unwrap(), Some(7.5));
    // A repeated key reads as its last value, like A1111's dictionary.
    assert_eq!(info.seed().unwrap(), Some(5));
    assert_eq!(info.size().unwrap(), Some((768, 512)));
    assert_eq!(info.clip_skip().unwrap(), 2);
    assert_eq!(info.rng(), "NV");
    assert_eq!(info.ensd().unwrap(), Some(31337));
    assert_eq!(info.eta().unwrap(), Some(0.67));
    assert_eq!(info.vae(), Some("anime.vae.pt"));
    assert_eq!(info.hypernet_strength().unwrap(), Some(0.8));
}

#[test]
fn bad_values_are_errors_naming_the_key() {
    let info = Infotext::parse(
        "x\nSteps: many, CFG scale: inf, Seed: -1, Size: 512x512x3, Clip skip: two",
    );
    for (result, key) in [
        (info.steps().map(|_| ()), "Steps"),
        (info.cfg_scale().map(|_| ()), "CFG scale"),
        (info.seed().map(|_| ()), "Seed"),
        (info.size().map(|_| ()), "Size"),
        (info.clip_skip().map(|_| ()), "Clip skip"),
    ] {
        let err = result.expect_err(key);
        assert!(matches!(err, Error::Invalid(_)), "{key}: {err:?}");
        assert!(err.to_string().contains(key), "{key}: {err}");
    }
}

#[test]
fn set_replaces_in_place() {
    let mut info = Infotext::new("p", "").with("Steps", 1).with("Seed", 2);
    info.set("Steps", 9).set("Model", "m");
    assert_eq!(
        info.params,
        vec![
            ("Steps".to_string(), "9".to_string()),
            ("Seed".to_string(), "2".to_string()),
            ("Model".to_string(), "m".to_string()),
        ]
    );
}

// ---------------------------------------------------------------- PNG: fixtures from Pillow

#[test]
fn pillow_fixtures_read_and_parse_as_a1111() {
    let expected = expected();
    let cases = expected["png"].as_array().expect("png cases");
    assert!(cases.len() >= 8);
    for case in cases {
        let name = str_of(&case["file"]);
        let path = infotext_dir().join(name);
        let text = read_parameters(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        match case["parameters"].as_str() {
            None => assert_eq!(text, None, "{name} has no parameters"),
            Some(want) => {
                let text = text.unwrap_or_else(|| panic!("{name}: parameters not found"));
                assert_eq!(text, want, "{name}");
                assert_parse_matches(&Infotext::parse(&text), &case["parsed"], name);
            }
        }
        // The same through the in-memory entry point.
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            parameters_from_png_bytes(&bytes, name).unwrap().as_deref(),
            case["parameters"].as_str(),
            "{name} from bytes"
        );
    }
}

#[test]
fn pillow_fixture_pixels_decode() {
    // The generator draws pixel (x, y) as (32x, 32y, 16(x+y)) on an 8×8 canvas.
    let want: Vec<u8> = (0..8u32)
        .flat_map(|y| {
            (0..8u32).flat_map(move |x| [(x * 32) as u8, (y * 32) as u8, ((x + y) * 16) as u8])
        })
        .collect();
    for name in ["text_latin1_ascii.png", "itxt_unicode.png", "no_text.png"] {
        let (w, h, rgb) = read_png_rgb(infotext_dir().join(name)).unwrap();
        assert_eq!((w, h), (8, 8), "{name}");
        assert_eq!(rgb, want, "{name}");
    }
}

// ---------------------------------------------------------------- PNG: write and read back

/// The chunk type that holds `parameters` in an encoded PNG.
fn parameters_chunk_kind(png: &[u8]) -> Option<String> {
    let mut pos = 8;
    while pos + 8 <= png.len() {
        let len = u32::from_be_bytes(png[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = String::from_utf8_lossy(&png[pos + 4..pos + 8]).into_owned();
        let data = &png[pos + 8..pos + 8 + len];
        if data.starts_with(b"parameters\0") {
            return Some(kind);
        }
        pos += 12 + len;
    }
    None
}

#[test]
fn write_then_read_back() {
    let dir = scratch("write");
    let cases = [
        (
            "ascii.png",
            "a cat\nSteps: 20, Sampler: Euler a, Seed: 5",
            "tEXt",
        ),
        (
            "latin1.png",
            "café, naïve ½\nSteps: 1, Sampler: Euler, Seed: 1",
            "tEXt",
        ),
        (
            "unicode.png",
            "桜 🌸\nNegative prompt: 低品質\nSteps: 1, Sampler: Euler, Seed: 1",
            "iTXt",
        ),
        (
            "quoted.png",
            "multi\nline\nNegative prompt: n\nSteps: 1, Template: \"a, b\\nc\", Seed: 1",
            "tEXt",
        ),
    ];
    let (w, h) = (13, 5);
    let rgb = gradient(w, h);
    for (name, text, kind) in cases {
        let path = dir.join(name);
        write_png(&path, w, h, &rgb, Some(text)).unwrap();
        assert_eq!(
            read_parameters(&path).unwrap().as_deref(),
            Some(text),
            "{name}"
        );
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            parameters_chunk_kind(&bytes).as_deref(),
            Some(kind),
            "{name}"
        );
        assert_eq!(read_png_rgb(&path).unwrap(), (w, h, rgb.clone()), "{name}");
        // In-memory encoding gives the same file.
        assert_eq!(encode_png(w, h, &rgb, Some(text)).unwrap(), bytes, "{name}");
    }
    // No temporary files are left behind.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["ascii.png", "latin1.png", "quoted.png", "unicode.png"]
    );
}

#[test]
fn infotext_round_trips_through_png() {
    let info = Infotext::new("line one,\nline two 🌸", "neg\nmore")
        .with("Steps", 28)
        .with("Sampler", "Euler")
        .with("Template", "x: y, z")
        .with("Size", "64x32")
        .with("Seed", 1);
    let png = encode_png(4, 3, &gradient(4, 3), Some(&info.format())).unwrap();
    let text = parameters_from_png_bytes(&png, "memory").unwrap().unwrap();
    assert_eq!(Infotext::parse(&text), info);
    assert_eq!(
        decode_png_rgb(&png, "memory").unwrap(),
        (4, 3, gradient(4, 3))
    );
}

#[test]
fn png_without_parameters_reads_none() {
    let png = encode_png(2, 2, &gradient(2, 2), None).unwrap();
    assert_eq!(parameters_from_png_bytes(&png, "plain").unwrap(), None);
    assert_eq!(parameters_chunk_kind(&png), None);
}

#[test]
fn overwriting_an_existing_file_replaces_it() {
    let dir = scratch("overwrite");
    let path = dir.join("out.png");
    write_png(&path, 2, 2, &gradient(2, 2), Some("first")).unwrap();
    write_png(&path, 3, 1, &gradient(3, 1), Some("second")).unwrap();
    assert_eq!(read_parameters(&path).unwrap().as_deref(), Some("second"));
    assert_eq!(read_png_rgb(&path).unwrap(), (3, 1, gradient(3, 1)));
}

// ---------------------------------------------------------------- bad input

fn format_error_message(result: easel_core::Result<Option<String>>) -> String {
    match result {
        Err(err @ Error::Format { .. }) => err.to_string(),
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn not_a_png_is_an_error_naming_the_file() {
    let dir = scratch("not-png");
    let path = dir.join("notes.png");
    std::fs::write(&path, "Steps: 20, Sampler: Euler, Seed: 1").unwrap();
    let msg = format_error_message(read_parameters(&path));
    assert!(
        msg.contains("notes.png") && msg.contains("not a PNG"),
        "{msg}"
    );

    let msg = format_error_message(parameters_from_png_bytes(b"", "empty.png"));
    assert!(
        msg.contains("empty.png") && msg.contains("truncated"),
        "{msg}"
    );

    let err = read_parameters(dir.join("missing.png")).unwrap_err();
    assert!(
        matches!(err, Error::Io { .. }) && err.to_string().contains("missing.png"),
        "{err}"
    );
}

#[test]
fn truncated_png_is_an_error_at_every_cut() {
    let bytes = std::fs::read(infotext_dir().join("ztxt.png")).unwrap();
    for cut in 1..bytes.len() {
        let msg = format_error_message(parameters_from_png_bytes(&bytes[..cut], "cut.png"));
        assert!(msg.starts_with("cut.png: "), "{msg}");
        assert!(msg.contains("truncated"), "cut at {cut}: {msg}");
    }
}

#[test]
fn damaged_chunks_are_errors() {
    let good = encode_png(
        2,
        2,
        &gradient(2, 2),
        Some("a, b\nSteps: 1, Sampler: Euler, Seed: 1"),
    )
    .unwrap();
    let text_at = good.windows(10).position(|w| w == b"parameters").unwrap();

    // A flipped byte inside the text chunk: CRC mismatch.
    let mut bad = good.clone();
    bad[text_at + 12] ^= 0x20;
    let msg = format_error_message(parameters_from_png_bytes(&bad, "crc.png"));
    assert!(msg.contains("CRC") && msg.contains("tEXt"), "{msg}");

    // Garbage after the signature.
    let mut bad = good.clone();
    bad[12..16].copy_from_slice(b"\0\0\0\0");
    let msg = format_error_message(parameters_from_png_bytes(&bad, "hdr.png"));
    assert!(msg.contains("hdr.png"), "{msg}");

    // Pixels that fail to decode are an error too.
    let err = decode_png_rgb(&good[..good.len() - 20], "pix.png").unwrap_err();
    assert!(err.to_string().contains("pix.png"), "{err}");
}

#[test]
fn bad_pixel_buffers_are_refused_without_a_file() {
    let dir = scratch("bad-write");
    let path = dir.join("out.png");
    let err = write_png(&path, 4, 4, &[0; 10], Some("x")).unwrap_err();
    assert!(
        matches!(err, Error::Invalid(_)) && err.to_string().contains("out.png"),
        "{err}"
    );
    assert!(write_png(&path, 0, 4, &[], None).is_err());
    assert!(write_png(&path, 1, 1, &[0; 3], Some("nul\0inside")).is_err());
    assert!(encode_png(4, 4, &[0; 47], None).is_err());
    // Nothing was written, not even a temporary file.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);

    // The target is a folder: the rename fails, and the temporary file is removed.
    std::fs::create_dir(dir.join("sub")).unwrap();
    let err = write_png(dir.join("sub"), 1, 1, &[1, 2, 3], None).unwrap_err();
    assert!(
        matches!(err, Error::Io { .. }) && err.to_string().contains("sub"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    // A folder that does not exist: an I/O error naming the path, nothing left behind.
    let err = write_png(dir.join("no/such/dir/out.png"), 1, 1, &[1, 2, 3], None).unwrap_err();
    assert!(
        matches!(err, Error::Io { .. }) && err.to_string().contains("out.png"),
        "{err}"
    );
}
