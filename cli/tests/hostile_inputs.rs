//! The `easel` binary on hostile input (issue 16): files, flags, prompts and infotexts that
//! used to abort the process, hang it, allocate without bound or read outside the models
//! folder. Each case is made here by a few lines of code; each must end in an ordinary
//! exit (never a signal) with a message naming what was wrong.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn easel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_easel"))
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("easel-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fixtures_models() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/models"
    ))
}

/// Runs `cmd`, asserting it exited by itself (not by a signal such as SIGABRT from a stack
/// overflow); returns its output with stderr and stdout joined for matching.
fn finished(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.code().is_some(),
        "killed by a signal: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = messages(&out);
    (out, text)
}

/// A run's stderr and stdout joined, for matching messages.
fn messages(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

fn fails_with(cmd: &mut Command, needles: &[&str]) {
    let (out, text) = finished(cmd);
    assert!(!out.status.success(), "succeeded: {text}");
    for n in needles {
        assert!(text.contains(n), "`{n}` not in: {text}");
    }
}

/// CRC-32 (IEEE), bit by bit: enough for a few test entries.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip of stored entries, as torch writes checkpoints.
fn stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let header = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(&sig.to_le_bytes());
            if central {
                h.extend_from_slice(&20u16.to_le_bytes()); // made by
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // needed
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&0u16.to_le_bytes()); // stored
            h.extend_from_slice(&0u32.to_le_bytes()); // time, date
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra
            if central {
                h.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
                h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend_from_slice(data);
        central.extend(header(0x0201_4b50, true));
    }
    let cd_offset = out.len() as u32;
    let cd_len = central.len() as u32;
    out.extend(central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&cd_len.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A protocol-2 pickle of `depth` lists nested in each other (131 KB at 131k levels).
fn deep_pickle(depth: usize) -> Vec<u8> {
    let mut p = vec![0x80, 2];
    p.extend(std::iter::repeat_n(b']', depth));
    p.extend(std::iter::repeat_n(b'a', depth - 1));
    p.push(b'.');
    p
}

#[test]
fn deeply_nested_pickle_is_refused_by_models_and_generate() {
    let models = temp_dir("deep");
    let sd = models.join("Stable-diffusion");
    std::fs::create_dir_all(&sd).unwrap();
    let pkl = deep_pickle(131_072);
    std::fs::write(sd.join("deep.ckpt"), stored_zip(&[("deep/data.pkl", &pkl)])).unwrap();
    // A truncated stream too: the old overflow was in dropping the parsed graph.
    std::fs::write(
        sd.join("cut.ckpt"),
        stored_zip(&[("cut/data.pkl", &pkl[..pkl.len() - 1000])]),
    )
    .unwrap();
    let (out, text) = finished(easel().args(["models", "--json", "--models"]).arg(&models));
    assert!(out.status.success(), "{text}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cks = v["checkpoints"].as_array().unwrap();
    assert_eq!(cks.len(), 2, "{text}");
    for c in cks {
        let err = c["error"].as_str().unwrap_or_default();
        assert!(
            err.contains("deeper than 256") || err.contains("without a STOP"),
            "{c}"
        );
    }
    fails_with(
        easel()
            .args([
                "generate", "--steps", "1", "--size", "64x64", "--model", "deep",
            ])
            .arg("--models")
            .arg(&models)
            .arg("-o")
            .arg(models.join("x.png")),
        &["deep.ckpt", "deeper than 256"],
    );
    std::fs::remove_dir_all(&models).ok();
}

#[test]
fn deeply_nested_prompts_are_an_error_naming_the_position() {
    let dir = temp_dir("prompts");
    // 17k brackets (the `[a:` nest at 10k, to stay under the length limit).
    for (open, count, name) in [
        ("(", 17_000, "round"),
        ("[", 17_000, "square"),
        ("[a:", 10_000, "edit"),
    ] {
        let prompt = open.repeat(count);
        fails_with(
            easel()
                .current_dir(&dir)
                .args(["generate", "--steps", "1", "--size", "64x64", "--prompt"])
                .arg(&prompt)
                .arg("-o")
                .arg(dir.join(format!("{name}.png"))),
            &["nest deeper than 100 levels at character"],
        );
    }
    // A megabyte of prompt, from a PNG (too long for a command line): refused up front.
    let t0 = std::time::Instant::now();
    let png = png_with(
        &dir,
        "long-prompt.png",
        &format!(
            "{}\nSteps: 1, Size: 64x64, Seed: 1",
            "a ".repeat(512 * 1024)
        ),
    );
    fails_with(
        easel()
            .current_dir(&dir)
            .args(["generate", "--from"])
            .arg(&png)
            .arg("-o")
            .arg(dir.join("long.png")),
        &["characters; the limit is 32768"],
    );
    // 17k nested brackets from a PNG too.
    let png = png_with(
        &dir,
        "deep-prompt.png",
        &format!("{}\nSteps: 1, Size: 64x64, Seed: 1", "(".repeat(17_000)),
    );
    fails_with(
        easel()
            .current_dir(&dir)
            .args(["generate", "--from"])
            .arg(&png)
            .arg("-o")
            .arg(dir.join("deep.png")),
        &["nest deeper than 100 levels at character 101"],
    );
    // 10k BREAKs: over the chunk limit.
    fails_with(
        easel()
            .current_dir(&dir)
            .args(["generate", "--steps", "1", "--size", "64x64", "--prompt"])
            .arg("a BREAK ".repeat(3000))
            .arg("-o")
            .arg(dir.join("break.png")),
        &["chunks of 75 tokens", "the limit is 64"],
    );
    fails_with(
        easel()
            .current_dir(&dir)
            .args(["generate", "--steps", "1", "--size", "64x64", "--prompt"])
            .arg("a AND ".repeat(3000))
            .arg("-o")
            .arg(dir.join("and.png")),
        &["AND-separated parts", "the limit is 64"],
    );
    assert!(t0.elapsed().as_secs() < 120, "{:?}", t0.elapsed());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn oversized_flags_and_grids_are_refused() {
    let dir = temp_dir("flags");
    let generate = |extra: &[&str]| {
        let mut c = easel();
        c.current_dir(&dir)
            .args(["generate", "--steps", "1"])
            .args(extra)
            .arg("-o")
            .arg(dir.join("x.png"));
        c
    };
    fails_with(
        &mut generate(&["--batch-size", "100000"]),
        &["batch size must be between 1 and 64"],
    );
    fails_with(
        &mut generate(&["--batch-size", "64", "--size", "2048x2048"]),
        &["the limit is 16777216"],
    );
    fails_with(
        &mut generate(&["--threads", "100000"]),
        &["--threads", "1..=1024"],
    );
    for command in ["bench", "serve"] {
        fails_with(
            easel().args([command, "--threads", "100000"]),
            &["--threads", "1..=1024"],
        );
    }
    let grid = |values: &str| {
        let mut c = easel();
        c.current_dir(&dir)
            .args([
                "grid", "--steps", "1", "--size", "64x64", "--x-type", "seed",
            ])
            .arg("--x-values")
            .arg(values)
            .arg("-o")
            .arg(dir.join("g.png"));
        c
    };
    fails_with(&mut grid("1-1000000000"), &["more than 1024 values"]);
    fails_with(&mut grid("1-10 [5000]"), &["more than 1024 values"]);
    fails_with(
        &mut grid("1-9223372036854775807"),
        &["1-9223372036854775807"],
    );
    let many: Vec<String> = (0..10_000).map(|i| format!("v{i}")).collect();
    fails_with(
        easel()
            .current_dir(&dir)
            .args(["grid", "--prompt", "v0", "--x-type", "prompt_sr"])
            .arg("--x-values")
            .arg(many.join(","))
            .arg("-o")
            .arg(dir.join("g.png")),
        &["10000 values; the limit is 1024"],
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(unix)]
#[test]
fn devices_are_not_read_as_files() {
    for args in [
        &["info", "/dev/zero"][..],
        &["hash", "--no-cache", "/dev/zero"],
    ] {
        fails_with(easel().args(args), &["/dev/zero", "not a regular file"]);
    }
}

#[cfg(unix)]
#[test]
fn symlink_loops_in_the_models_folder_end() {
    let models = temp_dir("loop");
    let sd = models.join("Stable-diffusion");
    std::fs::create_dir_all(sd.join("sub")).unwrap();
    std::os::unix::fs::symlink(&models, sd.join("sub/up")).unwrap();
    std::os::unix::fs::symlink(&sd, sd.join("self")).unwrap();
    std::os::unix::fs::symlink(
        fixtures_models().join("Stable-diffusion/tiny.ckpt"),
        sd.join("sub/linked.ckpt"),
    )
    .unwrap();
    std::fs::create_dir_all(models.join("hypernetworks")).unwrap();
    std::os::unix::fs::symlink(&models, models.join("hypernetworks/loop")).unwrap();
    let (out, text) = finished(easel().args(["models", "--json", "--models"]).arg(&models));
    assert!(out.status.success(), "{text}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The linked checkpoint is listed once (the real folder is entered once).
    let names: Vec<&str> = v["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["linked"], "{text}");
    std::fs::remove_dir_all(&models).ok();
}

/// A PNG whose infotext is `parameters`.
fn png_with(dir: &Path, name: &str, parameters: &str) -> PathBuf {
    let p = dir.join(name);
    easel_core::infotext::write_png(&p, 8, 8, &[0u8; 8 * 8 * 3], Some(parameters)).unwrap();
    p
}

#[test]
fn names_from_pngs_and_prompts_are_not_paths() {
    let dir = temp_dir("names");
    // A checkpoint outside the models folder that a hostile PNG points at.
    let outside = dir.join("outside.ckpt");
    std::fs::copy(
        fixtures_models().join("Stable-diffusion/tiny.ckpt"),
        &outside,
    )
    .unwrap();
    let base = "a cat\nSteps: 1, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64";
    let cases = [
        (
            format!("{base}, Model: {}", outside.display()),
            "is a path, not a name",
        ),
        (
            format!("{base}, Model: ../../outside"),
            "is a path, not a name",
        ),
        (
            format!("{base}, Model: tiny, Hypernet: ../../x"),
            "is a path, not a name",
        ),
    ];
    for (i, (text, msg)) in cases.iter().enumerate() {
        let png = png_with(&dir, &format!("in{i}.png"), text);
        fails_with(
            easel()
                .current_dir(&dir)
                .args(["generate", "--from"])
                .arg(&png)
                .arg("-o")
                .arg(dir.join("out.png")),
            &[msg],
        );
    }
    // A hypernetwork file beside the working folder, named by a prompt tag.
    let hn = dir.join("evil.pt");
    std::fs::copy(fixtures_models().join("hypernetworks/tiny-nai.pt"), &hn).unwrap();
    for tag in [
        format!("<hypernet:{}>", hn.display()),
        "<hypernet:evil.pt>".into(),
    ] {
        let (out, text) = finished(
            easel()
                .current_dir(&dir)
                .args(["generate", "--steps", "1", "--size", "64x64", "--prompt"])
                .arg(format!("a cat {tag}"))
                .arg("-o")
                .arg(dir.join("tag.png")),
        );
        assert!(!out.status.success(), "{tag} was applied: {text}");
        assert!(
            text.contains("is a path, not a name") || text.contains("unknown hypernetwork"),
            "{text}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn hostile_yaml_is_an_error_naming_the_file_and_key() {
    let models = temp_dir("yaml");
    let sd = models.join("Stable-diffusion");
    std::fs::create_dir_all(&sd).unwrap();
    let yaml =
        std::fs::read_to_string(fixtures_models().join("Stable-diffusion/tiny.yaml")).unwrap();
    for (i, (from, to, key)) in [
        ("timesteps: 1000", "timesteps: 0", "model.params.timesteps"),
        ("timesteps: 1000", "timesteps: 1", "model.params.timesteps"),
        (
            "timesteps: 1000",
            "timesteps: 4611686018427387904",
            "model.params.timesteps",
        ),
        (
            "timesteps: 1000",
            "timesteps: 1000000000000",
            "model.params.timesteps",
        ),
        ("model_channels: 32", "model_channels: 0", "model_channels"),
    ]
    .iter()
    .enumerate()
    {
        let name = format!("m{i}");
        #[cfg(unix)]
        std::os::unix::fs::symlink(
            fixtures_models().join("Stable-diffusion/tiny.ckpt"),
            sd.join(format!("{name}.ckpt")),
        )
        .unwrap();
        #[cfg(not(unix))]
        std::fs::copy(
            fixtures_models().join("Stable-diffusion/tiny.ckpt"),
            sd.join(format!("{name}.ckpt")),
        )
        .unwrap();
        assert!(yaml.contains(from));
        let mut f = std::fs::File::create(sd.join(format!("{name}.yaml"))).unwrap();
        f.write_all(yaml.replace(from, to).as_bytes()).unwrap();
        fails_with(
            easel()
                .args([
                    "generate", "--steps", "1", "--size", "64x64", "--model", &name,
                ])
                .arg("--models")
                .arg(&models)
                .arg("-o")
                .arg(models.join("x.png")),
            &[&format!("{name}.yaml"), key],
        );
    }
    std::fs::remove_dir_all(&models).ok();
}

/// The committed hostile corpus (`tests/fixtures/hostile/`, written by its
/// `make_hostile_corpus.py`), each file run through the command a user would run on it:
/// model files converted or loaded from a models folder, PNGs and infotexts pasted with
/// `generate --from`, prompts generated (raw pickles as the `data.pkl` of a checkpoint).
/// Every run must end by itself within a minute, its messages holding the manifest's words
/// (the file's name among them for files); `error` must fail and leave no output or temp
/// file behind, `warn` and `ok` must succeed.
#[test]
fn committed_hostile_corpus_ends_with_clear_messages() {
    let root = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/hostile"
    ));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap()).unwrap();
    let dir = temp_dir("corpus");
    let tiny = fixtures_models().join("Stable-diffusion/tiny.ckpt");
    let input_png = png_with(&dir, "input.png", "x");
    let mut checked = 0;
    let mut faults: Vec<String> = Vec::new();
    for (rel, want) in manifest.as_object().unwrap() {
        let (class, file_name) = rel.split_once('/').unwrap();
        let file = root.join(rel);
        let stem = file_name.rsplit_once('.').unwrap().0;
        let case = dir.join(format!("case-{checked}"));
        let models = case.join("models");
        std::fs::create_dir_all(models.join("Stable-diffusion")).unwrap();
        std::fs::copy(&tiny, models.join("Stable-diffusion/tiny.ckpt")).unwrap();
        let place = |sub: &str, name: &str| {
            let to = models.join(sub).join(name);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&file, &to).unwrap();
            to
        };
        let out = case.join("out.png");
        let generate = |extra: &[&str]| {
            let mut c = easel();
            c.current_dir(&case)
                .args(["generate", "--models"])
                .arg(&models)
                .args(extra)
                .arg("-o")
                .arg(&out);
            c
        };
        let text_of = || std::fs::read_to_string(&file).unwrap();
        let small = ["--steps", "1", "--size", "64x64"];
        let mut cmd = match class {
            "pickle" | "ckpt" | "legacy" | "safetensors" => {
                let input = if class == "pickle" {
                    let pkl = std::fs::read(&file).unwrap();
                    let zip =
                        stored_zip(&[("archive/data.pkl", &pkl), ("archive/version", b"3\n")]);
                    let input = case.join(format!("{file_name}.ckpt"));
                    std::fs::write(&input, zip).unwrap();
                    input
                } else {
                    let input = case.join(file_name);
                    std::fs::copy(&file, &input).unwrap();
                    input
                };
                let mut c = easel();
                c.arg("convert")
                    .arg(&input)
                    .arg(case.join("out.safetensors"));
                c
            }
            "yaml" => {
                std::fs::copy(&tiny, models.join(format!("Stable-diffusion/{stem}.ckpt"))).unwrap();
                place("Stable-diffusion", file_name);
                let mut args = small.to_vec();
                args.extend(["--model", stem, "-p", "x"]);
                generate(&args)
            }
            "hypernetwork" => {
                place("hypernetworks", file_name);
                let mut args = small.to_vec();
                args.extend(["--hypernet", stem, "-p", "x"]);
                generate(&args)
            }
            "lora" => {
                place("Lora", file_name);
                let prompt = format!("x <lora:{stem}:1>");
                let mut args = small.to_vec();
                args.extend(["-p", prompt.as_str()]);
                generate(&args)
            }
            "embedding" => {
                let emb = case.join("embeddings");
                std::fs::create_dir_all(&emb).unwrap();
                std::fs::copy(&file, emb.join(file_name)).unwrap();
                let emb = emb.display().to_string();
                let mut args = small.to_vec();
                args.extend(["--embeddings-dir", emb.as_str(), "-p", stem]);
                generate(&args)
            }
            "upscaler" => {
                place("ESRGAN", file_name);
                let mut c = easel();
                c.args(["upscale", "--models"])
                    .arg(&models)
                    .args(["--upscaler", stem, "--scale", "2", "-o"])
                    .arg(&out)
                    .arg(&input_png);
                c
            }
            "png" => {
                let png = case.join(file_name);
                std::fs::copy(&file, &png).unwrap();
                generate(&["--from", png.to_str().unwrap()])
            }
            "infotext" => {
                let png = png_with(&case, "pasted.png", &text_of());
                generate(&["--from", png.to_str().unwrap()])
            }
            "prompt" => {
                let prompt = text_of();
                let mut args = small.to_vec();
                args.extend(["-p", prompt.as_str()]);
                generate(&args)
            }
            // Request bodies go to the server in `cli/tests/api.rs`.
            "api" => continue,
            other => panic!("no command for corpus class `{other}`"),
        };
        let started = std::time::Instant::now();
        let output = cmd.output().unwrap();
        let text = messages(&output);
        let took = started.elapsed();
        let mut check = |ok: bool, what: String| {
            if !ok {
                faults.push(format!(
                    "{rel}: {what}\n    {}",
                    text.replace('\n', "\n    ")
                ));
            }
        };
        check(
            output.status.code().is_some(),
            format!("killed by a signal ({:?})", output.status),
        );
        check(
            took < std::time::Duration::from_secs(60),
            format!("took {took:?}"),
        );
        for w in want["words"].as_array().unwrap() {
            let w = w.as_str().unwrap();
            check(text.contains(w), format!("`{w}` not in the messages"));
        }
        match want["expect"].as_str().unwrap() {
            "error" => {
                check(!output.status.success(), "succeeded".into());
                // Nothing half-written: no output and no temp file beside it.
                let left: Vec<_> = std::fs::read_dir(&case)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with('.') || n.starts_with("out"))
                    .collect();
                check(left.is_empty(), format!("left {left:?}"));
            }
            _ => check(output.status.success(), "failed".into()),
        }
        std::fs::remove_dir_all(&case).ok();
        checked += 1;
    }
    assert!(faults.is_empty(), "{}", faults.join("\n"));
    assert!(checked >= 60, "only {checked} corpus files");
    std::fs::remove_dir_all(&dir).ok();
}
