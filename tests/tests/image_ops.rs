//! The 8-bit image layer (`easel_core::image`) against Pillow and OpenCV.
//!
//! Expected pixels come from `tests/fixtures/image/make_image_fixtures.py`, which runs
//! Pillow 13 / OpenCV 4.10 the way A1111's `images.py`, `masking.py`, `upscaler.py` and
//! `processing.py` do. Every comparison is byte-exact except JPEG decoding (a different
//! decoder; the tolerance is stated there). Each test checks all its cases and then reports
//! every mismatch at once.

use std::io::Read;
use std::sync::OnceLock;

use easel_core::image::{
    apply_overlay, box_gaussian_blur, create_binary_mask, decode_image, decode_mask, decode_rgba,
    expand_crop_region, fill, flatten, get_crop_region, get_crop_region_v2, latent_mask, mask_blur,
    prepare_init_image, prepare_mask, resize_image, upscale, CropRegion, DecodedImage, Filter,
    GrayImage, ImageUpscaler, InpaintingFill, MaskSettings, ResizeMode, RgbImage, SourceBox,
    UpscaleTarget, UpscalerRegistry,
};
use easel_core::Error;
use easel_tests::fixtures_dir;
use serde_json::Value;

struct Fixtures {
    cases: Vec<Value>,
    blob: Vec<u8>,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let dir = fixtures_dir().join("image");
        let text = std::fs::read_to_string(dir.join("cases.json")).expect("cases.json");
        let cases: Vec<Value> = serde_json::from_str(&text).expect("cases.json is JSON");
        let gz = std::fs::read(dir.join("expected.bin.gz")).expect("expected.bin.gz");
        let mut blob = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut blob)
            .expect("gzip");
        Fixtures { cases, blob }
    })
}

fn cases(kind: &str) -> Vec<&'static Value> {
    let v: Vec<_> = fixtures()
        .cases
        .iter()
        .filter(|c| c["kind"] == kind)
        .collect();
    assert!(!v.is_empty(), "no `{kind}` cases in cases.json");
    v
}

/// (width, height, channels, bytes) of an expected image.
fn pixels(d: &Value) -> (usize, usize, usize, &'static [u8]) {
    let off = d["offset"].as_u64().unwrap() as usize;
    let len = d["len"].as_u64().unwrap() as usize;
    (
        d["w"].as_u64().unwrap() as usize,
        d["h"].as_u64().unwrap() as usize,
        d["c"].as_u64().unwrap() as usize,
        &fixtures().blob[off..off + len],
    )
}

fn floats(d: &Value) -> Vec<f32> {
    let off = d["offset"].as_u64().unwrap() as usize;
    let len = d["len"].as_u64().unwrap() as usize;
    fixtures().blob[off..off + len]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn input(name: &str) -> DecodedImage {
    let path = fixtures_dir().join("image").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    decode_rgba(&bytes, name).unwrap_or_else(|e| panic!("{e}"))
}

fn rgb_input(name: &str) -> RgbImage {
    match input(name) {
        DecodedImage::Rgb(i) => i,
        other => panic!("{name}: expected RGB, got {other:?}"),
    }
}

fn gray_input(name: &str) -> GrayImage {
    match input(name) {
        DecodedImage::Gray(i) => i,
        other => panic!("{name}: expected L, got {other:?}"),
    }
}

/// Compares an image's bytes with the expected ones; returns a message on mismatch.
fn compare(label: &str, w: usize, h: usize, data: &[u8], expected: &Value) -> Option<String> {
    let (ew, eh, ec, e) = pixels(expected);
    if (w, h) != (ew, eh) {
        return Some(format!("{label}: size {w}x{h}, expected {ew}x{eh}"));
    }
    if data.len() != e.len() {
        return Some(format!(
            "{label}: {} bytes, expected {} ({ec} channels)",
            data.len(),
            e.len()
        ));
    }
    let diffs: Vec<usize> = (0..e.len()).filter(|&i| data[i] != e[i]).collect();
    if diffs.is_empty() {
        return None;
    }
    let i = diffs[0];
    let px = i / ec;
    let max = diffs
        .iter()
        .map(|&i| (data[i] as i32 - e[i] as i32).abs())
        .max()
        .unwrap();
    Some(format!(
        "{label}: {} of {} bytes differ (max {max}); first at pixel ({}, {}) channel {}: got {}, expected {}",
        diffs.len(),
        e.len(),
        px % w,
        px / w,
        i % ec,
        data[i],
        e[i]
    ))
}

fn report(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn filter(name: &str) -> Filter {
    match name {
        "nearest" => Filter::Nearest,
        "bilinear" => Filter::Bilinear,
        "bicubic" => Filter::Bicubic,
        "lanczos" => Filter::Lanczos,
        other => panic!("unknown filter {other}"),
    }
}

fn usize_of(v: &Value) -> usize {
    v.as_u64().expect("unsigned") as usize
}

/// A1111's built-ins plus the fixture's stand-in model upscaler.
fn registry() -> UpscalerRegistry {
    let mut reg = UpscalerRegistry::with_builtins();
    reg.register(Box::new(Double)).unwrap();
    reg
}

fn upscaler<'a>(reg: &'a UpscalerRegistry, v: &Value) -> Option<&'a dyn ImageUpscaler> {
    match v.as_str() {
        None => None,
        Some(name) => reg.get(name).expect("builtin upscaler"),
    }
}

