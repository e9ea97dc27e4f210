"""SD-style convolutional VAE with spatial latents (C x h x w), laid out as latent-diffusion's AutoencoderKL.

Residual blocks (GroupNorm, SiLU, 3x3 conv), stride-2 downsampling between resolution levels,
a middle stage with one self-attention block, and a mirrored decoder with nearest upsampling.
Small by default so it trains on a CPU; the sd-vae preset makes it kl-f8 shaped.

The computation is latent-diffusion's (and diffusers' AutoencoderKL's) weight for weight, so that
`vaelens export` can hand a trained model to diffusers exactly: the downsampler pads one side
(right and bottom) before its stride-2 convolution, every GroupNorm has the same number of groups,
and the network works on images in [-1, 1] (`encode` takes [0, 1] images, as every vaelens model
does, and maps them; `decode` maps the network's [-1, 1] output back to [0, 1]).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from vaelens.models.base import VAE


def norm_groups(widths) -> int:
    """GroupNorm groups for the whole network: 32 as in latent-diffusion where every width allows, else the
    largest divisor of 32 that divides every width (one count for all layers, as AutoencoderKL has)."""
    return math.gcd(32, *widths)


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.norm1, self.conv1 = group_norm(in_channels, groups), nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.norm2, self.conv2 = group_norm(out_channels, groups), nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over spatial positions, with a residual connection."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = group_norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        # (batch, one head, positions, channels): the 4-D layout that the ONNX exporter's attention takes
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).unsqueeze(1).chunk(3, dim=3)
        attended = F.scaled_dot_product_attention(q, k, v).squeeze(1)
        return x + self.proj(attended.transpose(1, 2).reshape(batch, channels, height, width))


class Downsample(nn.Module):
    """Halve the size with a stride-2 3x3 convolution after padding right and bottom by one, as
    latent-diffusion does (a symmetric padding of one would shift the sampling grid by half a pixel)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


def middle(channels: int, groups: int) -> nn.Sequential:
    return nn.Sequential(ResnetBlock(channels, channels, groups), AttentionBlock(channels, groups),
                         ResnetBlock(channels, channels, groups))


class ResNetVAE(VAE):
    architecture = "resnet/latent-diffusion"
    """Before this revision the downsampler padded symmetrically, the network took [0, 1] images and narrow
    widths had their own GroupNorm group counts; checkpoints of that network are refused, not run in this one."""

    def __init__(self, image_shape, latent_channels: int = 4, channels: int = 32,
                 channel_multipliers=(1, 2, 2), num_res_blocks: int = 1):
        super().__init__()
        in_channels, height, width = image_shape
        factor = 2 ** (len(channel_multipliers) - 1)
        if height % factor or width % factor:
            raise ValueError(
                f"resnet with {len(channel_multipliers)} levels downsamples by {factor}; image size "
                f"{height}x{width} is not divisible by it: change data.image_size or model.channel_multipliers"
            )
        self.image_shape = tuple(image_shape)
        self.latent_shape = (latent_channels, height // factor, width // factor)
        self.widths = [channels * m for m in channel_multipliers]
        self.num_res_blocks = num_res_blocks
        self.norm_groups = groups = norm_groups(self.widths)
        widths = self.widths

        encoder = [nn.Conv2d(in_channels, widths[0], 3, 1, 1)]
        current = widths[0]
        for level, width_at_level in enumerate(widths):
            for _ in range(num_res_blocks):
                encoder.append(ResnetBlock(current, width_at_level, groups))
                current = width_at_level
            if level < len(widths) - 1:
                encoder.append(Downsample(current))
        encoder += [middle(current, groups), group_norm(current, groups), nn.SiLU(),
                    nn.Conv2d(current, 2 * latent_channels, 3, 1, 1)]
        self.encoder = nn.Sequential(*encoder)

        decoder = [nn.Conv2d(latent_channels, widths[-1], 3, 1, 1), middle(widths[-1], groups)]
        current = widths[-1]
        for level in reversed(range(len(widths))):
            for _ in range(num_res_blocks + 1):
                decoder.append(ResnetBlock(current, widths[level], groups))
                current = widths[level]
            if level > 0:
                decoder += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(current, current, 3, 1, 1)]
        decoder += [group_norm(current, groups), nn.SiLU(), nn.Conv2d(current, in_channels, 3, 1, 1)]
        self.decoder = nn.Sequential(*decoder)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_input(x)
        mu, logvar = self.encoder(2 * x - 1).chunk(2, dim=1)
        # latent-diffusion clamps the log-variance to keep exp() finite early in training.
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (self.decoder(z) + 1) / 2

    @property
    def decoder_last_layer(self) -> nn.Module:
        return self.decoder[-1]


def resnet(image_shape, config) -> ResNetVAE:
    return ResNetVAE(image_shape, config.latent_dim, config.channels, tuple(config.channel_multipliers),
                     config.num_res_blocks)
