"""The full-size SD1.5 UNet used by the benchmarks, built with diffusers (random weights:
speed does not depend on the values)."""
from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel

# SD1.5's UNet (v1-inference.yaml): 320/640/1280/1280 channels, 8 heads, 768-wide context.
SD15_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    cross_attention_dim=768,
    attention_head_dim=8,
    norm_num_groups=32,
    flip_sin_to_cos=True,
    freq_shift=0,
)


def build(seed: int = 0) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return UNet2DConditionModel(**SD15_UNET).eval()
