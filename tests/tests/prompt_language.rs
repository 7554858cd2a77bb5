//! The prompt language against `fixtures/prompts/prompt_language.json`, written by
//! `fixtures/prompts/make_prompt_fixtures.py` from A1111's own grammar run by lark 1.1.2 (the
//! version A1111 pins), A1111's regular expressions run by Python's `re`, and A1111's emphasis
//! arithmetic run by torch.
//!
//! Tolerances: schedules, sub-prompt texts and comment stripping exact; AND weights exact
//! after rounding Python's f64 to f32; emphasis outputs within 1e-6 relative to the largest
//! magnitude (torch and Easel sum the mean in different orders).

use easel_core::text::{
    apply_emphasis, prompt_schedule, prompt_schedule_with, split_and, strip_comments, EmphasisMode,
    ScheduleOptions,
};
use easel_tests::{fixtures_dir, max_rel_diff};
use serde_json::Value;

const EMPHASIS_TOLERANCE: f32 = 1e-6;

fn fixture() -> Value {
    let path = fixtures_dir().join("prompts").join("prompt_language.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run make_prompt_fixtures.py)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn cases<'a>(data: &'a Value, key: &str) -> &'a [Value] {
    let list = data[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key}: expected a list of cases"));
    assert!(!list.is_empty(), "{key}: no cases");
    list
}

fn schedule_from_json(value: &Value) -> Vec<(usize, String)> {
    value
        .as_array()
        .expect("schedule list")
        .iter()
        .map(|entry| {
            (
                entry[0].as_u64().expect("end_at_step") as usize,
                entry[1].as_str().expect("text").to_string(),
            )
        })
        .collect()
}

fn f32s(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .expect("number list")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect()
}

#[test]
fn schedules_match_a1111() {
    let data = fixture();
    let mut checked = 0;
    let mut ambiguous = 0;
    for case in cases(&data, "schedules") {
        let prompt = case["prompt"].as_str().expect("prompt");
        let steps = case["steps"].as_u64().expect("steps") as usize;
        let options = ScheduleOptions {
            hires_steps: case["hires_steps"].as_u64().map(|h| h as usize),
            use_old_scheduling: case["old"].as_bool().expect("old"),
        };
        let got: Vec<(usize, String)> = prompt_schedule_with(prompt, steps, &options)
            .into_iter()
            .map(|s| (s.end_at_step, s.text))
            .collect();
        if let Some(outcomes) = case.get("hash_dependent") {
            // A1111 itself gives different answers between launches here: accept any of them.
            let outcomes: Vec<_> = outcomes
                .as_array()
                .expect("outcomes")
                .iter()
                .map(schedule_from_json)
                .collect();
            assert!(
                outcomes.contains(&got),
                "{prompt:?} steps {steps} {options:?}: {got:?} is none of {outcomes:?}"
            );
            ambiguous += 1;
        } else {
            let expected = schedule_from_json(&case["schedule"]);
            assert_eq!(got, expected, "{prompt:?} steps {steps} {options:?}");
            checked += 1;
        }
    }
    assert!(checked > 1000, "only {checked} exact cases");
    assert!(
        ambiguous < checked / 100,
        "{ambiguous} hash-dependent cases"
    );
}

/// REFERENCE.md §6, verbatim.
#[test]
fn reference_vectors() {
    let g = |p: &str| -> Vec<(usize, String)> {
        prompt_schedule(p, 10)
            .into_iter()
            .map(|s| (s.end_at_step, s.text))
            .collect()
    };
    let v = |entries: &[(usize, &str)]| -> Vec<(usize, String)> {
        entries.iter().map(|&(s, t)| (s, t.to_string())).collect()
    };
    assert_eq!(g("test"), v(&[(10, "test")]));
    assert_eq!(g("a [b:3]"), v(&[(3, "a "), (10, "a b")]));
    assert_eq!(g("a [b: 3]"), v(&[(3, "a "), (10, "a b")]));
    assert_eq!(g("a [[[b]]:2]"), v(&[(2, "a "), (10, "a [[b]]")]));
    assert_eq!(g("[(a:2):3]"), v(&[(3, ""), (10, "(a:2)")]));
    assert_eq!(g("a [b : c : 1] d"), v(&[(1, "a b  d"), (10, "a  c  d")]));
    assert_eq!(
        g("a[b:[c:d:2]:1]e"),
        v(&[(1, "abe"), (2, "ace"), (10, "ade")])
    );
    assert_eq!(g("a [unbalanced"), v(&[(10, "a [unbalanced")]));
    assert_eq!(g("a [b:.5] c"), v(&[(5, "a  c"), (10, "a b c")]));
    let cycle = |period: usize, first: &str, other: &str| -> Vec<(usize, String)> {
        (1..=10)
            .map(|s| {
                let text = if s % period == 1 { first } else { other };
                (s, text.to_string())
            })
            .collect()
    };
    assert_eq!(g("[a|(b:1.1)]"), cycle(2, "a", "(b:1.1)"));
    assert_eq!(g("[fe|]male"), cycle(2, "female", "male"));
    assert_eq!(g("[fe|||]male"), cycle(4, "female", "male"));
    let hires = ScheduleOptions {
        hires_steps: Some(10),
        use_old_scheduling: false,
    };
    let h = |p: &str| -> Vec<(usize, String)> {
        prompt_schedule_with(p, 10, &hires)
            .into_iter()
            .map(|s| (s.end_at_step, s.text))
            .collect()
    };
    assert_eq!(h("a [b:.5] c"), v(&[(10, "a b c")]));
    assert_eq!(h("a [b:1.5] c"), v(&[(5, "a  c"), (10, "a b c")]));
}

#[test]
fn and_splitting_matches_a1111() {
    let data = fixture();
    for case in cases(&data, "and") {
        let prompt = case["prompt"].as_str().expect("prompt");
        let expected: Vec<(String, f32)> = case["parts"]
            .as_array()
            .expect("parts")
            .iter()
            .map(|p| {
                (
                    p[0].as_str().expect("text").to_string(),
                    p[1].as_f64().expect("weight") as f32,
                )
            })
            .collect();
        let got: Vec<(String, f32)> = split_and(prompt)
            .into_iter()
            .map(|p| (p.text, p.weight))
            .collect();
        assert_eq!(got, expected, "split_and({prompt:?})");
    }
}

#[test]
fn comment_stripping_matches_a1111() {
    let data = fixture();
    for case in cases(&data, "comments") {
        let prompt = case["prompt"].as_str().expect("prompt");
        let expected = case["stripped"].as_str().expect("stripped");
        assert_eq!(
            strip_comments(prompt),
            expected,
            "strip_comments({prompt:?})"
        );
    }
}

#[test]
fn emphasis_matches_torch() {
    let data = fixture();
    for case in cases(&data, "emphasis") {
        let name = case["name"].as_str().expect("name");
        let hidden = case["hidden"].as_u64().expect("hidden") as usize;
        let z = f32s(&case["z"]);
        let multipliers = f32s(&case["multipliers"]);
        for (mode, key) in [
            (EmphasisMode::Original, "original"),
            (EmphasisMode::NoNorm, "no_norm"),
        ] {
            let mut got = z.clone();
            apply_emphasis(mode, &mut got, hidden, &multipliers).expect("shapes");
            let expected = f32s(&case[key]);
            let diff = max_rel_diff(&got, &expected);
            assert!(diff <= EMPHASIS_TOLERANCE, "{name} {mode}: rel diff {diff}");
        }
        for mode in [EmphasisMode::Ignore, EmphasisMode::None] {
            let mut got = z.clone();
            apply_emphasis(mode, &mut got, hidden, &multipliers).expect("shapes");
            assert_eq!(got, z, "{name} {mode} must leave z unchanged");
        }
    }
}
