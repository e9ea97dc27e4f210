"""A vaelens `resnet` model as a diffusers AutoencoderKL, weight for weight.

The resnet model is laid out as latent-diffusion's autoencoder (vaelens.models.resnet), so the mapping
only renames parameters and reshapes two kinds: the attention's fused 1x1 qkv convolution becomes the
three linear layers to_q, to_k and to_v, and its 1x1 output convolution becomes to_out.0. AutoencoderKL
also has a 1x1 quant_conv after the encoder and a post_quant_conv before the decoder, which vaelens has
not; they get identity weights (x * 1 + 0 is exact in floating point), which every diffusers version
loads, where `use_quant_conv=False` would be ignored by versions older than the flag.

AutoencoderKL works on images in [-1, 1]: `encode(2 * x - 1).latent_dist` gives vaelens's
`encode(x)` (x in [0, 1]) and `decode(z).sample` gives `2 * vaelens.decode(z) - 1`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vaelens.errors import MissingDependency, VaelensError
from vaelens.export.check import compare
from vaelens.models import ResNetVAE

SCALING_FACTOR = 1.0
"""The exported config's scaling_factor: 1.0 says the latents are used as they come. Stable Diffusion's
0.18215 was measured on its own VAE's latents (one over their standard deviation) and means nothing for
another model; a user who trains a diffusion model on these latents measures and sets their own."""


def check_diffusers_equivalent(config) -> None:
    """Refuse, in one line, a run whose model AutoencoderKL cannot reproduce: only `resnet` has the layout,
    and a Bernoulli decoder gives logits, which AutoencoderKL.decode would hand out as an image."""
    if config.model.name != "resnet":
        raise VaelensError(f"model {config.model.name} has no diffusers equivalent; use --format onnx or "
                           "--format safetensors")
    if config.loss.likelihood == "bernoulli":
        raise VaelensError("this resnet was trained with loss.likelihood=bernoulli, so its decoder gives logits, not "
                           "the image AutoencoderKL.decode returns; use --format onnx or --format safetensors")


def autoencoder_kl_config(model: ResNetVAE) -> dict:
    """The AutoencoderKL constructor arguments of the architecture of `model`."""
    levels = len(model.widths)
    return {"in_channels": model.image_shape[0], "out_channels": model.image_shape[0],
            "down_block_types": ["DownEncoderBlock2D"] * levels, "up_block_types": ["UpDecoderBlock2D"] * levels,
            "block_out_channels": list(model.widths), "layers_per_block": model.num_res_blocks, "act_fn": "silu",
            "latent_channels": model.latent_shape[0], "norm_num_groups": model.norm_groups,
            "sample_size": model.image_shape[1], "scaling_factor": SCALING_FACTOR}


RENAMED_LAYERS = {"skip": "conv_shortcut", "norm": "group_norm", "proj": "to_out.0"}
"""vaelens layer names inside a block whose diffusers counterparts are named otherwise (the rest agree)."""


def _renamed(target: str, name: str) -> str:
    """The diffusers name of parameter `name` (e.g. skip.weight) of the vaelens block mapped to `target`."""
    if "." not in name:
        return f"{target}.{name}"
    layer, kind = name.rsplit(".", 1)
    return f"{target}.{RENAMED_LAYERS.get(layer, layer)}.{kind}"


def _middle(side: str, middle: nn.Sequential) -> list[tuple[str, nn.Module]]:
    return [(f"{side}.mid_block.resnets.0", middle[0]), (f"{side}.mid_block.attentions.0", middle[1]),
            (f"{side}.mid_block.resnets.1", middle[2])]


def _encoder_blocks(model: ResNetVAE) -> list[tuple[str, nn.Module]]:
    """(diffusers name, vaelens module) of each parametrised block of the encoder, in order."""
    encoder, blocks, index = model.encoder, [("encoder.conv_in", model.encoder[0])], 1
    for level in range(len(model.widths)):
        for block in range(model.num_res_blocks):
            blocks.append((f"encoder.down_blocks.{level}.resnets.{block}", encoder[index]))
            index += 1
        if level < len(model.widths) - 1:
            blocks.append((f"encoder.down_blocks.{level}.downsamplers.0", encoder[index]))
            index += 1
    # then the middle, the GroupNorm, SiLU (no weights) and the output convolution
    return [*blocks, *_middle("encoder", encoder[index]), ("encoder.conv_norm_out", encoder[index + 1]),
            ("encoder.conv_out", encoder[index + 3])]


def _decoder_blocks(model: ResNetVAE) -> list[tuple[str, nn.Module]]:
    decoder, index = model.decoder, 2
    blocks = [("decoder.conv_in", decoder[0]), *_middle("decoder", decoder[1])]
    for up_block, level in enumerate(reversed(range(len(model.widths)))):
        for block in range(model.num_res_blocks + 1):
            blocks.append((f"decoder.up_blocks.{up_block}.resnets.{block}", decoder[index]))
            index += 1
        if level > 0:  # nn.Upsample, then the convolution that diffusers' Upsample2D holds as .conv
            blocks.append((f"decoder.up_blocks.{up_block}.upsamplers.0.conv", decoder[index + 1]))
            index += 2
    return [*blocks, ("decoder.conv_norm_out", decoder[index]), ("decoder.conv_out", decoder[index + 2])]


def autoencoder_kl_state_dict(model: ResNetVAE) -> dict[str, torch.Tensor]:
    """The weights of `model` under AutoencoderKL's parameter names and shapes (contiguous CPU copies)."""
    state = {}
    for target, module in _encoder_blocks(model) + _decoder_blocks(model):
        for name, value in module.named_parameters():
            value = value.detach().cpu()
            # the attention's 1x1 convolutions are diffusers' linear layers: (out, in, 1, 1) -> (out, in)
            value = value.flatten(1) if name.split(".")[0] in ("qkv", "proj") and value.ndim == 4 else value
            if name.startswith("qkv."):
                for part, chunk in zip(("to_q", "to_k", "to_v"), value.chunk(3, dim=0)):
                    state[f"{target}.{part}.{name.split('.')[1]}"] = chunk
            else:
                state[_renamed(target, name)] = value
    moments, latents = 2 * model.latent_shape[0], model.latent_shape[0]
    state["quant_conv.weight"] = torch.eye(moments)[:, :, None, None]
    state["quant_conv.bias"] = torch.zeros(moments)
    state["post_quant_conv.weight"] = torch.eye(latents)[:, :, None, None]
    state["post_quant_conv.bias"] = torch.zeros(latents)
    return {key: value.contiguous().clone() for key, value in state.items()}


