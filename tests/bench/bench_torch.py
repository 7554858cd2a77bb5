"""PyTorch (diffusers) reference timing for `easel bench`: one CFG sampling step = one
SD1.5 UNet forward with batch 2, fp32 (or bf16 CPU autocast with `--bf16`, to compare with
`easel bench --precision bf16`), on the CPU.

    .venv/bin/python tests/bench/bench_torch.py --threads 1 --sizes 256,512 [--bf16]
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
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    unet = sd15_unet.build()
    ctx = torch.randn(2, 77, 768)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {'bf16 autocast' if args.bf16 else 'fp32'}")
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        for side in [int(s) for s in args.sizes.split(",")]:
            x = torch.randn(2, 4, side // 8, side // 8)
            t = torch.tensor([500.0, 500.0])
            unet(x, t, ctx)  # warm-up
            times = []
            for _ in range(max(1, args.steps)):
                t0 = time.perf_counter()
                unet(x, t, ctx)
                times.append(time.perf_counter() - t0)
            best = min(times)
            gflop = 2 * GFLOP.get(side, 803.0 * side * side / 512**2)
            print(f"{side}x{side} CFG step (UNet batch 2): best {best:.2f} s, mean {sum(times)/len(times):.2f} s, {gflop/best:.0f} GFLOP/s")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
