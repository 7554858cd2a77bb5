"""Write full-size SD1.5 UNet weights (random, fp16) under the original LDM keys to
bench-models/sd15-unet.safetensors for `easel bench`. Not committed: ~1.7 GB.

    .venv/bin/python tests/bench/make_bench_model.py [--out PATH]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from safetensors.torch import save_file  # noqa: E402

import make_fixtures  # noqa: E402  (its diffusers -> LDM key mapping)
import sd15_unet  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "bench-models" / "sd15-unet.safetensors"))
    args = ap.parse_args()
    unet = sd15_unet.build()
    sd = {k: v.half().contiguous() for k, v in make_fixtures.unet_to_ldm(unet).items()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    save_file(sd, str(tmp))
    tmp.replace(out)
    print(f"wrote {out} ({out.stat().st_size / 2**30:.2f} GiB, {len(sd)} tensors)")


if __name__ == "__main__":
    main()
