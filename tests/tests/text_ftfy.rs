//! Text cleaning and token ids as A1111 makes them on SD 1.x, against
//! `fixtures/text/ftfy_tokens.json`, written by `fixtures/text/make_text_fixtures.py` with
//! ftfy 6.3.1's `fix_text` and transformers 4.30.2's slow `CLIPTokenizer` (the version A1111
//! pins), over a corpus of mojibake, HTML references, full-width forms, ligatures, quotes,
//! control characters, line breaks, emoji, combining marks and random text. Exact equality.

use easel_core::text::{fix_text, tokenize};
use easel_tests::fixtures_dir;
use serde_json::Value;

fn corpus() -> Vec<Value> {
    let path = fixtures_dir().join("text").join("ftfy_tokens.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run make_text_fixtures.py)", path.display()));
    let json: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases = json.as_array().expect("a list of cases").clone();
    assert!(cases.len() >= 150, "corpus has {} cases", cases.len());
    cases
}

#[test]
fn fix_text_matches_ftfy() {
    let mut failures = Vec::new();
    for case in corpus() {
        let text = case["text"].as_str().expect("text");
        let want = case["fixed"].as_str().expect("fixed");
        let got = fix_text(text);
        if got != want {
            failures.push(format!("{text:?}: got {got:?}, ftfy gives {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn token_ids_match_a1111_tokenizer() {
    let mut failures = Vec::new();
    for case in corpus() {
        let text = case["text"].as_str().expect("text");
        let want: Vec<u32> = case["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_u64().expect("id") as u32)
            .collect();
        let got = tokenize(text);
        if got != want {
            failures.push(format!("{text:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn issue_examples() {
    // The three prompts the issue names, with ids from the same fixture run.
    let cases = corpus();
    for text in [
        "salt &amp pepper",
        "a <tag> &amp; b",
        "caf\u{C3}\u{A9} latte",
    ] {
        let case = cases
            .iter()
            .find(|c| c["text"] == text)
            .unwrap_or_else(|| panic!("{text:?} is in the corpus"));
        let want: Vec<u64> = case["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_u64().expect("id"))
            .collect();
        let got: Vec<u64> = tokenize(text).into_iter().map(u64::from).collect();
        assert_eq!(got, want, "{text:?}");
    }
    assert_eq!(fix_text("caf\u{C3}\u{A9} latte"), "caf\u{E9} latte");
}
