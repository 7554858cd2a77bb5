//! `easel serve`'s A1111 API end to end: the real binary on a free loopback port with the
//! bundled tiny model, driven over HTTP as A1111's clients drive it. Images are checked
//! against `easel generate` for the same settings; errors against A1111's status codes and
//! body shapes; the server must keep answering after every bad request.

use base64::Engine;
use easel_core::infotext::{decode_png_rgb, parameters_from_png_bytes};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn easel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_easel"))
}

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models")
}

/// A running `easel serve`, stopped when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        Self::start_with_models(&models(), extra)
    }

    fn start_with_models(models: &std::path::Path, extra: &[&str]) -> Server {
        let mut child = easel()
            .args(["serve", "--port", "0", "--dir", "/nonexistent", "--models"])
            .arg(models)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("the server exited before listening")
                .unwrap();
            if let Some(rest) = line.strip_prefix("listening on ") {
                let url = rest.split_whitespace().next().unwrap();
                break url.trim_end_matches('/').to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/sdapi/v1/{path}", self.base)
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// (status, parsed JSON body or the text as a JSON string).
fn call(method: &str, url: &str, body: Option<&str>, auth: Option<&str>) -> (u16, Value) {
    let a = agent();
    let mut resp = match (method, body) {
        ("GET", _) => {
            let mut r = a.get(url);
            if let Some(h) = auth {
                r = r.header("Authorization", h);
            }
            r.call()
        }
        (_, b) => {
            let mut r = a.post(url).header("Content-Type", "application/json");
            if let Some(h) = auth {
                r = r.header("Authorization", h);
            }
            r.send(b.unwrap_or(""))
        }
    }
    .unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn get(s: &Server, path: &str) -> (u16, Value) {
    call("GET", &s.url(path), None, None)
}

fn post(s: &Server, path: &str, body: &Value) -> (u16, Value) {
    call("POST", &s.url(path), Some(&body.to_string()), None)
}

fn b64_png(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
}

fn info(resp: &Value) -> Value {
    serde_json::from_str(resp["info"].as_str().unwrap()).unwrap()
}

#[test]
fn txt2img_images_equal_easel_generate_and_carry_their_infotext() {
    let s = Server::start(&[]);
    let (status, resp) = post(
        &s,
        "txt2img",
        &json!({
            "prompt": "a red fox, (snow:1.2)", "negative_prompt": "blurry", "seed": 7,
            "steps": 3, "width": 64, "height": 48, "sampler_name": "Euler a",
            "batch_size": 2, "n_iter": 2, "cfg_scale": 6.5,
            "override_settings": {"CLIP_stop_at_last_layers": 2, "randn_source": "CPU",
                                  "eta_noise_seed_delta": 31337}
        }),
    );
    assert_eq!(status, 200, "{resp}");
    let images = resp["images"].as_array().unwrap();
    assert_eq!(images.len(), 4);
    let info = info(&resp);
    assert_eq!(info["all_seeds"], json!([7, 8, 9, 10]));
    assert_eq!(info["seed"], json!(7));
    assert_eq!(info["all_prompts"][3], json!("a red fox, (snow:1.2)"));
    assert_eq!(resp["parameters"]["steps"], json!(3));

    // The same settings through the CLI.
    let dir_guard = easel_tests::scratch_dir("easel-api-same");
    let dir = dir_guard.path();
    let out = dir.join("cli.png");
    let ok = easel()
        .args(["generate", "--models"])
        .arg(models())
        .args([
            "--prompt",
            "a red fox, (snow:1.2)",
            "--negative",
            "blurry",
            "--seed",
            "7",
        ])
        .args([
            "--steps",
            "3",
            "--size",
            "64x48",
            "--sampler",
            "Euler a",
            "--batch-size",
            "2",
        ])
        .args([
            "--batch-count",
            "2",
            "--cfg",
            "6.5",
            "--clip-skip",
            "2",
            "--rng",
            "cpu",
        ])
        .args(["--ensd", "31337", "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(ok.success());
    for (i, img) in images.iter().enumerate() {
        let png = b64_png(img);
        let text = parameters_from_png_bytes(&png, "api").unwrap().unwrap();
        assert_eq!(text, info["infotexts"][i].as_str().unwrap());
        let cli_path = if i == 0 {
            out.clone()
        } else {
            dir.join(format!("cli-{}.png", i + 1))
        };
        let cli_png = std::fs::read(&cli_path).unwrap();
        let cli_text = parameters_from_png_bytes(&cli_png, "cli").unwrap().unwrap();
        assert_eq!(text, cli_text, "image {i}: infotext differs from the CLI's");
        let (w, h, rgb) = decode_png_rgb(&png, "api").unwrap();
        let (_, _, cli_rgb) = decode_png_rgb(&cli_png, "cli").unwrap();
        assert_eq!((w, h), (64, 48));
        assert!(
            rgb == cli_rgb,
            "image {i}: pixels differ from easel generate"
        );
    }
    assert!(info["infotexts"][0]
        .as_str()
        .unwrap()
        .contains("Clip skip: 2"));
}

#[test]
fn bad_requests_get_a1111_errors_and_the_server_keeps_answering() {
    let s = Server::start(&["--max-body", "4096"]);
    // Bodies over --max-body are refused before parsing.
    let big = json!({"prompt": "x".repeat(5000)});
    assert_eq!(post(&s, "txt2img", &big).0, 413);
    // Wrong type: 422 naming the field in FastAPI's shape.
    let (status, resp) = post(&s, "txt2img", &json!({"prompt": "x", "steps": "many"}));
    assert_eq!(status, 422, "{resp}");
    assert_eq!(resp["detail"][0]["loc"], json!(["body", "steps"]));
    // Malformed JSON.
    let (status, resp) = call("POST", &s.url("txt2img"), Some("{\"prompt\": "), None);
    assert_eq!(status, 422, "{resp}");
    assert!(
        resp["detail"][0]["msg"].as_str().unwrap().contains("EOF"),
        "{resp}"
    );
    // Values the pipeline cannot run name the setting.
    let (status, resp) = post(&s, "txt2img", &json!({"width": 60, "steps": 2}));
    assert_eq!(status, 422, "{resp}");
    assert!(resp.to_string().contains("width"), "{resp}");
    let (status, resp) = post(&s, "txt2img", &json!({"n_iter": 0}));
    assert_eq!(status, 422, "{resp}");
    assert_eq!(resp["detail"][0]["loc"], json!(["body", "n_iter"]));
    // Unknown names are 404s naming them.
    let (status, resp) = post(&s, "txt2img", &json!({"sampler_name": "Nope Sampler"}));
    assert_eq!(status, 404, "{resp}");
    assert!(resp["detail"].as_str().unwrap().contains("Nope Sampler"));
    let (status, resp) = post(
        &s,
        "txt2img",
        &json!({"override_settings": {"sd_model_checkpoint": "nosuchmodel"}}),
    );
    assert_eq!(status, 404, "{resp}");
    assert!(resp["detail"].as_str().unwrap().contains("nosuchmodel"));
    let (status, resp) = post(
        &s,
        "txt2img",
        &json!({"override_settings": {"CLIP_stop_at_last_layers": "two"}}),
    );
    assert_eq!(status, 422, "{resp}");
    assert_eq!(
        resp["detail"][0]["loc"],
        json!(["body", "override_settings", "CLIP_stop_at_last_layers"])
    );
    // Model names from a request are names, never paths out of the models folder.
    let tiny = models().join("Stable-diffusion").join("tiny.ckpt");
    for (key, value) in [
        ("sd_model_checkpoint", tiny.display().to_string()),
        (
            "sd_model_checkpoint",
            "../models/Stable-diffusion/tiny".to_string(),
        ),
        ("sd_vae", "/etc/passwd".to_string()),
    ] {
        let (status, resp) = post(&s, "txt2img", &json!({"override_settings": {key: value}}));
        assert_eq!(status, 422, "{key}={value}: {resp}");
        assert_eq!(
            resp["detail"][0]["loc"],
            json!(["body", "override_settings", key])
        );
        assert!(resp.to_string().contains("is a path, not a name"), "{resp}");
        let (status, resp) = post(&s, "options", &json!({key: value}));
        assert_eq!(status, 422, "options {key}={value}: {resp}");
    }
    // img2img without an init image: A1111's 404; bad images are 422s naming the field.
    let (status, resp) = post(&s, "img2img", &json!({"prompt": "x"}));
    assert_eq!(status, 404, "{resp}");
    assert!(resp["detail"].as_str().unwrap().contains("Init image"));
    let (status, resp) = post(&s, "img2img", &json!({"init_images": ["not base64!"]}));
    assert_eq!(status, 422, "{resp}");
    assert_eq!(resp["detail"][0]["loc"], json!(["body", "init_images", 0]));
    let (status, resp) = post(
        &s,
        "img2img",
        &json!({"init_images": ["http://127.0.0.1:1/x.png"]}),
    );
    assert_eq!(status, 422, "{resp}");
    assert!(resp.to_string().contains("URL"), "{resp}");
    let (status, resp) = post(&s, "img2img", &json!({"init_images": ["aGVsbG8="]}));
    assert_eq!(status, 422, "{resp}");
    assert!(resp.to_string().contains("init_images[0]"), "{resp}");
    let (status, resp) = post(
        &s,
        "img2img",
        &json!({"init_images": [], "resize_mode": "a"}),
    );
    assert_eq!(status, 422, "{resp}");
    assert_eq!(resp["detail"][0]["loc"], json!(["body", "resize_mode"]));
    // Unknown API routes: A1111's 404 shape.
    let (status, resp) = get(&s, "no-such-route");
    assert_eq!((status, resp), (404, json!({"detail": "Not Found"})));
    // Unsupported fields are accepted and reported, never silently applied.
    let (status, resp) = post(
        &s,
        "txt2img",
        &json!({"steps": 1, "width": 64, "height": 64, "seed": 1, "restore_faces": true,
                "tiling": true, "colour": "blue", "send_images": false,
                "override_settings": {"show_progressbar": false}}),
    );
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["images"], json!([]));
    let warnings = info(&resp)["warnings"].to_string();
    for w in ["restore_faces", "tiling", "colour", "show_progressbar"] {
        assert!(warnings.contains(w), "{w} not reported: {warnings}");
    }
    // Still answering.
    let (status, _) = get(&s, "progress");
    assert_eq!(status, 200);
}

#[test]
fn listings_options_and_png_info() {
    let s = Server::start(&[]);
    let (_, samplers) = get(&s, "samplers");
    let names: Vec<&str> = samplers
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Euler a") && names.contains(&"DPM++ 2M"),
        "{names:?}"
    );
    let (_, schedulers) = get(&s, "schedulers");
    assert!(schedulers.to_string().contains("Karras"));

    let (status, sd_models) = get(&s, "sd-models");
    assert_eq!(status, 200);
    let tiny = sd_models
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model_name"] == "tiny")
        .unwrap_or_else(|| panic!("no tiny in {sd_models}"));
    let ckpt = models().join("Stable-diffusion/tiny.ckpt");
    // sha256 as `sha256sum` computes it.
    let sum = Command::new("sha256sum").arg(&ckpt).output().unwrap();
    let sum = String::from_utf8(sum.stdout).unwrap();
    assert_eq!(
        tiny["sha256"],
        json!(sum.split_whitespace().next().unwrap())
    );
    let hash = tiny["hash"].as_str().unwrap();
    assert_eq!(tiny["title"], json!(format!("tiny [{hash}]")));
    assert!(tiny["filename"].as_str().unwrap().ends_with("tiny.ckpt"));

    // Embeddings beside the models folder, as the fixture script's A1111 code read them.
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(models().join("../embeddings/expected.json")).unwrap(),
    )
    .unwrap();
    let (status, emb) = get(&s, "embeddings");
    assert_eq!(status, 200, "{emb}");
    for e in expected["embeddings"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let got = &emb["loaded"][name];
        assert_eq!(got["vectors"], e["vectors"], "{name}: {emb}");
        assert_eq!(got["shape"], e["width"], "{name}");
        assert_eq!(got["step"], e["step"], "{name}");
        assert_eq!(got["sd_checkpoint_name"], e["sd_checkpoint_name"], "{name}");
    }
    let (_, hn) = get(&s, "hypernetworks");
    assert!(hn.to_string().contains("tiny-nai"), "{hn}");
    let (_, loras) = get(&s, "loras");
    assert!(
        loras.to_string().contains("\"alias\":\"tiny-lora\""),
        "{loras}"
    );
    for empty in [
        "upscalers",
        "latent-upscale-modes",
        "loras",
        "face-restorers",
        "prompt-styles",
        "script-info",
        "extensions",
        "sd-vae",
    ] {
        let (status, v) = get(&s, empty);
        assert_eq!((status, v.is_array()), (200, true), "{empty}: {v}");
    }
    assert_eq!(get(&s, "scripts").1, json!({"txt2img": [], "img2img": []}));
    assert!(get(&s, "embeddings").1["loaded"].is_object());
    assert!(get(&s, "memory").1["ram"]["total"].as_u64().unwrap() > 0);
    assert_eq!(get(&s, "cmd-flags").1["api"], json!(true));
    for refresh in [
        "refresh-checkpoints",
        "refresh-vae",
        "refresh-loras",
        "refresh-embeddings",
        "unload-checkpoint",
        "reload-checkpoint",
    ] {
        assert_eq!(post(&s, refresh, &json!({})).0, 200, "{refresh}");
    }

    // Options: what is set reads back and drives generation.
    let (_, opts) = get(&s, "options");
    let titles: Vec<&Value> = sd_models
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["title"])
        .collect();
    assert!(titles.contains(&&opts["sd_model_checkpoint"]), "{opts}");
    let (status, _) = post(
        &s,
        "options",
        &json!({"CLIP_stop_at_last_layers": 2, "some_ui_option": 3}),
    );
    assert_eq!(status, 200);
    let (_, opts) = get(&s, "options");
    assert_eq!(
        (
            opts["CLIP_stop_at_last_layers"].clone(),
            opts["some_ui_option"].clone()
        ),
        (json!(2), json!(3))
    );
    let (status, resp) = post(
        &s,
        "options",
        &json!({"sd_model_checkpoint": "nosuchmodel"}),
    );
    assert_eq!(status, 404, "{resp}");
    let (status, resp) = post(&s, "options", &json!({"sd_model_checkpoint": "tiny-st"}));
    assert_eq!(status, 200, "{resp}");
    let (status, resp) = post(
        &s,
        "txt2img",
        &json!({"prompt": "a cat", "steps": 2, "width": 64, "height": 64, "seed": 3}),
    );
    assert_eq!(status, 200, "{resp}");
    let text = info(&resp)["infotexts"][0].as_str().unwrap().to_string();
    assert!(
        text.contains("Clip skip: 2") && text.contains("Model: tiny-st"),
        "{text}"
    );

    // png-info reads the image's infotext back in A1111's shape.
    let (status, png_info) = post(&s, "png-info", &json!({"image": resp["images"][0]}));
    assert_eq!(status, 200, "{png_info}");
    assert_eq!(png_info["info"], json!(text));
    assert_eq!(png_info["parameters"]["Prompt"], json!("a cat"));
    assert_eq!(png_info["parameters"]["Steps"], json!(2));
    assert_eq!(png_info["parameters"]["Seed"], json!(3));
    let (status, _) = post(&s, "png-info", &json!({"image": "bm90IGEgcG5n"}));
    assert_eq!(status, 422);
}

#[test]
fn basic_auth_guards_every_api_route() {
    let s = Server::start(&["--api-auth", "alice:s3cret,bob:pw"]);
    let b64 = |t: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(t)
        )
    };
    let a = agent();
    let mut resp = a.get(&s.url("sd-models")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let _ = resp.body_mut().read_to_string();
    for (cred, want) in [
        ("alice:wrong", 401),
        ("alice:s3cret", 200),
        ("bob:pw", 200),
        ("bob:pw2", 401),
    ] {
        let (status, _) = call("GET", &s.url("options"), None, Some(&b64(cred)));
        assert_eq!(status, want, "{cred}");
    }
    let (status, _) = call("POST", &s.url("txt2img"), Some("{}"), None);
    assert_eq!(status, 401);
}

