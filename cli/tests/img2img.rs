//! `easel generate` img2img and hires fix end to end on the tiny model: the images equal
//! the A1111-flow references of `tests/fixtures/img2img/make_img2img_fixtures.py`, their
//! infotexts carry `Denoising strength` / `Hires …` and regenerate with `--from`, and bad
//! input is refused naming the file or value.

use easel_core::formats::open_tensor_store;
use easel_core::image::decode_image;
use easel_core::infotext::{read_parameters, write_png, Infotext};
use std::path::{Path, PathBuf};
use std::process::Command;

fn easel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_easel"))
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn run(args: &[&str]) -> (bool, String) {
    let models = fixtures().join("models");
    let out = easel()
        .args([
            "generate",
            "--models",
            models.to_str().unwrap(),
            "--model",
            "tiny",
        ])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn pixels(path: &Path) -> Vec<u8> {
    decode_image(&std::fs::read(path).unwrap(), "output")
        .unwrap()
        .data
}

fn assert_close(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: size");
    let max = got
        .iter()
        .zip(want)
        .map(|(&a, &b)| (a as i32 - b as i32).abs())
        .max()
        .unwrap_or(0);
    assert!(max <= 1, "{what}: max pixel difference {max}");
}

#[test]
fn img2img_matches_the_reference_and_round_trips() {
    let dir_guard = easel_tests::scratch_dir("easel-i2i-img2img");
    let dir = dir_guard.path();
    let store = open_tensor_store(&fixtures().join("img2img/img2img.safetensors")).unwrap();
    let (_, init) = store.read_raw("euler_gpu_d075.init").unwrap();
    let init_png = dir.join("init.png");
    write_png(&init_png, 64, 64, &init, None).unwrap();
    let out = dir.join("out.png");
    let common = [
        "--prompt",
        "a photo of a cat",
        "--steps",
        "10",
        "--cfg",
        "7.5",
        "--seed",
        "1234",
        "--size",
        "64x64",
        "--sampler",
        "Euler",
    ];
    let (ok, err) = run(&[
        &common[..],
        &[
            "--init-img",
            init_png.to_str().unwrap(),
            "--denoising-strength",
            "0.75",
            "-o",
            out.to_str().unwrap(),
        ],
    ]
    .concat());
    assert!(ok, "{err}");
    let (_, want) = store.read_raw("euler_gpu_d075.pixels").unwrap();
    assert_close(&pixels(&out), &want, "img2img");
    let text = read_parameters(&out).unwrap().unwrap();
    let info = Infotext::parse(&text);
    assert_eq!(info.get("Denoising strength"), Some("0.75"), "{text}");
    // --from restores the strength (the init image is given again).
    let again = dir.join("again.png");
    let (ok, err) = run(&[
        "--from",
        out.to_str().unwrap(),
        "--init-img",
        init_png.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(pixels(&again), pixels(&out));
}

#[test]
fn hires_fix_matches_the_reference_and_round_trips() {
    let dir_guard = easel_tests::scratch_dir("easel-i2i-hires");
    let dir = dir_guard.path();
    let store = open_tensor_store(&fixtures().join("img2img/hires.safetensors")).unwrap();
    let out = dir.join("hr.png");
    let (ok, err) = run(&[
        "--prompt",
        "a photo of a cat",
        "--steps",
        "6",
        "--cfg",
        "7.5",
        "--seed",
        "4321",
        "--size",
        "64x64",
        "--sampler",
        "Euler",
        "--hr-scale",
        "2",
        "--hr-upscaler",
        "Latent",
        "--hr-denoising-strength",
        "0.7",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let (_, want) = store.read_raw("latent_x2_euler.pixels").unwrap();
    assert_close(&pixels(&out), &want, "hires");
    let text = read_parameters(&out).unwrap().unwrap();
    assert!(
        text.contains("Size: 64x64")
            && text.contains("Denoising strength: 0.7")
            && text.contains("Hires upscale: 2, Hires upscaler: Latent"),
        "{text}"
    );
    let again = dir.join("again.png");
    let (ok, err) = run(&[
        "--from",
        out.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(pixels(&again), pixels(&out));
}

#[test]
fn bad_img2img_input_is_refused_naming_it() {
    let dir_guard = easel_tests::scratch_dir("easel-i2i-bad");
    let dir = dir_guard.path();
    let not_image = dir.join("notes.txt");
    std::fs::write(&not_image, "not a picture").unwrap();
    let out = dir.join("x.png");
    let base = [
        "--steps",
        "1",
        "--size",
        "64x64",
        "-o",
        out.to_str().unwrap(),
    ];
    let (ok, err) = run(&[&base[..], &["--init-img", not_image.to_str().unwrap()]].concat());
    assert!(!ok && err.contains("notes.txt"), "{err}");
    let png = dir.join("init.png");
    write_png(&png, 8, 8, &[128; 8 * 8 * 3], None).unwrap();
    let (ok, err) = run(&[
        &base[..],
        &[
            "--init-img",
            png.to_str().unwrap(),
            "--denoising-strength",
            "1.5",
        ],
    ]
    .concat());
    assert!(!ok && err.contains("denoising strength"), "{err}");
    let (ok, err) = run(&[&base[..], &["--mask", png.to_str().unwrap()]].concat());
    assert!(!ok && err.contains("--init-img"), "{err}");
    let (ok, err) = run(&[&base[..], &["--hr-upscaler", "Bogus"]].concat());
    assert!(!ok && err.contains("Bogus"), "{err}");
    assert!(!out.exists(), "nothing is written on error");
}

/// A models folder with the tiny checkpoint and the tiny upscaler fixtures (links).
fn models_with_upscalers(dir: &Path) -> PathBuf {
    let models = dir.join("models");
    let sd = models.join("Stable-diffusion");
    std::fs::create_dir_all(&sd).unwrap();
    for f in ["tiny.ckpt", "tiny.yaml", "tiny.vae.pt"] {
        let from = fixtures().join("models/Stable-diffusion").join(f);
        let _ = std::fs::remove_file(sd.join(f));
        std::os::unix::fs::symlink(from, sd.join(f)).unwrap();
    }
    let _ = std::fs::remove_file(models.join("ESRGAN"));
    std::os::unix::fs::symlink(
        fixtures().join("upscalers/models/ESRGAN"),
        models.join("ESRGAN"),
    )
    .unwrap();
    models
}

/// Hires fix with a model upscaler is A1111's chain: the first pass's image, upscaled by
/// the model (as the Extras tab does it), then img2img at the target size with the same
/// seed. A1111 gives the second pass its steps explicitly, so `setup_img2img_steps` runs
/// `int(steps / strength)` = 4 steps and keeps the last 2: the sigmas plain img2img uses
/// for 4 steps at any strength in [0.25, 0.5). The three CLI steps must give the same
/// pixels as the one hires run.
#[test]
fn hires_fix_with_a_model_upscaler_is_txt2img_upscale_img2img() {
    let dir_guard = easel_tests::scratch_dir("easel-i2i-hires-esrgan");
    let dir = dir_guard.path();
    let models = models_with_upscalers(dir);
    let m = models.to_str().unwrap();
    let gen = |args: &[&str], out: &Path| {
        let o = easel()
            .args(["generate", "--models", m, "--model", "tiny"])
            .args([
                "--prompt",
                "a photo of a cat",
                "--seed",
                "5",
                "--sampler",
                "Euler",
            ])
            .args(args)
            .arg("-o")
            .arg(out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let hires = dir.join("hires.png");
    gen(
        &[
            "--size",
            "64x64",
            "--steps",
            "3",
            "--hires",
            "--hr-upscaler",
            "tiny-compact-x2",
            "--hr-scale",
            "2",
            "--hr-second-pass-steps",
            "2",
            "--denoising-strength",
            "0.5",
        ],
        &hires,
    );
    let first = dir.join("first.png");
    gen(&["--size", "64x64", "--steps", "3"], &first);
    let up = dir.join("up.png");
    let o = easel()
        .args([
            "upscale",
            "--models",
            m,
            "--upscaler",
            "tiny-compact-x2",
            "--scale",
            "2",
        ])
        .arg(&first)
        .arg("-o")
        .arg(&up)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let chained = dir.join("chained.png");
    gen(
        &[
            "--size",
            "128x128",
            "--steps",
            "4",
            "--denoising-strength",
            "0.3",
            "--init-img",
            up.to_str().unwrap(),
        ],
        &chained,
    );
    assert_close(&pixels(&hires), &pixels(&chained), "hires vs chain");
    let text = read_parameters(&hires).unwrap().unwrap();
    assert!(text.contains("Hires upscaler: tiny-compact-x2"), "{text}");
    // Pasting it back finds the upscaler again.
    let again = dir.join("again.png");
    let o = easel()
        .args(["generate", "--models", m, "--from"])
        .arg(&hires)
        .arg("-o")
        .arg(&again)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_close(&pixels(&again), &pixels(&hires), "--from");

    // An upscaler that is not in the folder is named in the error.
    let (ok, err) = run(&[
        "--hires",
        "--hr-upscaler",
        "no-such-upscaler",
        "--size",
        "64x64",
        "--steps",
        "1",
        "-o",
        dir.join("x.png").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("no-such-upscaler"), "{err}");
}

/// A1111 ≥ 1.6 schedules the hires pass's prompt over the first pass's steps with the hires
/// steps given: `[cat:dog:0.5]` switches at half the first pass and, for the second pass
/// (fractions count from 1.0 there), is `dog` throughout, exactly as a hires prompt of
/// `dog` would be. With old timelines (A1111 < 1.6) the second pass switches half-way
/// through its own steps instead, so the images differ.
#[test]
fn hires_pass_schedules_prompt_edits_as_a1111_1_6() {
    let dir_guard = easel_tests::scratch_dir("easel-i2i-hires-schedule");
    let dir = dir_guard.path();
    let gen = |extra: &[&str], name: &str| {
        let out = dir.join(name);
        let mut args = vec![
            "--prompt",
            "a photo of a [cat:dog:0.5]",
            "--seed",
            "21",
            "--steps",
            "4",
            "--size",
            "64x64",
            "--sampler",
            "Euler",
            "--hires",
            "--hr-scale",
            "1.5",
            "--hr-second-pass-steps",
            "4",
            "--denoising-strength",
            "0.7",
        ];
        args.extend_from_slice(extra);
        args.extend(["-o", out.to_str().unwrap()]);
        let (ok, err) = run(&args);
        assert!(ok, "{err}");
        pixels(&out)
    };
    let edited = gen(&[], "edited.png");
    let explicit = gen(&["--hr-prompt", "a photo of a dog"], "explicit.png");
    assert_close(&edited, &explicit, "hires pass of [cat:dog:0.5] vs dog");
    let half = gen(&["--hr-prompt", "a photo of a cat"], "cat.png");
    assert!(
        edited != half,
        "the second pass did not use the edited prompt at all"
    );
}

/// `--vae-encoder taesd` (A1111's "VAE type for encode: TAESD"; the encoder itself is
/// checked against taesd's torch module in the pipeline tests): the init image is encoded by
/// the folder's `VAE-approx/taesd_encoder.pth`, which changes the image, the PNG records
/// `VAE Encoder: TAESD` where A1111 does (after the img2img fields) and `--from` repeats it.
#[test]
fn taesd_encoder_is_used_recorded_and_repeated() {
    let dir_guard = easel_tests::scratch_dir("easel-i2i-taesd-encode");
    let dir = dir_guard.path();
    let store = open_tensor_store(&fixtures().join("img2img/img2img.safetensors")).unwrap();
    let (_, init) = store.read_raw("euler_gpu_d075.init").unwrap();
    let init_png = dir.join("init.png");
    write_png(&init_png, 64, 64, &init, None).unwrap();
    let common = [
        "--prompt",
        "a photo of a cat",
        "--steps",
        "4",
        "--seed",
        "7",
        "--size",
        "64x64",
        "--init-img",
        init_png.to_str().unwrap(),
    ];
    let full = dir.join("full.png");
    let (ok, err) = run(&[&common[..], &["-o", full.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    let taesd = dir.join("taesd.png");
    let (ok, err) = run(&[
        &common[..],
        &["--vae-encoder", "taesd", "-o", taesd.to_str().unwrap()],
    ]
    .concat());
    assert!(ok, "{err}");
    assert!(
        pixels(&full) != pixels(&taesd),
        "TAESD encoding changed nothing"
    );
    let text = read_parameters(&taesd).unwrap().unwrap();
    assert!(
        text.contains("Denoising strength: 0.75, ") && text.contains(", VAE Encoder: TAESD"),
        "{text}"
    );
    assert!(!read_parameters(&full)
        .unwrap()
        .unwrap()
        .contains("VAE Encoder"));
    let again = dir.join("again.png");
    let (ok, err) = run(&[
        "--from",
        taesd.to_str().unwrap(),
        "--init-img",
        init_png.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        pixels(&again) == pixels(&taesd),
        "--from did not encode with TAESD"
    );
    // Without the encoder file: an error naming it.
    let bare = dir.join("models/Stable-diffusion");
    std::fs::create_dir_all(&bare).unwrap();
    for f in ["tiny.ckpt", "tiny.yaml"] {
        let _ = std::fs::remove_file(bare.join(f));
        std::os::unix::fs::symlink(
            fixtures().join("models/Stable-diffusion").join(f),
            bare.join(f),
        )
        .unwrap();
    }
    let out = easel()
        .args(["generate", "--models"])
        .arg(dir.join("models"))
        .args(common)
        .args(["--vae-encoder", "taesd", "-o"])
        .arg(dir.join("bare.png"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("taesd_encoder.pth"),
        "{err}"
    );
}

/// A1111's hires schedule type: a hires sampler alone keeps the first pass's schedule type
/// ("Use same scheduler"); `--hr-schedule-type` picks another, recorded as `Hires schedule
/// type` only when the second pass's schedule differs from the first's, and `--from`
/// repeats it.
#[test]
fn hires_schedule_type_is_the_first_passes_unless_given() {
    let dir_guard = easel_tests::scratch_dir("easel-i2i-hires-schedule");
    let dir = dir_guard.path();
    let base = [
        "--prompt",
        "a photo of a cat",
        "--steps",
        "3",
        "--seed",
        "11",
        "--size",
        "64x64",
        "--sampler",
        "Euler",
        "--schedule-type",
        "Karras",
        "--hr-scale",
        "1.5",
        "--hr-sampler",
        "DPM++ 2M",
        "--denoising-strength",
        "0.6",
    ];
    let gen = |extra: &[&str], name: &str| {
        let out = dir.join(name);
        let (ok, err) = run(&[&base[..], extra, &["-o", out.to_str().unwrap()]].concat());
        assert!(ok, "{err}");
        (pixels(&out), read_parameters(&out).unwrap().unwrap())
    };
    let (same, same_text) = gen(&[], "same.png");
    let (karras, _) = gen(&["--hr-schedule-type", "Karras"], "karras.png");
    assert!(
        same == karras,
        "the hires pass did not keep the first pass's Karras"
    );
    assert!(!same_text.contains("Hires schedule type"), "{same_text}");
    let (exp, exp_text) = gen(&["--hr-schedule-type", "Exponential"], "exp.png");
    assert!(exp != same, "the hires schedule type changed nothing");
    assert!(
        exp_text.contains("Hires sampler: DPM++ 2M, Hires schedule type: Exponential, "),
        "{exp_text}"
    );
    let again = dir.join("again.png");
    let (ok, err) = run(&[
        "--from",
        dir.join("exp.png").to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        pixels(&again) == exp,
        "--from did not repeat the hires schedule"
    );
}
