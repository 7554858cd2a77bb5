"""PyTorch (diffusers) reference timing for `easel bench`: one CFG sampling step = one
SD1.5 UNet forward with batch 2, fp32 (or bf16 CPU autocast with `--bf16`, to compare with
`easel bench --precision bf16`), on the CPU; or on a CUDA GPU (`--device cuda`, fp32 or
fp16 with `--fp16`, the precision published GPU figures use), to compare with
`easel bench --backend cuda` and `--backend wgpu`. It/s is one over the step's time.

    .venv/bin/python tests/bench/bench_torch.py --threads 1 --sizes 256,512 [--bf16]
    python3 tests/bench/bench_torch.py --device cuda --sizes 512 --steps 20 [--fp16]
"""
from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sd15_unet  # noqa: E402

GFLOP = {256: 180.0, 512: 803.0}  # one image, one UNet forward


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="bf16 CPU autocast")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--fp16", action="store_true", help="fp16 weights and activations (cuda)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = torch.float16 if args.fp16 else torch.float32
    unet = sd15_unet.build().to(device=device, dtype=dtype)
    ctx = torch.randn(2, 77, 768, device=device, dtype=dtype)
    if device.type == "cuda":
        label = f"{torch.cuda.get_device_name(device)}, {'fp16' if args.fp16 else 'fp32'}"
    else:
        label = f"{torch.get_num_threads()} threads, {'bf16 autocast' if args.bf16 else 'fp32'}"
    print(f"torch {torch.__version__}, {label}")
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    with torch.inference_mode(), autocast:
        for side in [int(s) for s in args.sizes.split(",")]:
            x = torch.randn(2, 4, side // 8, side // 8, device=device, dtype=dtype)
            t = torch.tensor([500.0, 500.0], device=device)
            unet(x, t, ctx)  # warm-up
            sync()
            times = []
            for _ in range(max(1, args.steps)):
                t0 = time.perf_counter()
                unet(x, t, ctx)
                sync()
                times.append(time.perf_counter() - t0)
            best = min(times)
            gflop = 2 * GFLOP.get(side, 803.0 * side * side / 512**2)
            print(f"{side}x{side} CFG step (UNet batch 2): best {best:.3f} s, mean {sum(times)/len(times):.3f} s, {1/best:.2f} it/s, {gflop/best:.0f} GFLOP/s")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