#[test]
fn listen_without_auth_is_refused() {
    let out = easel()
        .args(["serve", "--port", "0", "--listen", "--models"])
        .arg(models())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--api-auth"), "{err}");
}

/// Starts a long txt2img on its own thread; returns its join handle.
fn long_job(s: &Server, seed: i64) -> std::thread::JoinHandle<(u16, Value)> {
    let url = s.url("txt2img");
    std::thread::spawn(move || {
        let body = json!({"prompt": "slow", "steps": 1000, "n_iter": 20, "width": 64,
                          "height": 64, "seed": seed, "sampler_name": "Euler"});
        call("POST", &url, Some(&body.to_string()), None)
    })
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn interrupt_queue_limit_and_progress() {
    let s = Server::start(&["--queue-limit", "1", "--max-steps", "1000"]);
    let first = long_job(&s, 1);
    wait_until("the first job to step", || {
        get(&s, "progress").1["state"]["sampling_step"]
            .as_u64()
            .unwrap_or(0)
            > 0
    });
    let (_, p) = get(&s, "progress");
    assert_eq!(p["state"]["sampling_steps"], json!(1000));
    assert_eq!(p["state"]["job"], json!("txt2img"));
    assert!(p["progress"].as_f64().unwrap() > 0.0);
    // The live preview of a 64×64 image: the cheap 8×8 approximation until step 10, then
    // A1111's "Approx NN" (the fixture folder has VAE-approx/model.pt), 16×16.
    let preview = b64_png(&p["current_image"]);
    let (w, h, _) = decode_png_rgb(&preview, "preview").unwrap();
    assert!((w, h) == (8, 8) || (w, h) == (16, 16), "{w}x{h}");
    wait_until("step 10", || {
        get(&s, "progress").1["state"]["sampling_step"]
            .as_u64()
            .unwrap_or(0)
            >= 10
    });
    let (_, p) = get(&s, "progress");
    let preview = b64_png(&p["current_image"]);
    let (w, h, _) = decode_png_rgb(&preview, "preview").unwrap();
    assert_eq!((w, h), (16, 16));
    // One may wait; the next is refused at once.
    let second = long_job(&s, 2);
    wait_until("the second job to queue", || {
        get(&s, "progress").1["state"]["queued"] == json!(1)
    });
    let t0 = Instant::now();
    let (status, resp) = post(&s, "txt2img", &json!({"steps": 1}));
    assert_eq!(status, 503, "{resp}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    // Interrupt ends the running job: it still answers, with the image where it stopped.
    let (status, _) = post(&s, "interrupt", &json!({}));
    assert_eq!(status, 200);
    let (status, resp) = first.join().unwrap();
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        resp["images"].as_array().unwrap().len(),
        1,
        "no further batch after interrupt"
    );
    // The queued one runs next; interrupt it too.
    wait_until("the second job to step", || {
        get(&s, "progress").1["state"]["sampling_step"]
            .as_u64()
            .unwrap_or(0)
            > 0
    });
    post(&s, "interrupt", &json!({}));
    let (status, resp) = second.join().unwrap();
    assert_eq!(status, 200, "{resp}");
    assert_eq!(info(&resp)["seed"], json!(2));
    // Idle again.
    let (_, p) = get(&s, "progress");
    assert_eq!(
        (p["progress"].clone(), p["state"]["job_count"].clone()),
        (json!(0.0), json!(0))
    );
}

#[test]
fn skip_ends_only_the_current_batch() {
    let s = Server::start(&["--max-steps", "1000"]);
    let url = s.url("txt2img");
    let job = std::thread::spawn(move || {
        let body = json!({"prompt": "x", "steps": 1000, "n_iter": 2, "width": 64, "height": 64,
                          "seed": 5, "sampler_name": "Euler"});
        call("POST", &url, Some(&body.to_string()), None)
    });
    wait_until("batch 1 to step", || {
        get(&s, "progress").1["state"]["sampling_step"]
            .as_u64()
            .unwrap_or(0)
            > 0
    });
    post(&s, "skip", &json!({}));
    wait_until("batch 2 to start", || {
        get(&s, "progress").1["state"]["job_no"] == json!(1)
    });
    post(&s, "interrupt", &json!({}));
    let (status, resp) = job.join().unwrap();
    assert_eq!(status, 200, "{resp}");
    assert_eq!(info(&resp)["all_seeds"], json!([5, 6]));
}

#[test]
fn a_client_that_disconnects_while_waiting_leaves_the_queue() {
    use std::io::Write;
    let s = Server::start(&["--max-steps", "1000"]);
    let first = long_job(&s, 1);
    wait_until("the first job to step", || {
        get(&s, "progress").1["state"]["sampling_step"]
            .as_u64()
            .unwrap_or(0)
            > 0
    });
    let addr = s.base.trim_start_matches("http://").to_string();
    let body = json!({"steps": 1, "width": 64, "height": 64}).to_string();
    let mut raw = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        raw,
        "POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    wait_until("the raw request to queue", || {
        get(&s, "progress").1["state"]["queued"] == json!(1)
    });
    drop(raw);
    wait_until("the dropped request to leave the queue", || {
        get(&s, "progress").1["state"]["queued"] == json!(0)
    });
    post(&s, "interrupt", &json!({}));
    assert_eq!(first.join().unwrap().0, 200);
}