def autoencoder_kl(model: ResNetVAE):
    """A diffusers AutoencoderKL computing what `model` computes (on [-1, 1] images), in eval mode."""
    autoencoder = _diffusers_class()(**autoencoder_kl_config(model))
    # strict: every AutoencoderKL weight comes from the mapping, none keeps its random initialisation.
    autoencoder.load_state_dict(autoencoder_kl_state_dict(model), strict=True)
    return autoencoder.eval()


def _diffusers_class():
    try:
        from diffusers import AutoencoderKL
    except ImportError as error:
        raise MissingDependency("--format diffusers needs diffusers: pip install 'vaelens[diffusers]'") from error
    return AutoencoderKL


@torch.no_grad()
def write_diffusers(model: ResNetVAE, folder: Path, images: torch.Tensor) -> dict:
    """Save `model` as an AutoencoderKL into `folder` (save_pretrained's layout: config.json and
    diffusion_pytorch_model.safetensors), load it back with from_pretrained and compare it with `model` on
    `images` in [0, 1], in AutoencoderKL's convention: encode(2x - 1).latent_dist against vaelens's
    encode(x), decode(mu).sample against 2 * vaelens.decode(mu) - 1. Returns the check."""
    autoencoder_kl(model).save_pretrained(str(folder), safe_serialization=True)
    # low_cpu_mem_usage=False: the default asks for accelerate, and warns without it, to save memory on big models
    written = _diffusers_class().from_pretrained(str(folder), local_files_only=True, low_cpu_mem_usage=False).eval()
    mu, logvar = model.encode(images)
    posterior = written.encode(2 * images - 1).latent_dist
    return compare({"mean": mu, "logvar": logvar, "decode": 2 * model.decode(mu) - 1},
                   {"mean": posterior.mean, "logvar": posterior.logvar, "decode": written.decode(mu).sample},
                   "diffusers")
