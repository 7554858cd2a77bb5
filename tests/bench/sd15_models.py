"""Full-size SD1.5 networks for the whole-image benchmark, built with diffusers and
transformers from their configs (random weights, nothing downloaded): the UNet of
`sd15_unet`, the KL-f8 VAE and the CLIP ViT-L/14 text encoder."""
from __future__ import annotations

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

import sd15_unet

# SD1.5's first stage (v1-inference.yaml): ch 128, ch_mult 1,2,4,4, 2 res blocks, z 4.
SD15_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=32,
    sample_size=512,
)

# openai/clip-vit-large-patch14's text tower, as SD1.x uses it.
SD15_CLIP = dict(
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=768,
)

# SD1.x latent scale (v1-inference.yaml `scale_factor`).
SCALE_FACTOR = 0.18215


def build_unet(seed: int = 0) -> UNet2DConditionModel:
    return sd15_unet.build(seed)


def build_vae(seed: int = 1) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(**SD15_VAE).eval()


def build_text_encoder(seed: int = 2) -> CLIPTextModel:
    torch.manual_seed(seed)
    return CLIPTextModel(CLIPTextConfig(**SD15_CLIP)).eval()


def load_checkpoint(path: str):
    """`(text_encoder, unet, vae)` in fp32 from an SD1.x LDM checkpoint (`.safetensors`), as a
    fast loader does it: the networks are built without initialising their weights (on the
    meta device), diffusers' single-file converters rename the LDM keys, and the tensors are
    assigned and then widened to fp32 (reading the file as they go)."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )
    from safetensors.torch import load_file

    import sd15_unet

    state = load_file(path)
    with torch.device("meta"):
        unet = UNet2DConditionModel(**sd15_unet.SD15_UNET)
        vae = AutoencoderKL(**SD15_VAE)
        text_encoder = CLIPTextModel(CLIPTextConfig(**SD15_CLIP))
    unet.load_state_dict(convert_ldm_unet_checkpoint(state, unet.config), assign=True)
    vae.load_state_dict(convert_ldm_vae_checkpoint(state, vae.config), assign=True)
    clip = convert_ldm_clip_checkpoint(state)
    wanted = text_encoder.state_dict().keys()
    if not any(k.startswith("text_model.") for k in wanted):
        clip = {k.removeprefix("text_model."): v for k, v in clip.items()}
    text_encoder.load_state_dict(clip, assign=True, strict=False)
    missing = [k for k, v in text_encoder.named_parameters() if v.is_meta]
    if missing:
        raise KeyError(f"{path}: the text encoder's {missing[:3]} are not in the checkpoint")
    # The one buffer not in a checkpoint: the positions 0..76.
    for module in text_encoder.modules():
        ids = getattr(module, "position_ids", None)
        if isinstance(ids, torch.Tensor) and ids.is_meta:
            module.register_buffer("position_ids", torch.arange(ids.shape[-1]).expand(1, -1),
                                   persistent=False)
    return text_encoder.float().eval(), unet.float().eval(), vae.float().eval()


def token_ids(words: int) -> torch.Tensor:
    """`[1, 77]` ids: BOS, `words` ordinary tokens, then EOS padding (as A1111 pads). The
    values do not change the cost; the benchmark needs no tokenizer files."""
    bos, eos = 49406, 49407
    ids = [bos] + [320 + 7 * i for i in range(words)] + [eos]
    ids += [eos] * (77 - len(ids))
    return torch.tensor([ids], dtype=torch.long)