#[test]
fn resize_matches_pillow_for_every_filter_and_size() {
    let rgb = rgb_input("in_rgb.png");
    let gray = gray_input("in_gray.png");
    let mut failures = Vec::new();
    for c in cases("resize") {
        let (w, h) = (usize_of(&c["width"]), usize_of(&c["height"]));
        let f = filter(c["filter"].as_str().unwrap());
        let label = format!("{} {} -> {w}x{h}", c["src"], c["filter"]);
        let got = match c["src"].as_str().unwrap() {
            "rgb" => rgb.resize(w, h, f).unwrap().data,
            _ => gray.resize(w, h, f).unwrap().data,
        };
        failures.extend(compare(&label, w, h, &got, &c["out"]));
    }
    report(failures);
}

#[test]
fn resize_with_a_source_box_matches_pillow() {
    let rgb = rgb_input("in_rgb.png");
    let mut failures = Vec::new();
    for c in cases("resize_box") {
        let (w, h) = (usize_of(&c["width"]), usize_of(&c["height"]));
        let b: Vec<f32> = c["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let bx = SourceBox {
            x0: b[0],
            y0: b[1],
            x1: b[2],
            y1: b[3],
        };
        let label = format!("{} box {:?} -> {w}x{h}", c["filter"], b);
        let got = rgb
            .resize_box(w, h, filter(c["filter"].as_str().unwrap()), bx)
            .unwrap();
        failures.extend(compare(&label, w, h, &got.data, &c["out"]));
    }
    report(failures);
}

#[test]
fn resize_image_matches_a1111_in_every_mode() {
    let rgb = rgb_input("in_rgb.png");
    let gray = gray_input("in_gray.png");
    let reg = registry();
    let mut failures = Vec::new();
    for c in cases("resize_image") {
        let (w, h) = (usize_of(&c["width"]), usize_of(&c["height"]));
        let mode = ResizeMode::from_index(c["mode"].as_i64().unwrap()).unwrap();
        let up = upscaler(&reg, &c["upscaler"]);
        let label = format!(
            "{} mode {:?} upscaler {} -> {w}x{h}",
            c["src"], mode, c["upscaler"]
        );
        let got = match c["src"].as_str().unwrap() {
            "rgb" => resize_image(mode, &rgb, w, h, up).unwrap().data,
            _ => gray.resize_mode(mode, w, h).unwrap().data,
        };
        failures.extend(compare(&label, w, h, &got, &c["out"]));
    }
    report(failures);
}

#[test]
fn builtin_upscalers_follow_a1111s_upscale_loop() {
    let rgb = rgb_input("in_rgb.png");
    let reg = registry();
    let mut failures = Vec::new();
    for c in cases("upscale") {
        let up = upscaler(&reg, &c["upscaler"]).unwrap();
        let s = c["scale"].as_f64().unwrap();
        let got = upscale(&rgb, UpscaleTarget::Scale(s), up).unwrap();
        failures.extend(compare(
            &format!("{} x{s}", up.name()),
            got.width,
            got.height,
            &got.data,
            &c["out"],
        ));
    }
    for c in cases("upscale_to") {
        let up = upscaler(&reg, &c["upscaler"]).unwrap();
        let (w, h) = (usize_of(&c["width"]), usize_of(&c["height"]));
        let crop = c["crop"].as_bool().unwrap();
        let got = upscale(
            &rgb,
            UpscaleTarget::Size {
                width: w,
                height: h,
                crop,
            },
            up,
        )
        .unwrap();
        let label = format!("{} to {w}x{h} crop {crop}", up.name());
        failures.extend(compare(&label, got.width, got.height, &got.data, &c["out"]));
    }
    report(failures);
}