#[test]
fn cors_headers_only_for_listed_origins() {
    let origin_header = |s: &Server, origin: &str| {
        let mut resp = agent()
            .get(&s.url("samplers"))
            .header("Origin", origin)
            .call()
            .unwrap();
        let _ = resp.body_mut().read_to_string();
        resp.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let plain = Server::start(&[]);
    assert_eq!(origin_header(&plain, "https://a.example"), None);
    let cors = Server::start(&[
        "--cors-allow-origins",
        "https://a.example,https://b.example",
    ]);
    assert_eq!(
        origin_header(&cors, "https://b.example").as_deref(),
        Some("https://b.example")
    );
    assert_eq!(origin_header(&cors, "https://evil.example"), None);
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A 64×64 test picture and a mask with a white square, as PNG files and base64.
fn init_and_mask(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let mut rgb = Vec::new();
    for y in 0..64u32 {
        for x in 0..64u32 {
            rgb.extend([(x * 4) as u8, (y * 4) as u8, ((x + y) * 2) as u8]);
        }
    }
    let init = dir.join("init.png");
    easel_core::infotext::write_png(&init, 64, 64, &rgb, None).unwrap();
    let mut mask = Vec::new();
    for y in 0..64u32 {
        for x in 0..64u32 {
            let v = if (16..40).contains(&x) && (20..44).contains(&y) {
                255
            } else {
                0
            };
            mask.extend([v, v, v]);
        }
    }
    let mask_path = dir.join("mask.png");
    easel_core::infotext::write_png(&mask_path, 64, 64, &mask, None).unwrap();
    (init, mask_path)
}

/// The CLI's image and infotext for `args` (plus the models folder and `-o`).
fn cli_image(dir: &std::path::Path, name: &str, args: &[&str]) -> (Vec<u8>, String) {
    let out = dir.join(name);
    let status = easel()
        .args(["generate", "--models"])
        .arg(models())
        .args(args)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "easel generate {args:?}");
    let png = std::fs::read(&out).unwrap();
    let text = parameters_from_png_bytes(&png, name).unwrap().unwrap();
    (decode_png_rgb(&png, name).unwrap().2, text)
}

#[test]
fn img2img_inpainting_and_hires_equal_easel_generate() {
    let s = Server::start(&[]);
    let dir_guard = easel_tests::scratch_dir("easel-api-img2img");
    let dir = dir_guard.path();
    let (init, mask) = init_and_mask(dir);
    let init_b64 = b64(&std::fs::read(&init).unwrap());
    let mask_b64 = b64(&std::fs::read(&mask).unwrap());
    let shared = [
        "--prompt",
        "a red fox",
        "--seed",
        "11",
        "--steps",
        "4",
        "--size",
        "64x64",
        "--sampler",
        "Euler",
    ];

    // img2img, with the image as a data URL as browsers send it.
    let (status, resp) = post(
        &s,
        "img2img",
        &json!({"prompt": "a red fox", "seed": 11, "steps": 4, "width": 64, "height": 64,
                "sampler_name": "Euler", "denoising_strength": 0.6,
                "init_images": [format!("data:image/png;base64,{init_b64}")]}),
    );
    assert_eq!(status, 200, "{resp}");
    let png = b64_png(&resp["images"][0]);
    let text = parameters_from_png_bytes(&png, "api").unwrap().unwrap();
    let mut args = shared.to_vec();
    let init_arg = init.to_str().unwrap();
    args.extend(["--init-img", init_arg, "--denoising-strength", "0.6"]);
    let (cli_rgb, cli_text) = cli_image(dir, "i2i.png", &args);
    assert_eq!(text, cli_text);
    assert!(text.contains("Denoising strength: 0.6"), "{text}");
    assert!(
        decode_png_rgb(&png, "api").unwrap().2 == cli_rgb,
        "img2img pixels differ"
    );
    assert_eq!(resp["parameters"]["init_images"], Value::Null);
    assert_eq!(info(&resp)["denoising_strength"], json!(0.6));

    // Inpainting with A1111's API defaults: only masked, masked content `fill`, padding 0.
    let (status, resp) = post(
        &s,
        "img2img",
        &json!({"prompt": "a red fox", "seed": 11, "steps": 4, "width": 64, "height": 64,
                "sampler_name": "Euler", "denoising_strength": 0.6, "mask_blur": 2,
                "init_images": [init_b64], "mask": mask_b64, "include_init_images": true}),
    );
    assert_eq!(status, 200, "{resp}");
    let png = b64_png(&resp["images"][0]);
    let text = parameters_from_png_bytes(&png, "api").unwrap().unwrap();
    for field in [
        "Mask blur: 2",
        "Inpaint area: Only masked",
        "Masked area padding: 0",
        "Masked content: fill",
    ] {
        assert!(text.contains(field), "{field} missing: {text}");
    }
    let mask_arg = mask.to_str().unwrap();
    let mut args = shared.to_vec();
    args.extend([
        "--init-img",
        init_arg,
        "--denoising-strength",
        "0.6",
        "--mask",
        mask_arg,
        "--mask-blur",
        "2",
        "--inpainting-fill",
        "fill",
        "--inpaint-full-res",
        "--inpaint-full-res-padding",
        "0",
    ]);
    let (cli_rgb, cli_text) = cli_image(dir, "inpaint.png", &args);
    assert_eq!(text, cli_text);
    assert!(
        decode_png_rgb(&png, "api").unwrap().2 == cli_rgb,
        "inpainting pixels differ"
    );
    assert_eq!(resp["parameters"]["init_images"][0], json!(init_b64));

    // txt2img with hires fix; no upscaler named = A1111's default latent mode.
    let (status, resp) = post(
        &s,
        "txt2img",
        &json!({"prompt": "a red fox", "seed": 11, "steps": 4, "width": 64, "height": 64,
                "sampler_name": "Euler", "enable_hr": true, "hr_scale": 1.5,
                "hr_second_pass_steps": 3, "denoising_strength": 0.55,
                "hr_sampler_name": "Use same sampler"}),
    );
    assert_eq!(status, 200, "{resp}");
    let png = b64_png(&resp["images"][0]);
    let (w, h, rgb) = decode_png_rgb(&png, "api").unwrap();
    assert_eq!((w, h), (96, 96));
    let text = parameters_from_png_bytes(&png, "api").unwrap().unwrap();
    assert!(!text.contains("Hires upscaler"), "{text}");
    assert!(
        text.contains("Hires upscale: 1.5, Hires steps: 3"),
        "{text}"
    );
    let mut args = shared.to_vec();
    args.extend([
        "--hires",
        "--hr-scale",
        "1.5",
        "--hr-second-pass-steps",
        "3",
        "--denoising-strength",
        "0.55",
        "--hr-upscaler",
        "Latent",
    ]);
    let (cli_rgb, cli_text) = cli_image(dir, "hires.png", &args);
    assert!(rgb == cli_rgb, "hires pixels differ");
    assert_eq!(text, cli_text.replace(", Hires upscaler: Latent", ""));

    // What hires fix can name.
    let (_, ups) = get(&s, "upscalers");
    let names: Vec<&str> = ups
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(&names[..3], ["None", "Lanczos", "Nearest"]);
    let (_, modes) = get(&s, "latent-upscale-modes");
    assert!(
        modes.to_string().contains("Latent (nearest-exact)"),
        "{modes}"
    );
}

/// `extra-single-image` (A1111's Extras upscale) equals `easel upscale` with the same
/// upscaler and target, pixels and `postprocessing` text; a second upscaler is blended in
/// as PIL's `Image.blend` does; face restoration is refused by name.
#[test]
fn extras_upscale_equals_easel_upscale() {
    let dir_guard = easel_tests::scratch_dir("easel-api-extras");
    let dir = dir_guard.path();
    let fixtures = models().join("..");
    let m = dir.join("models");
    std::fs::create_dir_all(&m).unwrap();
    for (link, to) in [
        ("Stable-diffusion", fixtures.join("models/Stable-diffusion")),
        ("ESRGAN", fixtures.join("upscalers/models/ESRGAN")),
    ] {
        let _ = std::fs::remove_file(m.join(link));
        std::os::unix::fs::symlink(to, m.join(link)).unwrap();
    }
    let (init, _) = init_and_mask(dir);
    let s = Server::start_with_models(&m, &[]);
    let cli = |upscaler: &str, extra: &[&str], out: &str| {
        let path = dir.join(out);
        let o = easel()
            .args(["upscale", "--models"])
            .arg(&m)
            .args(["--upscaler", upscaler])
            .args(extra)
            .arg(&init)
            .arg("-o")
            .arg(&path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(path).unwrap()
    };
    let text = |png: &[u8], key: &str| {
        let mut d = png::Decoder::new(std::io::Cursor::new(png.to_vec()));
        d.set_ignore_text_chunk(false);
        let r = d.read_info().unwrap();
        r.info()
            .uncompressed_latin1_text
            .iter()
            .find(|t| t.keyword == key)
            .map(|t| t.text.clone())
    };
    let image = b64(&std::fs::read(&init).unwrap());
    for (upscaler, body_extra, cli_extra) in [
        (
            "tiny-compact-x2",
            json!({"upscaling_resize": 2}),
            vec!["--scale", "2"],
        ),
        (
            "Lanczos",
            json!({"resize_mode": 1, "upscaling_resize_w": 100, "upscaling_resize_h": 80}),
            vec!["--resize", "100x80"],
        ),
    ] {
        let mut body = json!({"image": image, "upscaler_1": upscaler});
        body.as_object_mut()
            .unwrap()
            .extend(body_extra.as_object().unwrap().clone());
        let (status, resp) = post(&s, "extra-single-image", &body);
        assert_eq!(status, 200, "{resp}");
        let api = b64_png(&resp["image"]);
        let want = cli(upscaler, &cli_extra, &format!("{upscaler}.png"));
        assert!(
            decode_png_rgb(&api, "api").unwrap() == decode_png_rgb(&want, "cli").unwrap(),
            "{upscaler}: pixels differ from easel upscale"
        );
        let info = text(&api, "postprocessing").expect("a postprocessing chunk");
        assert_eq!(Some(info.clone()), text(&want, "postprocessing"));
        assert!(
            info.contains(&format!("Postprocess upscaler: {upscaler}")),
            "{info}"
        );
        assert!(resp["html_info"]
            .as_str()
            .unwrap()
            .contains("Postprocess upscaler"));
    }
    // Upscaler 2 at 0.3 over upscaler 1: PIL's blend, a + 0.3·(b − a) truncated.
    let (status, resp) = post(
        &s,
        "extra-single-image",
        &json!({"image": image, "upscaler_1": "Lanczos", "upscaler_2": "Nearest",
                "extras_upscaler_2_visibility": 0.3, "upscaling_resize": 2}),
    );
    assert_eq!(status, 200, "{resp}");
    let (_, _, got) = decode_png_rgb(&b64_png(&resp["image"]), "api").unwrap();
    let (_, _, a) = decode_png_rgb(&cli("Lanczos", &["--scale", "2"], "l.png"), "l").unwrap();
    let (_, _, b) = decode_png_rgb(&cli("Nearest", &["--scale", "2"], "n.png"), "n").unwrap();
    let want: Vec<u8> = a
        .iter()
        .zip(&b)
        .map(|(&a, &b)| (a as f32 + 0.3f32 * (b as f32 - a as f32)) as u8)
        .collect();
    assert!(
        got == want,
        "the second upscaler is not blended as PIL does"
    );
    let (status, resp) = post(
        &s,
        "extra-single-image",
        &json!({"image": image, "upscaler_1": "Lanczos", "gfpgan_visibility": 0.5}),
    );
    assert_eq!(status, 422, "{resp}");
    assert_eq!(
        resp["detail"][0]["loc"],
        json!(["body", "gfpgan_visibility"])
    );
}

/// This session's A1111 features through the API equal `easel generate`: the LCM sampler,
/// a hires pass with its own sampler and `hr_scheduler`, and img2img with
/// `override_settings.sd_vae_encode_method: TAESD`.
#[test]
fn lcm_hires_scheduler_and_taesd_encode_equal_easel_generate() {
    let s = Server::start(&[]);
    let dir_guard = easel_tests::scratch_dir("easel-api-lcm");
    let dir = dir_guard.path();
    let (init, _) = init_and_mask(dir);
    let init_b64 = b64(&std::fs::read(&init).unwrap());
    let shared = [
        "--prompt",
        "a red fox",
        "--seed",
        "12",
        "--steps",
        "3",
        "--size",
        "64x64",
    ];
    let check = |body: Value, extra: &[&str], name: &str| {
        let path = if body.get("init_images").is_some() {
            "img2img"
        } else {
            "txt2img"
        };
        let (status, resp) = post(&s, path, &body);
        assert_eq!(status, 200, "{name}: {resp}");
        let png = b64_png(&resp["images"][0]);
        let text = parameters_from_png_bytes(&png, "api").unwrap().unwrap();
        let mut args = shared.to_vec();
        args.extend(extra);
        let (cli_rgb, cli_text) = cli_image(dir, &format!("{name}.png"), &args);
        assert_eq!(text, cli_text, "{name}");
        assert!(
            decode_png_rgb(&png, "api").unwrap().2 == cli_rgb,
            "{name}: pixels differ"
        );
        text
    };
    let base = json!({"prompt": "a red fox", "seed": 12, "steps": 3, "width": 64, "height": 64});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let text = check(
        with(json!({"sampler_name": "LCM", "cfg_scale": 1.5})),
        &["--sampler", "LCM", "--cfg", "1.5"],
        "lcm",
    );
    assert!(
        text.contains("Sampler: LCM, Schedule type: Automatic"),
        "{text}"
    );
    let text = check(
        with(
            json!({"sampler_name": "Euler", "enable_hr": true, "hr_scale": 1.5,
                    "denoising_strength": 0.5, "hr_sampler_name": "DPM++ 2M",
                    "hr_scheduler": "Exponential", "hr_upscaler": "Latent"}),
        ),
        &[
            "--sampler",
            "Euler",
            "--hires",
            "--hr-scale",
            "1.5",
            "--denoising-strength",
            "0.5",
            "--hr-sampler",
            "DPM++ 2M",
            "--hr-schedule-type",
            "Exponential",
            "--hr-upscaler",
            "Latent",
        ],
        "hires",
    );
    assert!(text.contains("Hires schedule type: Exponential"), "{text}");
    let init_arg = init.to_str().unwrap();
    let text = check(
        with(json!({"sampler_name": "Euler", "denoising_strength": 0.6,
                    "init_images": [init_b64],
                    "override_settings": {"sd_vae_encode_method": "TAESD"}})),
        &[
            "--sampler",
            "Euler",
            "--init-img",
            init_arg,
            "--denoising-strength",
            "0.6",
            "--vae-encoder",
            "taesd",
        ],
        "taesd",
    );
    assert!(text.contains("VAE Encoder: TAESD"), "{text}");
}

/// Issue 16's hostile classes sent to the server: each is refused with a 4xx naming what was
/// wrong (never a 500, a crash or a hang), per-request limits hold (A1111's slider maxima by
/// default), a job past `--max-job-seconds` is interrupted with the images done so far, and
/// the server answers after every one.
#[test]
fn hostile_requests_are_bounded_and_the_server_keeps_answering() {
    let s = Server::start(&["--max-job-seconds", "1"]);
    let refused = |body: &Value, status: u16, needle: &str| {
        let (got, resp) = post(&s, "txt2img", body);
        assert_eq!(got, status, "{body}: {resp}");
        assert!(resp.to_string().contains(needle), "{body}: {resp}");
        assert_eq!(get(&s, "progress").0, 200, "not answering after {body}");
    };
    // Per-request limits, before the request waits in the queue: 422 naming the field.
    for (body, field) in [
        (json!({"steps": 151}), "steps"),
        (json!({"width": 4096, "height": 64}), "width"),
        (json!({"batch_size": 100000}), "batch_size"),
        (json!({"n_iter": 1000000000}), "n_iter"),
        (
            json!({"enable_hr": true, "hr_scale": 100, "width": 64, "height": 64}),
            "hr_scale",
        ),
        (
            json!({"enable_hr": true, "hr_second_pass_steps": 5000}),
            "hr_second_pass_steps",
        ),
    ] {
        let (status, resp) = post(&s, "txt2img", &body);
        assert_eq!(status, 422, "{body}: {resp}");
        assert_eq!(resp["detail"][0]["loc"], json!(["body", field]), "{resp}");
        assert!(resp.to_string().contains("--max-"), "{resp}");
    }
    // Prompts that used to overflow the stack or run for minutes.
    let small = |prompt: String| json!({"prompt": prompt, "steps": 1, "width": 64, "height": 64});
    refused(
        &small("(".repeat(17_000)),
        422,
        "nest deeper than 100 levels",
    );
    refused(
        &small("[a:".repeat(17_000)),
        422,
        "nest deeper than 100 levels",
    );
    refused(&small("a ".repeat(500_000)), 422, "the limit is 32768");
    refused(&small("a AND ".repeat(5_000)), 422, "AND-separated parts");
    refused(&small("a BREAK ".repeat(3_000)), 422, "chunks of 75 tokens");
    // JSON nested past serde's recursion limit, and numbers past i64.
    let deep = format!(
        "{{\"prompt\": \"x\", \"colour\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (status, resp) = call("POST", &s.url("txt2img"), Some(&deep), None);
    assert_eq!(status, 422, "{resp}");
    assert!(resp.to_string().contains("recursion limit"), "{resp}");
    let (status, resp) = call(
        "POST",
        &s.url("txt2img"),
        Some("{\"seed\": 1e400, \"steps\": 99999999999999999999999}"),
        None,
    );
    assert_eq!(status, 422, "{resp}");
    // Names from prompt tags are names: a path is never opened.
    let (status, resp) = post(
        &s,
        "txt2img",
        &json!({"prompt": "a cat <hypernet:/etc/passwd:1>", "steps": 1, "width": 64, "height": 64}),
    );
    assert_eq!(status, 422, "{resp}");
    assert!(resp.to_string().contains("is a path, not a name"), "{resp}");
    // png-info on bytes that are not a PNG, and an Extras upscale past --max-size.
    let (status, resp) = post(
        &s,
        "png-info",
        &json!({"image": b64(&[0x89, b'P', 0, 1, 2])}),
    );
    assert_eq!(status, 422, "{resp}");
    let (status, resp) = post(
        &s,
        "txt2img",
        &json!({"steps": 1, "width": 64, "height": 64}),
    );
    assert_eq!(status, 200, "{resp}");
    let image = resp["images"][0].as_str().unwrap().to_string();
    let (status, resp) = post(
        &s,
        "extra-single-image",
        &json!({"image": image, "upscaling_resize": 1000, "upscaler_1": "None"}),
    );
    assert_eq!(status, 422, "{resp}");
    assert_eq!(
        resp["detail"][0]["loc"],
        json!(["body", "upscaling_resize"])
    );
    // The committed hostile request bodies: each a 4xx holding the manifest's words.
    let corpus = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/hostile"
    ));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(corpus.join("manifest.json")).unwrap()).unwrap();
    let mut sent = 0;
    for (rel, want) in manifest.as_object().unwrap() {
        if !rel.starts_with("api/") {
            continue;
        }
        let body = String::from_utf8_lossy(&std::fs::read(corpus.join(rel)).unwrap()).into_owned();
        let (status, resp) = call("POST", &s.url("txt2img"), Some(&body), None);
        assert!((400..500).contains(&status), "{rel}: {status} {resp}");
        for w in want["words"].as_array().unwrap() {
            let w = w.as_str().unwrap();
            assert!(resp.to_string().contains(w), "{rel}: `{w}` not in {resp}");
        }
        assert_eq!(get(&s, "progress").0, 200, "not answering after {rel}");
        sent += 1;
    }
    assert!(sent >= 8, "{sent} corpus requests");
    // A job longer than --max-job-seconds: interrupted, with the images made so far.
    let t0 = Instant::now();
    let (status, resp) = post(
        &s,
        "txt2img",
        &json!({"prompt": "slow", "steps": 150, "n_iter": 100, "width": 64, "height": 64}),
    );
    assert_eq!(status, 200, "{resp}");
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    let images = resp["images"].as_array().unwrap().len();
    assert!((1..100).contains(&images), "{images} images");
    assert!(
        info(&resp)["warnings"]
            .to_string()
            .contains("--max-job-seconds"),
        "{resp}"
    );
    assert_eq!(get(&s, "progress").0, 200);
}
