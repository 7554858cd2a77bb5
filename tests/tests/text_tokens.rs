//! CLIP tokenization and A1111 prompt chunking against `golden/tokens.json` and
//! `golden/prompt_chunks.json`, written by `make_fixtures.py` with open_clip's
//! `SimpleTokenizer` (ftfy, html unescape, BPE) and a Python re-implementation of A1111's
//! `parse_prompt_attention` + `tokenize_line`.
//!
//! Tolerances: token ids exact; multipliers within 1e-6 (Python computes them as f64 products,
//! Easel hands them to the encoder as f32, as A1111 does through torch).

use easel_core::text::{prompt_chunks, tokenize, CHUNK_TOKENS};
use easel_tests::golden_path;
use serde_json::Value;

const MULTIPLIER_TOLERANCE: f64 = 1e-6;

fn golden(name: &str) -> Vec<Value> {
    let path = golden_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run make_fixtures.py)", path.display()));
    let json: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    json.as_array()
        .unwrap_or_else(|| panic!("{name}: expected a list of cases"))
        .clone()
}

fn u32s(value: &Value, what: &str) -> Vec<u32> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{what}: expected a list"))
        .iter()
        .map(|v| v.as_u64().unwrap_or_else(|| panic!("{what}: expected ids")) as u32)
        .collect()
}

#[test]
fn photo_of_a_cat() {
    // REFERENCE.md §7.
    assert_eq!(tokenize("a photo of a cat"), [320, 1125, 539, 320, 2368]);
}

#[test]
fn token_ids_match_clip() {
    let cases = golden("tokens.json");
    assert!(!cases.is_empty());
    for case in &cases {
        let text = case["text"].as_str().expect("text");
        let expected = u32s(&case["ids"], text);
        assert_eq!(tokenize(text), expected, "tokenize({text:?})");
    }
}

#[test]
fn prompt_chunks_match_a1111() {
    let cases = golden("prompt_chunks.json");
    assert!(!cases.is_empty());
    for case in &cases {
        let prompt = case["prompt"].as_str().expect("prompt");
        let expected = case["chunks"].as_array().expect("chunks");
        let chunks = prompt_chunks(prompt).unwrap_or_else(|e| panic!("{prompt:?}: {e}"));
        assert_eq!(chunks.len(), expected.len(), "chunk count of {prompt:?}");
        for (i, (chunk, want)) in chunks.iter().zip(expected).enumerate() {
            let tokens = u32s(&want["tokens"], prompt);
            assert_eq!(tokens.len(), CHUNK_TOKENS);
            assert_eq!(
                chunk.tokens[..],
                tokens[..],
                "tokens of chunk {i} of {prompt:?}"
            );
            let multipliers = want["multipliers"].as_array().expect("multipliers");
            assert_eq!(multipliers.len(), CHUNK_TOKENS);
            for (j, (got, want)) in chunk.multipliers.iter().zip(multipliers).enumerate() {
                let want = want.as_f64().expect("multiplier");
                assert!(
                    (f64::from(*got) - want).abs() <= MULTIPLIER_TOLERANCE,
                    "multiplier {j} of chunk {i} of {prompt:?}: {got} vs {want}"
                );
            }
        }
    }
}
