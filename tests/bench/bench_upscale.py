"""PyTorch (spandrel) reference timing for `easel bench --upscale`: ESRGAN 4x of a square
image with a full-size RRDBNet (23 blocks, 64 features, random weights made here), run the
way A1111 runs a model from `models/ESRGAN`: spandrel's model descriptor over the 8-bit
image in 192-pixel tiles with an 8-pixel overlap (`upscaler_utils.upscale_with_model`), or
the whole image at once with `--tile 0` (joining the tiles, a few milliseconds, is left
out). fp32 on the CPU; prints seconds and peak RSS.

    .venv/bin/python tests/bench/bench_upscale.py --threads 2 --size 512 [--tile 192]
"""
from __future__ import annotations

import argparse
import math
import resource
import time

import numpy as np
import torch
from PIL import Image

import spandrel
from spandrel.architectures.ESRGAN import ESRGAN


def to_tensor(img):
    a = np.ascontiguousarray(np.array(img)[:, :, ::-1].transpose(2, 0, 1)) / 255
    return torch.from_numpy(a).float().unsqueeze(0)


def to_image(t):
    a = (255.0 * t[0].clamp(0, 1).numpy().transpose(1, 2, 0)).round().astype(np.uint8)
    return Image.fromarray(a[:, :, ::-1].copy(), "RGB")


def tiles(w, h, tile, overlap):
    """A1111's images.split_grid origins."""
    cols = math.ceil((w - overlap) / (tile - overlap))
    rows = math.ceil((h - overlap) / (tile - overlap))
    dx = (w - tile) / (cols - 1) if cols > 1 else 0
    dy = (h - tile) / (rows - 1) if rows > 1 else 0
    for r in range(rows):
        y = int(r * dy)
        if y + tile >= h:
            y = h - tile
        for c in range(cols):
            x = int(c * dx)
            if x + tile >= w:
                x = w - tile
            yield x, y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--tile", type=int, default=192)
    ap.add_argument("--overlap", type=int, default=8)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = ESRGAN(in_nc=3, out_nc=3, num_filters=64, num_blocks=23, scale=4).eval()
    desc = spandrel.ImageModelDescriptor(
        net, net.state_dict(), architecture=spandrel.architectures.ESRGAN.ESRGANArch(),
        purpose="SR", tags=[], supports_half=True, supports_bfloat16=True, scale=4,
        input_channels=3, output_channels=3,
    )
    g = np.random.default_rng(0)
    img = Image.fromarray(g.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8), "RGB")
    print(f"torch {torch.__version__}, spandrel {spandrel.__version__}, {torch.get_num_threads()} threads, fp32")
    start = time.perf_counter()
    with torch.inference_mode():
        if args.tile <= 0:
            to_image(desc(to_tensor(img)))
        else:
            n = 0
            for x, y in tiles(args.size, args.size, args.tile, args.overlap):
                to_image(desc(to_tensor(img.crop((x, y, x + args.tile, y + args.tile)))))
                n += 1
    took = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"ESRGAN 4x {args.size}² (tile {args.tile}/{args.overlap}): {took:.1f} s, peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
