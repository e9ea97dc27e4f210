"""SD-style convolutional VAE with spatial latents (C x h x w), after latent-diffusion's AutoencoderKL.

Residual blocks (GroupNorm, SiLU, 3x3 conv), stride-2 downsampling between resolution levels,
a middle stage with one self-attention block, and a mirrored decoder with nearest upsampling.
Small by default so it trains on a CPU; the sd-vae preset makes it kl-f8 shaped.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from vaelens.models.base import VAE


def group_norm(channels: int) -> nn.GroupNorm:
    # 32 groups as in latent-diffusion when the width allows, fewer for the narrow CPU-sized nets.
    return nn.GroupNorm(math.gcd(32, channels), channels, eps=1e-6)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1, self.conv1 = group_norm(in_channels), nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.norm2, self.conv2 = group_norm(out_channels), nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over spatial positions, with a residual connection."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=2)
        attended = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(attended.transpose(1, 2).reshape(batch, channels, height, width))


def middle(channels: int) -> nn.Sequential:
    return nn.Sequential(ResnetBlock(channels, channels), AttentionBlock(channels), ResnetBlock(channels, channels))


class ResNetVAE(VAE):
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
        widths = [channels * m for m in channel_multipliers]

        encoder = [nn.Conv2d(in_channels, widths[0], 3, 1, 1)]
        current = widths[0]
        for level, width_at_level in enumerate(widths):
            for _ in range(num_res_blocks):
                encoder.append(ResnetBlock(current, width_at_level))
                current = width_at_level
            if level < len(widths) - 1:
                encoder.append(nn.Conv2d(current, current, 3, 2, 1))
        encoder += [middle(current), group_norm(current), nn.SiLU(), nn.Conv2d(current, 2 * latent_channels, 3, 1, 1)]
        self.encoder = nn.Sequential(*encoder)

        decoder = [nn.Conv2d(latent_channels, widths[-1], 3, 1, 1), middle(widths[-1])]
        current = widths[-1]
        for level in reversed(range(len(widths))):
            for _ in range(num_res_blocks + 1):
                decoder.append(ResnetBlock(current, widths[level]))
                current = widths[level]
            if level > 0:
                decoder += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(current, current, 3, 1, 1)]
        decoder += [group_norm(current), nn.SiLU(), nn.Conv2d(current, in_channels, 3, 1, 1)]
        self.decoder = nn.Sequential(*decoder)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_input(x)
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        # latent-diffusion clamps the log-variance to keep exp() finite early in training.
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    @property
    def decoder_last_layer(self) -> nn.Module:
        return self.decoder[-1]


def resnet(image_shape, config) -> ResNetVAE:
    return ResNetVAE(image_shape, config.latent_dim, config.channels, tuple(config.channel_multipliers),
                     config.num_res_blocks)
