//! The X/Y/Z grid: A1111's value syntax against vectors computed by CPython/numpy
//! (`tests/fixtures/grid/make_grid_fixtures.py`), and grids of the tiny model whose cells
//! are compared with independent generations of the same settings.

use easel_candle::CandleBackend;
use easel_core::grid::csv_fields::split_fields;
use easel_core::grid::range_syntax::{float_values, int_values};
use easel_core::grid::{run_grid, Axis, AxisKind, AxisValue, CellIndex, GridPlan, RgbImage};
use easel_core::infotext::Infotext;
use easel_core::model::{checkpoint_files, StableDiffusion, VaeChoice};
use easel_core::noise::RngKind;
use easel_core::pipeline::{txt2img, txt2img_infotext, Txt2ImgParams};
use easel_core::sampler::block_on;
use easel_tests::{fixtures_dir, models_dir};
use serde_json::Value;

fn vectors() -> Value {
    let path = fixtures_dir().join("grid/value_vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Values match Python exactly (0 ulp): the expansion performs the same IEEE double
/// operations numpy does (`start + i*delta` for arange, `i*step + start` for linspace).
#[test]
fn numeric_values_match_a1111() {
    for case in vectors()["numeric"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let fields = split_fields(text);
        let kind = case["kind"].as_str().unwrap();
        let expected_error = case.get("error").is_some();
        if kind == "int" {
            let got = int_values(&fields);
            if expected_error {
                assert!(got.is_err(), "int `{text}`: Python fails, got {got:?}");
                continue;
            }
            let want: Vec<i64> = case["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            assert_eq!(got.unwrap(), want, "int `{text}`");
        } else {
            let got = float_values(&fields);
            if expected_error {
                assert!(got.is_err(), "float `{text}`: Python fails, got {got:?}");
                continue;
            }
            let got = got.unwrap();
            let want: Vec<f64> = case["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(got, want, "float `{text}`");
            let labels: Vec<String> = got
                .iter()
                .map(|v| AxisKind::CfgScale.format_label(&AxisValue::Float(*v)))
                .collect();
            let want_labels: Vec<&str> = case["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(labels, want_labels, "labels of `{text}`");
        }
    }
}

#[test]
fn csv_fields_match_pythons_csv_module() {
    for case in vectors()["csv"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want: Vec<&str> = case["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(split_fields(text), want, "csv `{text}`");
    }
}

#[test]
fn malformed_input_is_a_clear_error() {
    let e = Axis::parse(AxisKind::Steps, "1-5 (2)")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`1-5 (2)`"), "{e}");
    let e = Axis::parse(AxisKind::CfgScale, "7, x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`x`"), "{e}");
    let e = Axis::parse(AxisKind::Seed, "1-5 [x]")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`1-5 [x]`"), "{e}");
    let e = AxisKind::parse("Face restore").unwrap_err().to_string();
    assert!(e.contains("`Face restore`") && e.contains("CFG Scale") && e.contains("Prompt S/R"));
    let e = Axis::parse(AxisKind::Seed, "").unwrap_err().to_string();
    assert!(e.contains("no values"), "{e}");
}

const CELL: usize = 64;

fn load_tiny() -> StableDiffusion<CandleBackend> {
    let path = models_dir().join("Stable-diffusion/tiny.ckpt");
    let files = checkpoint_files(&models_dir(), &path, &VaeChoice::Auto).unwrap();
    StableDiffusion::load(&CandleBackend::cpu(), &files).unwrap()
}

/// The settings of a cell: seed from a Seed axis, CFG from a CFG axis, steps from Steps.
fn params_for(plan: &GridPlan, c: CellIndex) -> Txt2ImgParams {
    let (sampler, scheduler) = easel_tests::sampler_and_schedule("Euler", None);
    let mut p = Txt2ImgParams {
        downcast_alphas_cumprod: false,
        vae_decoder: Default::default(),
        vae_encoder: Default::default(),
        vae_tiling: false,
        prompt: "a red square".into(),
        negative_prompt: String::new(),
        steps: 2,
        cfg_scale: 7.0,
        seed: 11,
        width: CELL,
        height: CELL,
        batch_size: 1,
        clip_skip: 1,
        rng: RngKind::Gpu,
        noise_device: Default::default(),
        ensd: 0,
        sampler,
        scheduler,
    };
    for (axis, i) in [(&plan.x, c.x), (&plan.y, c.y), (&plan.z, c.z)] {
        match (axis.kind, &axis.values[i]) {
            (AxisKind::Seed, AxisValue::Int(s)) => p.seed = *s as u64,
            (AxisKind::CfgScale, AxisValue::Float(f)) => p.cfg_scale = *f as f32,
            (AxisKind::Steps, AxisValue::Int(n)) => p.steps = *n as usize,
            (AxisKind::Nothing, _) => {}
            other => panic!("test axis {other:?}"),
        }
    }
    p
}

fn generate(model: &StableDiffusion<CandleBackend>, p: &Txt2ImgParams) -> (RgbImage, Infotext) {
    let b = CandleBackend::cpu();
    let img = block_on(txt2img(&b, model, p, Vec::new(), &mut |_, _, _| {}))
        .unwrap()
        .remove(0);
    let info = txt2img_infotext(p, &model.info, img.seed);
    (
        RgbImage::from_rgb(img.width, img.height, img.rgb).unwrap(),
        info,
    )
}

fn has_ink(img: &RgbImage, x0: usize, y0: usize, w: usize, h: usize) -> bool {
    (y0..y0 + h).any(|y| (x0..x0 + w).any(|x| img.pixel(x, y).iter().any(|&c| c < 128)))
}

#[test]
fn xy_grid_places_each_cell_where_a1111_does_with_labels() {
    let model = load_tiny();
    let plan = GridPlan::new(
        Axis::parse(AxisKind::Seed, "1-3").unwrap(),
        Axis::parse(AxisKind::CfgScale, "1, 9").unwrap(),
        Axis::nothing(),
    )
    .unwrap();
    let mut order = Vec::new();
    let out = run_grid(&plan, |c| {
        order.push(c);
        Ok(generate(&model, &params_for(&plan, c)))
    })
    .unwrap();
    // A1111 runs z, then y, then x innermost.
    let want_order: Vec<(usize, usize)> =
        (0..2).flat_map(|y| (0..3).map(move |x| (x, y))).collect();
    let got_order: Vec<(usize, usize)> = order.iter().map(|c| (c.x, c.y)).collect();
    assert_eq!(got_order, want_order);

    // Size: 3×2 cells, a left band ¾ of a cell wide, a top band for the column labels.
    let g = &out.image;
    let pad_left = CELL * 3 / 4;
    assert_eq!(g.width, pad_left + 3 * CELL);
    assert!(g.height > 2 * CELL);
    let pad_top = g.height - 2 * CELL;

    // Each cell's pixels equal an independent generation with that cell's settings.
    let mut seen = Vec::new();
    for y in 0..2 {
        for x in 0..3 {
            let c = CellIndex { x, y, z: 0 };
            let (fresh, _) = generate(&model, &params_for(&plan, c));
            let region = g.crop(pad_left + x * CELL, pad_top + y * CELL, CELL, CELL);
            assert_eq!(region.data, fresh.data, "cell ({x}, {y})");
            seen.push(fresh.data);
        }
    }
    for i in 0..seen.len() {
        for j in i + 1..seen.len() {
            assert_ne!(
                seen[i], seen[j],
                "cells {i} and {j} are identical; the test would prove nothing"
            );
        }
    }

    // Every column and row header has ink; the band corner does not.
    for x in 0..3 {
        assert!(
            has_ink(g, pad_left + x * CELL, 0, CELL, pad_top),
            "column {x} label"
        );
    }
    for y in 0..2 {
        assert!(
            has_ink(g, 0, pad_top + y * CELL, pad_left, CELL),
            "row {y} label"
        );
    }
    assert!(
        !has_ink(g, 0, 0, pad_left, pad_top),
        "top-left corner is blank"
    );

    // The grid's infotext is the first cell's plus the plot's entries.
    assert_eq!(out.infotext.prompt, "a red square");
    assert_eq!(out.infotext.get("Seed"), Some("1"));
    assert_eq!(out.infotext.get("Script"), Some("X/Y/Z plot"));
    assert_eq!(out.infotext.get("X Type"), Some("Seed"));
    assert_eq!(out.infotext.get("X Values"), Some("1-3"));
    assert_eq!(out.infotext.get("Fixed X Values"), Some("1, 2, 3"));
    assert_eq!(out.infotext.get("Y Type"), Some("CFG Scale"));
    assert_eq!(out.cells[4].infotext.get("Seed"), Some("2"));
    assert_eq!(out.cells[4].infotext.get("CFG scale"), Some("9"));
}

#[test]
fn z_axis_puts_labelled_sub_grids_side_by_side() {
    let model = load_tiny();
    let plan = GridPlan::new(
        Axis::parse(AxisKind::Seed, "5, 6").unwrap(),
        Axis::nothing(),
        Axis::parse(AxisKind::Steps, "2-3").unwrap(),
    )
    .unwrap();
    let out = run_grid(&plan, |c| Ok(generate(&model, &params_for(&plan, c)))).unwrap();
    let g = &out.image;
    // Sub-grid: 2 cells wide, no left band (Y has no labels), a band on top.
    let sub_w = 2 * CELL;
    assert_eq!(g.width, 2 * sub_w);
    let sub_h = {
        // The top band of the sub-grid is the height above its cells.
        let single = run_grid(
            &GridPlan::new(plan.x.clone(), Axis::nothing(), Axis::nothing()).unwrap(),
            |c| Ok(generate(&model, &params_for(&plan, c))),
        )
        .unwrap();
        single.image.height
    };
    assert!(g.height > sub_h, "a Z title band sits above the sub-grids");
    let z_top = g.height - sub_h;
    let sub_top = sub_h - CELL;
    // Cell (x=1, z=1) lies in the second sub-grid.
    let c = CellIndex { x: 1, y: 0, z: 1 };
    let (fresh, _) = generate(&model, &params_for(&plan, c));
    let region = g.crop(sub_w + CELL, z_top + sub_top, CELL, CELL);
    assert_eq!(region.data, fresh.data);
    for z in 0..2 {
        assert!(has_ink(g, z * sub_w, 0, sub_w, z_top), "Z label {z}");
    }
    assert_eq!(out.infotext.get("Z Type"), Some("Steps"));
}
