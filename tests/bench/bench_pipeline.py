"""Whole-image benchmark, three engines side by side: Easel (`easel bench --pipeline`),
PyTorch (diffusers networks, fp32 and bf16 CPU autocast) and OpenVINO (the same networks
converted with `ov.convert_model` at a static shape, compiled with
INFERENCE_PRECISION_HINT f32 and bf16). Full-size SD1.5 with random weights, nothing
downloaded. Each engine times the parts a user waits for: model load, text encoding
(prompt + negative prompt), N Euler steps with CFG (one UNet call of batch 2 each) and
the VAE decode, then their total.

    .venv/bin/python tests/bench/bench_pipeline.py --threads 1 --size 512 --steps 20 \
        --easel target/release/easel

Every engine and precision runs in a process of its own (one after another), so each
peak RSS is that engine's. Load means: Easel - generate its random weights and lay them
out, or with `--checkpoint FILE` read that SD1.x checkpoint (`easel bench
--write-checkpoint FILE` writes a full-size random one); PyTorch - build the networks
(random init), or with `--checkpoint` read the same file (safetensors, diffusers'
single-file key conversion, weights assigned to uninitialised networks and widened to
fp32); OpenVINO - read its converted model from disk and compile it (the conversion
itself, a one-off, is printed apart and cached under bench-models/). With `--steps` below 20 the table adds an
estimated 20-step total (load + text + 20 x mean step + decode), marked as such.

With `--hires-scale 2 --hires-steps N` every engine does A1111's hires fix with the `Latent`
upscaler (bilinear resize of the latent, strength 0.7: a schedule of int(N / 0.7) steps of
which the last N run at the larger size) and decodes the large image; the estimate is then
for 20 + 10 steps. (OpenVINO's networks are converted at one static size, so it is left out
of hires runs.)

    .venv/bin/python tests/bench/bench_pipeline.py --threads 1 --size 512 --steps 2 \
        --hires-scale 2 --hires-steps 2 --runs easel:fp32,torch:fp32
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CFG_SCALE = 7.0
PROMPT_WORDS = 14  # the Easel bench prompt's length in tokens, about
NEGATIVE_WORDS = 4
ALL_RUNS = ["easel:fp32", "easel:bf16", "torch:fp32", "torch:bf16", "openvino:f32", "openvino:bf16"]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- PyTorch / diffusers

def euler_scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="linspace",
    )


def cfg_steps(unet_eps, sched, latents, cond, uncond, timesteps):
    """Euler with CFG from `latents` over `timesteps` of diffusers' scheduler; `unet_eps(x, t,
    context)` is the engine's UNet. Returns the final latent and the wall time of every step."""
    import torch

    context = torch.cat([uncond, cond])
    times = []
    for t in timesteps:
        t0 = time.perf_counter()
        x = sched.scale_model_input(torch.cat([latents, latents]), t)
        eps = unet_eps(x, t, context)
        e_uncond, e_cond = eps.chunk(2)
        eps = e_uncond + CFG_SCALE * (e_cond - e_uncond)
        latents = sched.step(eps, t, latents).prev_sample
        times.append(time.perf_counter() - t0)
    return latents, times


def sample(unet_eps, latents, cond, uncond, steps):
    """`steps` Euler steps with CFG from pure noise."""
    sched = euler_scheduler()
    sched.set_timesteps(steps)
    return cfg_steps(unet_eps, sched, latents * sched.init_noise_sigma, cond, uncond,
                     sched.timesteps)


HIRES_STRENGTH = 0.7


def sample_tail(unet_eps, latents, cond, uncond, steps):
    """Hires fix's second pass: Euler with CFG over the last `steps` of a schedule of
    int(steps / strength) steps, from `latents` noised to its first sigma."""
    import torch

    sched = euler_scheduler()
    total = int(steps / HIRES_STRENGTH)
    sched.set_timesteps(total)
    start = total - steps
    sched.set_begin_index(start)
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(1))
    return cfg_steps(unet_eps, sched, latents + noise * sched.sigmas[start], cond, uncond,
                     sched.timesteps[start:])


def run_torch(args) -> dict:
    import torch

    import sd15_models

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.checkpoint:
        text_encoder, unet, vae = sd15_models.load_checkpoint(args.checkpoint)
    else:
        text_encoder = sd15_models.build_text_encoder()
        unet = sd15_models.build_unet()
        vae = sd15_models.build_vae()
    load = time.perf_counter() - t0
    bf16 = args.precision == "bf16"
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    side = args.size // 8
    with torch.inference_mode(), autocast:
        t0 = time.perf_counter()
        cond = text_encoder(sd15_models.token_ids(PROMPT_WORDS))[0].float()
        uncond = text_encoder(sd15_models.token_ids(NEGATIVE_WORDS))[0].float()
        text = time.perf_counter() - t0
        latents = torch.randn(1, 4, side, side, generator=torch.Generator().manual_seed(1))

        def unet_eps(x, t, context):
            return unet(x, t, encoder_hidden_states=context, return_dict=False)[0].float()

        latents, steps = sample(unet_eps, latents, cond, uncond, args.steps)
        upscale, hires_steps, out = 0.0, [], args.size
        if args.hires_scale:
            t0 = time.perf_counter()
            big = int(args.size * args.hires_scale) // 8
            latents = torch.nn.functional.interpolate(latents, size=(big, big), mode="bilinear",
                                                      antialias=False)
            upscale = time.perf_counter() - t0
            latents, hires_steps = sample_tail(unet_eps, latents, cond, uncond, args.hires_steps)
            out = big * 8
        t0 = time.perf_counter()
        image = vae.decode(latents / sd15_models.SCALE_FACTOR, return_dict=False)[0].float()
        decode = time.perf_counter() - t0
    assert image.shape == (1, 3, out, out)
    return dict(version=f"torch {torch.__version__}", load_s=load, text_s=text, steps_s=steps,
                upscale_s=upscale, hires_steps_s=hires_steps, decode_s=decode,
                peak_rss_mib=peak_rss_mib())


# ---------------------------------------------------------------- OpenVINO

def ov_dir(size: int) -> Path:
    return ROOT / "bench-models" / f"openvino-sd15-{size}"


def convert_openvino(args) -> dict:
    """Convert the three networks at static shapes and save them as IR (fp16-compressed
    weights, as a released model would be); a one-off whose time is reported apart."""
    import openvino as ov
    import torch

    import sd15_models

    class UNetEps(torch.nn.Module):
        def __init__(self, unet):
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, context):
            return self.unet(sample, timestep, encoder_hidden_states=context, return_dict=False)[0]

    class Decoder(torch.nn.Module):
        def __init__(self, vae):
            super().__init__()
            self.vae = vae

        def forward(self, z):
            return self.vae.decode(z, return_dict=False)[0]

    class TextEncoder(torch.nn.Module):
        def __init__(self, clip):
            super().__init__()
            self.clip = clip

        def forward(self, ids):
            return self.clip(ids, return_dict=False)[0]

    out = ov_dir(args.size)
    out.mkdir(parents=True, exist_ok=True)
    side = args.size // 8
    t0 = time.perf_counter()
    jobs = [
        ("text_encoder", lambda: TextEncoder(sd15_models.build_text_encoder()),
         (sd15_models.token_ids(PROMPT_WORDS),)),
        ("unet", lambda: UNetEps(sd15_models.build_unet()),
         (torch.randn(2, 4, side, side), torch.tensor([500.0]), torch.randn(2, 77, 768))),
        ("vae_decoder", lambda: Decoder(sd15_models.build_vae()), (torch.randn(1, 4, side, side),)),
    ]
    for name, build, example in jobs:
        module = build()
        with torch.inference_mode():
            model = ov.convert_model(module, example_input=example,
                                     input=[tuple(e.shape) for e in example])
        tmp = out / f"{name}.tmp.xml"
        ov.save_model(model, tmp)
        tmp.replace(out / f"{name}.xml")
        tmp.with_suffix(".bin").replace(out / f"{name}.bin")
        del model, module
    (out / "complete").write_text("ok\n")
    return dict(convert_s=time.perf_counter() - t0)


def run_openvino(args) -> dict:
    import numpy as np
    import openvino as ov
    import torch

    import sd15_models

    src = ov_dir(args.size)
    core = ov.Core()
    config = {
        "INFERENCE_PRECISION_HINT": "bf16" if args.precision == "bf16" else "f32",
        "INFERENCE_NUM_THREADS": str(args.threads),
        "NUM_STREAMS": "1",
        "PERFORMANCE_HINT": "LATENCY",
    }
    t0 = time.perf_counter()
    nets = {name: core.compile_model(core.read_model(src / f"{name}.xml"), "CPU", config)
            for name in ["text_encoder", "unet", "vae_decoder"]}
    load = time.perf_counter() - t0
    requests = {name: net.create_infer_request() for name, net in nets.items()}

    def infer(name, *inputs):
        r = requests[name]
        r.infer([np.ascontiguousarray(i.numpy()) for i in inputs])
        return torch.from_numpy(r.get_output_tensor(0).data.copy())

    t0 = time.perf_counter()
    cond = infer("text_encoder", sd15_models.token_ids(PROMPT_WORDS))
    uncond = infer("text_encoder", sd15_models.token_ids(NEGATIVE_WORDS))
    text = time.perf_counter() - t0
    side = args.size // 8
    latents = torch.randn(1, 4, side, side, generator=torch.Generator().manual_seed(1))

    def unet_eps(x, t, context):
        return infer("unet", x.float(), torch.tensor([float(t)]), context.float())

    latents, steps = sample(unet_eps, latents, cond, uncond, args.steps)
    t0 = time.perf_counter()
    image = infer("vae_decoder", latents / sd15_models.SCALE_FACTOR)
    decode = time.perf_counter() - t0
    assert tuple(image.shape) == (1, 3, args.size, args.size)
    return dict(version=f"OpenVINO {ov.get_version().split('-')[0]}", load_s=load, text_s=text,
                steps_s=steps, decode_s=decode, peak_rss_mib=peak_rss_mib())


# ---------------------------------------------------------------- Easel

def run_easel(args) -> dict:
    cmd = [args.easel, "bench", "--pipeline", "--json", "--sizes", str(args.size), "--steps",
           str(args.steps), "--threads", str(args.threads), "--precision", args.precision]
    if args.hires_scale:
        cmd += ["--hires-scale", str(args.hires_scale), "--hires-steps", str(args.hires_steps)]
    if args.checkpoint:
        cmd += ["--checkpoint", args.checkpoint]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"`{' '.join(cmd)}` printed no JSON line:\n{out}")
    result = json.loads(lines[-1])
    header = [line for line in out.splitlines() if line.startswith("CPU kernels:")]
    result["version"] = f"Easel ({header[0]})" if header else "Easel"
    return result


# ---------------------------------------------------------------- driver

def child(args) -> None:
    engine = args.child
    run = {"easel": run_easel, "torch": run_torch, "openvino": run_openvino,
           "openvino-convert": convert_openvino}[engine]
    print("RESULT " + json.dumps(run(args)), flush=True)


def spawn(args, engine: str, precision: str) -> dict:
    cmd = [sys.executable, __file__, "--child", engine, "--precision", precision,
           "--threads", str(args.threads), "--size", str(args.size), "--steps", str(args.steps),
           "--easel", args.easel, "--hires-steps", str(args.hires_steps)]
    if args.hires_scale:
        cmd += ["--hires-scale", str(args.hires_scale)]
    if args.checkpoint:
        cmd += ["--checkpoint", args.checkpoint]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    results = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not results:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        return dict(error=f"exit {proc.returncode}: " + " | ".join(tail))
    return json.loads(results[-1][len("RESULT "):])


def mean_after_first(s):
    return sum(s[1:]) / len(s[1:]) if len(s) > 1 else (s[0] if s else 0.0)


def row(engine: str, precision: str, r: dict, steps: int, hires: bool) -> str:
    if "error" in r:
        return f"| {engine} | {precision} | failed: {r['error'][:300]} |"
    s = r["steps_s"]
    mean = mean_after_first(s)
    sampling = sum(s)
    h = r.get("hires_steps_s") or []
    hires_total = r.get("upscale_s", 0.0) + sum(h)
    total = r["load_s"] + r["text_s"] + sampling + hires_total + r["decode_s"]
    est = r["load_s"] + r["text_s"] + 20 * mean + r["decode_s"]
    if hires:
        est += r.get("upscale_s", 0.0) + 10 * mean_after_first(h)
    cells = [engine, precision, f"{r['load_s']:.1f}", f"{r['text_s']:.2f}", f"{sampling:.1f}",
             f"{s[0]:.2f} / {mean:.2f}"]
    if hires:
        cells.append(f"{h[0]:.2f} / {mean_after_first(h):.2f}" if h else "-")
    cells += [f"{r['decode_s']:.1f}", f"{total:.1f}"]
    if steps < 20:
        cells.append(f"{est:.0f}")
    cells.append(f"{r['peak_rss_mib']:.0f}")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--hires-scale", type=float, default=0.0,
                    help="add hires fix (Latent upscaler) at this scale")
    ap.add_argument("--hires-steps", type=int, default=10)
    ap.add_argument("--runs", default=",".join(ALL_RUNS),
                    help="engine:precision list (engines easel, torch, openvino)")
    ap.add_argument("--easel", default=str(ROOT / "target" / "release" / "easel"))
    ap.add_argument("--checkpoint",
                    help="Easel and PyTorch: load this SD1.x .safetensors checkpoint instead of "
                         "random weights")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    if args.child:
        child(args)
        return
    runs = [r.split(":") for r in args.runs.split(",")]
    hires = bool(args.hires_scale)
    if hires:
        runs = [(e, p) for e, p in runs if e != "openvino"]
    if any(e == "openvino" for e, _ in runs) and not (ov_dir(args.size) / "complete").exists():
        print(f"converting the networks for OpenVINO into {ov_dir(args.size)} (once) ...", flush=True)
        r = spawn(args, "openvino-convert", "f32")
        print(f"  {r}", flush=True)
    hires_text = (f", hires fix x{args.hires_scale} (Latent, strength {HIRES_STRENGTH}, "
                  f"{args.hires_steps} steps)" if hires else "")
    print(f"SD1.5, random weights, {args.size}x{args.size}, {args.steps} Euler steps, CFG {CFG_SCALE}"
          f"{hires_text}, {args.threads} thread(s)")
    head = ["engine", "precision", "load s", "text s", f"sampling s ({args.steps} steps)",
            "step s (first / mean of rest)"]
    if hires:
        head.append("hires step s (first / mean of rest)")
    head += ["decode s", "total s"]
    if args.steps < 20:
        head.append("est. 20+10-step total s" if hires else "est. 20-step total s")
    head.append("peak RSS MiB")
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    versions = []
    for engine, precision in runs:
        r = spawn(args, engine, precision)
        lines.append(row(engine, precision, r, args.steps, hires))
        if "version" in r and r["version"] not in versions:
            versions.append(r["version"])
        print(lines[-1], flush=True)
    print()
    print("\n".join(lines))
    print("; ".join(versions))


if __name__ == "__main__":
    main()
