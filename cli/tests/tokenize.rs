//! `easel tokenize` against A1111's token counter and prompt schedules, from
//! `tests/fixtures/text/token_counter.json` (written by `make_text_fixtures.py`: comments and
//! extra-network tags removed, `AND` split, A1111's schedule rules with lark 1.1.2 and its
//! chunker on transformers 4.30.2's tokenizer).

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn easel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_easel"))
}

fn cases() -> Vec<Value> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/text/token_counter.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run make_text_fixtures.py)", path.display()));
    serde_json::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .as_array()
        .expect("a list of cases")
        .clone()
}

fn tokenize_json(prompt: &str, steps: u64, hr_steps: Option<u64>) -> Value {
    let mut cmd = easel();
    cmd.args(["tokenize", "--json", "--steps", &steps.to_string()]);
    if let Some(hr) = hr_steps {
        cmd.args(["--hr-steps", &hr.to_string()]);
    }
    let out = cmd.arg("--").arg(prompt).output().unwrap();
    assert!(
        out.status.success(),
        "{prompt:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The fixture's `[{text, weight, schedule: [[step, text], ...]}]` in the CLI's JSON shape.
fn expected_schedules(parts: &Value) -> Value {
    parts
        .as_array()
        .expect("parts")
        .iter()
        .map(|p| {
            let schedule: Vec<Value> = p["schedule"]
                .as_array()
                .expect("schedule")
                .iter()
                .map(|e| serde_json::json!({ "end_at_step": e[0], "text": e[1] }))
                .collect();
            serde_json::json!({ "text": p["text"], "weight": p["weight"], "schedule": schedule })
        })
        .collect()
}

#[test]
fn counter_and_schedules_match_a1111() {
    let cases = cases();
    assert!(cases.len() >= 15);
    for case in &cases {
        let prompt = case["prompt"].as_str().expect("prompt");
        let steps = case["steps"].as_u64().expect("steps");
        let hr = case["hr_steps"].as_u64();
        let got = tokenize_json(prompt, steps, hr);
        assert_eq!(
            got["ui_token_count"], case["ui_count"],
            "counter of {prompt:?}"
        );
        assert_eq!(got["ui_token_capacity"], case["ui_capacity"], "{prompt:?}");
        assert_eq!(
            got["token_count"], case["raw_count"],
            "raw count of {prompt:?}"
        );
        assert_eq!(
            got["schedule"],
            expected_schedules(&case["parts"]),
            "schedule of {prompt:?}"
        );
        match hr {
            Some(_) => assert_eq!(
                got["hires_schedule"],
                expected_schedules(&case["hires"]),
                "hires schedule of {prompt:?}"
            ),
            None => assert!(got.get("hires_schedule").is_none()),
        }
    }
}

#[test]
fn text_output_shows_both_counts_and_the_schedule() {
    let out = easel()
        .args([
            "tokenize",
            "--steps",
            "10",
            "--hr-steps",
            "4",
            "a [cat:dog:0.5] AND a tree",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("in A1111's counter (10 steps"), "{text}");
    assert!(text.contains("schedule (10 steps):"), "{text}");
    assert!(text.contains("steps 1-5"), "{text}");
    assert!(text.contains("a dog"), "{text}");
    assert!(text.contains("hires schedule (4 steps):"), "{text}");
}

#[test]
fn bad_step_counts_are_refused() {
    for args in [
        &["tokenize", "--steps", "0", "x"][..],
        &["tokenize", "--hr-steps", "3", "x"][..],
    ] {
        let out = easel().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("steps"), "{args:?}: {err}");
    }
}

/// With a models folder, the embeddings beside it are matched as A1111's
/// `EmbeddingDatabase` does: the chunks' tokens (0 where vectors go), token counts and
/// embedding positions equal the fixture script's, for the tiny model's width.
#[test]
fn embeddings_beside_the_models_folder_are_matched() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("embeddings/expected.json")).unwrap(),
    )
    .unwrap();
    for case in expected["chunk_cases"].as_array().unwrap() {
        let prompt = case["prompt"].as_str().unwrap();
        let out = easel()
            .args(["tokenize", "--json", "--models"])
            .arg(fixtures.join("models"))
            .args(["--model", "tiny", "--"])
            .arg(prompt)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Value = serde_json::from_slice(&out.stdout).unwrap();
        let name = case["name"].as_str().unwrap();
        assert_eq!(got["token_count"], case["token_count"], "{name}");
        let chunks = got["chunks"].as_array().unwrap();
        let want = case["chunks"].as_array().unwrap();
        assert_eq!(chunks.len(), want.len(), "{name}");
        for (g, w) in chunks.iter().zip(want) {
            assert_eq!(g["tokens"], w["tokens"], "{name}");
            assert_eq!(g["fixes"], w["fixes"], "{name}");
        }
    }
}