fn mask_source(name: &str) -> Option<GrayImage> {
    match name {
        "mask" => Some(gray_input("in_mask.png")),
        "gray" => Some(gray_input("in_gray.png")),
        "row" => Some(GrayImage::new(9, 1, vec![0, 255, 0, 0, 128, 255, 255, 0, 3]).unwrap()),
        "soft" => Some(gray_input("in_soft.png")),
        _ => None,
    }
}

#[test]
fn mask_blur_matches_opencv_gaussian_blur() {
    let mut failures = Vec::new();
    for c in cases("mask_blur") {
        let src = mask_source(c["src"].as_str().unwrap()).unwrap();
        let (bx, by) = (c["blur_x"].as_f64().unwrap(), c["blur_y"].as_f64().unwrap());
        let got = mask_blur(&src, bx, by);
        let label = format!("{} blur {bx},{by}", c["src"]);
        failures.extend(compare(&label, got.width, got.height, &got.data, &c["out"]));
    }
    report(failures);
}

#[test]
fn pil_gaussian_blur_and_masking_fill_match_pillow() {
    let gray = gray_input("in_gray.png");
    let rgb = rgb_input("in_rgb.png");
    let mut failures = Vec::new();
    for c in cases("pil_gaussian") {
        let r = c["radius"].as_f64().unwrap() as f32;
        let got = box_gaussian_blur(&gray, r);
        failures.extend(compare(
            &format!("GaussianBlur({r})"),
            got.width,
            got.height,
            &got.data,
            &c["out"],
        ));
    }
    for c in cases("fill") {
        let m = mask_source(c["mask"].as_str().unwrap()).unwrap();
        let got = fill(&rgb, &m);
        failures.extend(compare(
            &format!("fill with {}", c["mask"]),
            got.width,
            got.height,
            &got.data,
            &c["out"],
        ));
    }
    report(failures);
}

fn region(v: &Value) -> CropRegion {
    let a: Vec<i64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    CropRegion {
        x1: a[0],
        y1: a[1],
        x2: a[2],
        y2: a[3],
    }
}

#[test]
fn crop_regions_match_a1111_masking() {
    let mask = gray_input("in_mask.png");
    for c in cases("crop_region") {
        let m = match c["src"].as_str().unwrap() {
            "mask" => mask.clone(),
            "soft" => mask_blur(&mask, 4.0, 4.0),
            _ => GrayImage::filled(37, 23, [0]),
        };
        let pad = c["pad"].as_i64().unwrap();
        assert_eq!(get_crop_region(&m, pad), region(&c["v1"]), "v1 {c}");
        let v2 = get_crop_region_v2(&m, pad);
        if c["v2"].is_null() {
            assert_eq!(v2, None, "v2 {c}");
        } else {
            assert_eq!(v2, Some(region(&c["v2"])), "v2 {c}");
        }
    }
    for c in cases("expand_region") {
        let got = expand_crop_region(
            region(&c["region"]),
            usize_of(&c["pw"]),
            usize_of(&c["ph"]),
            usize_of(&c["iw"]),
            usize_of(&c["ih"]),
        );
        assert_eq!(got, region(&c["out"]), "{c}");
    }
}

#[test]
fn latent_mask_matches_a1111() {
    for c in cases("latent_mask") {
        let m = mask_source(c["src"].as_str().unwrap()).unwrap();
        let (w, h) = (usize_of(&c["width"]), usize_of(&c["height"]));
        let got = latent_mask(&m, w, h, c["round"].as_bool().unwrap()).unwrap();
        assert_eq!(got.nmask, floats(&c["nmask"]), "nmask {c}");
        assert_eq!(got.mask, floats(&c["mask"]), "mask {c}");
    }
}

#[test]
fn flatten_and_binary_masks_match_a1111() {
    let rgba = input("in_rgba.png");
    let mut failures = Vec::new();
    for c in cases("flatten") {
        let got = flatten(&rgba, [255, 255, 255]);
        failures.extend(compare(
            "flatten", got.width, got.height, &got.data, &c["out"],
        ));
    }
    for c in cases("binary_mask") {
        let src = input(&format!("in_{}.png", c["src"].as_str().unwrap()));
        let got = create_binary_mask(&src, c["round"].as_bool().unwrap());
        failures.extend(compare(
            &format!("binary mask {c}"),
            got.width,
            got.height,
            &got.data,
            &c["out"],
        ));
    }
    report(failures);
}

#[test]
fn inpainting_pipeline_matches_a1111_step_by_step() {
    let init = flatten(&input("in_rgba.png"), [255, 255, 255]);
    let mask = create_binary_mask(&input("in_mask.png"), true);
    let result = rgb_input("in_result.png");
    let reg = registry();
    let mut failures = Vec::new();
    for c in cases("inpaint") {
        let (w, h) = (usize_of(&c["width"]), usize_of(&c["height"]));
        let mode = ResizeMode::from_index(c["resize_mode"].as_i64().unwrap()).unwrap();
        let up = upscaler(&reg, &c["upscaler"]);
        let s = MaskSettings {
            blur_x: c["blur_x"].as_f64().unwrap(),
            blur_y: c["blur_y"].as_f64().unwrap(),
            invert: c["invert"].as_bool().unwrap(),
            full_res: c["full_res"].as_bool().unwrap(),
            full_res_padding: c["padding"].as_i64().unwrap(),
            resize_mode: mode,
            width: w,
            height: h,
        };
        let fill_mode = if c["fill_mode"] == 1 {
            InpaintingFill::Original
        } else {
            InpaintingFill::Fill
        };
        let label = format!(
            "{w}x{h} mode {mode:?} invert {} full_res {} fill {:?} upscaler {}",
            s.invert, s.full_res, fill_mode, c["upscaler"]
        );
        let p = prepare_mask(&mask, &s).unwrap().expect("mask is not blank");
        assert_eq!(
            p.crop_region,
            c["crop"].as_array().map(|_| region(&c["crop"])),
            "{label}"
        );
        let paste = c["paste_to"].as_array().map(|a| {
            (
                a[0].as_i64().unwrap(),
                a[1].as_i64().unwrap(),
                usize_of(&a[2]),
                usize_of(&a[3]),
            )
        });
        assert_eq!(p.paste_to, paste, "{label}");
        let im = &p.image_mask;
        failures.extend(compare(
            &format!("{label} image_mask"),
            im.width,
            im.height,
            &im.data,
            &c["image_mask"],
        ));
        let init_p = prepare_init_image(&init, Some(&p), mode, w, h, fill_mode, up).unwrap();
        let overlay = init_p.overlay.as_ref().unwrap();
        failures.extend(compare(
            &format!("{label} overlay"),
            overlay.width,
            overlay.height,
            &overlay.data,
            &c["overlay"],
        ));
        let i = &init_p.image;
        failures.extend(compare(
            &format!("{label} init"),
            i.width,
            i.height,
            &i.data,
            &c["init"],
        ));
        let lm = latent_mask(&p.image_mask, w / 8, h / 8, true).unwrap();
        if lm.nmask != floats(&c["nmask"]) || lm.mask != floats(&c["mask"]) {
            failures.push(format!("{label}: latent mask differs"));
        }
        let generated = result.resize(w, h, Filter::Lanczos).unwrap();
        let fin = apply_overlay(&generated, p.paste_to, overlay, up).unwrap();
        failures.extend(compare(
            &format!("{label} final"),
            fin.width,
            fin.height,
            &fin.data,
            &c["final"],
        ));
    }
    report(failures);
}

#[test]
fn only_masked_with_a_blank_mask_falls_back_to_img2img() {
    let c = cases("inpaint_blank")[0];
    assert_eq!(c["blank"], true);
    let s = MaskSettings {
        blur_x: 4.0,
        blur_y: 4.0,
        invert: false,
        full_res: true,
        full_res_padding: 0,
        resize_mode: ResizeMode::JustResize,
        width: 64,
        height: 48,
    };
    assert_eq!(
        prepare_mask(&GrayImage::filled(37, 23, [0]), &s).unwrap(),
        None
    );
}

#[test]
fn decoders_give_pils_pixels() {
    let mut failures = Vec::new();
    for c in cases("decode") {
        let file = c["file"].as_str().unwrap();
        let bytes = std::fs::read(fixtures_dir().join("image").join(file)).unwrap();
        let rgb = decode_image(&bytes, file).unwrap();
        let gray = decode_rgba(&bytes, file).unwrap().to_gray();
        if file.ends_with(".jpg") {
            // A different JPEG decoder (zune-jpeg, not libjpeg-turbo): same size, a mean
            // difference under one level, and no channel more than 16 levels off (at sharp
            // saturated edges; see docs/images.md).
            for (got, key) in [(&rgb.data, "flattened"), (&gray.data, "gray")] {
                let (w, h, _, e) = pixels(&c[key]);
                assert_eq!((rgb.width, rgb.height), (w, h), "{file} size");
                let diffs: Vec<i32> = got
                    .iter()
                    .zip(e)
                    .map(|(a, b)| (*a as i32 - *b as i32).abs())
                    .collect();
                let max = *diffs.iter().max().unwrap();
                let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
                assert!(
                    max <= 16 && mean < 1.0,
                    "{file} {key}: max difference {max}, mean {mean}"
                );
            }
            continue;
        }
        failures.extend(compare(
            &format!("{file} flattened"),
            rgb.width,
            rgb.height,
            &rgb.data,
            &c["flattened"],
        ));
        failures.extend(compare(
            &format!("{file} gray"),
            gray.width,
            gray.height,
            &gray.data,
            &c["gray"],
        ));
    }
    report(failures);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = fixtures_dir().join("image");
    for file in ["bad_truncated.png", "bad_text.png"] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let err = decode_image(&bytes, file).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{file}: {err:?}");
        assert!(err.to_string().starts_with(file), "{file}: {err}");
        let err = decode_mask(&bytes, file).unwrap_err();
        assert!(err.to_string().contains(file), "{err}");
    }
    assert!(decode_image(&[], "empty.png")
        .unwrap_err()
        .to_string()
        .contains("empty.png"));

    let rgb = rgb_input("in_rgb.png");
    let err = rgb.resize(0, 10, Filter::Lanczos).unwrap_err().to_string();
    assert!(err.contains("0x10"), "{err}");
    let err = rgb
        .resize(20000, 10, Filter::Lanczos)
        .unwrap_err()
        .to_string();
    assert!(err.contains("20000"), "{err}");
    let err = resize_image(ResizeMode::CropAndResize, &rgb, 10, 17000, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("17000"), "{err}");

    let reg = registry();
    let lanczos = reg.get("Lanczos").unwrap().unwrap();
    for s in [0.0, -2.0, f64::NAN] {
        let err = upscale(&rgb, UpscaleTarget::Scale(s), lanczos)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("{s}")), "{err}");
    }
    let err = upscale(&rgb, UpscaleTarget::Scale(1000.0), lanczos)
        .unwrap_err()
        .to_string();
    assert!(err.contains("1000"), "{err}");
    let err = upscale(&rgb, UpscaleTarget::Scale(0.1), lanczos)
        .unwrap_err()
        .to_string();
    assert!(err.contains("0.1"), "{err}");
    assert!(reg.get("None").unwrap().is_none());
    let err = reg
        .get("4x-Nope")
        .err()
        .expect("unknown upscaler")
        .to_string();
    assert!(err.contains("4x-Nope") && err.contains("Lanczos"), "{err}");
    assert_eq!(
        UpscalerRegistry::with_builtins().names(),
        vec!["None", "Lanczos", "Nearest"]
    );
}

/// A stand-in for a 2x model upscaler (nearest-neighbour doubling), as in the fixture script.
struct Double;

impl ImageUpscaler for Double {
    fn name(&self) -> &str {
        "Double"
    }
    fn native_scale(&self) -> u32 {
        2
    }
    fn upscale_once(&self, img: &RgbImage) -> easel_core::Result<RgbImage> {
        img.resize(img.width * 2, img.height * 2, Filter::Nearest)
    }
}

#[test]
fn a_model_upscaler_runs_native_passes_until_big_enough() {
    let rgb = rgb_input("in_rgb.png");
    let mut reg = UpscalerRegistry::with_builtins();
    reg.register(Box::new(Double)).unwrap();
    assert!(reg
        .register(Box::new(Double))
        .unwrap_err()
        .to_string()
        .contains("Double"));
    let mut failures = Vec::new();
    for c in cases("upscale")
        .into_iter()
        .filter(|c| c["upscaler"] == "Double")
    {
        let s = c["scale"].as_f64().unwrap();
        let got = upscale(&rgb, UpscaleTarget::Scale(s), &Double).unwrap();
        failures.extend(compare(
            &format!("Double x{s}"),
            got.width,
            got.height,
            &got.data,
            &c["out"],
        ));
    }
    for c in cases("resize_image")
        .into_iter()
        .filter(|c| c["upscaler"] == "Double")
    {
        let (w, h) = (usize_of(&c["width"]), usize_of(&c["height"]));
        let got = resize_image(ResizeMode::JustResize, &rgb, w, h, Some(&Double)).unwrap();
        failures.extend(compare(
            "resize_image with Double",
            w,
            h,
            &got.data,
            &c["out"],
        ));
    }
    report(failures);
}
