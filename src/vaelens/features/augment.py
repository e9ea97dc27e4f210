"""Batched, seeded image transformations for self-supervised fitting (torch ops only, any device).

Every function takes a batch (N, C, H, W) in [0, 1] and a torch.Generator on the batch's device and
returns a new batch in [0, 1]; each image draws its own parameters, so one call augments a whole
batch without a Python loop, and the same generator state gives the same result.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def _uniform(count: int, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(count, generator=generator, device=device)


def _luma(images: torch.Tensor) -> torch.Tensor:
    """Per-pixel brightness (N, 1, H, W): ITU-R 601 luma for RGB, the channel itself otherwise."""
    if images.shape[1] != 3:
        return images.mean(dim=1, keepdim=True)
    weights = torch.tensor(LUMA_WEIGHTS, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def random_resized_crop_and_flip(images: torch.Tensor, generator: torch.Generator,
                                 area: tuple[float, float] = (0.3, 1.0),
                                 aspect: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Crop a random window (a fraction `area` of the image, aspect ratio in `aspect`), resize it back
    to the full size (bilinear) and mirror it left-right with probability 1/2, per image."""
    count, device = images.shape[0], images.device
    window_area = _uniform(count, *area, generator, device)
    log_aspect = _uniform(count, math.log(aspect[0]), math.log(aspect[1]), generator, device)
    width = torch.sqrt(window_area * log_aspect.exp()).clamp(max=1.0)
    height = torch.sqrt(window_area / log_aspect.exp()).clamp(max=1.0)
    # affine_grid works in [-1, 1] coordinates: a window of relative width w has half-width w.
    centre_x = (1.0 - width) * _uniform(count, -1.0, 1.0, generator, device)
    centre_y = (1.0 - height) * _uniform(count, -1.0, 1.0, generator, device)
    mirror = torch.where(torch.rand(count, generator=generator, device=device) < 0.5, -1.0, 1.0)
    theta = torch.zeros(count, 2, 3, dtype=images.dtype, device=device)
    theta[:, 0, 0] = width * mirror
    theta[:, 0, 2] = centre_x
    theta[:, 1, 1] = height
    theta[:, 1, 2] = centre_y
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def colour_jitter(images: torch.Tensor, generator: torch.Generator, strength: float = 0.4,
                  probability: float = 0.8, grayscale_probability: float = 0.2) -> torch.Tensor:
    """With `probability` per image, scale brightness, contrast and (RGB) saturation by factors drawn
    from [1 - strength, 1 + strength]; then turn RGB images to gray with `grayscale_probability`."""
    count, device = images.shape[0], images.device

    def factor() -> torch.Tensor:
        drawn = _uniform(count, 1.0 - strength, 1.0 + strength, generator, device)
        applied = torch.rand(count, generator=generator, device=device) < probability
        return torch.where(applied, drawn, torch.ones_like(drawn)).view(-1, 1, 1, 1)

    brightness, contrast, saturation = factor(), factor(), factor()
    jittered = (images * brightness).clamp(0.0, 1.0)
    mean_luma = _luma(jittered).mean(dim=(2, 3), keepdim=True)
    jittered = (mean_luma + contrast * (jittered - mean_luma)).clamp(0.0, 1.0)
    if images.shape[1] == 3:
        gray = _luma(jittered)
        jittered = (gray + saturation * (jittered - gray)).clamp(0.0, 1.0)
        to_gray = (torch.rand(count, generator=generator, device=device) < grayscale_probability).view(-1, 1, 1, 1)
        jittered = torch.where(to_gray, _luma(jittered).expand_as(jittered), jittered)
    return jittered


def contrastive_view(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One SimCLR-style view: random resized crop + mirror, then colour jitter."""
    return colour_jitter(random_resized_crop_and_flip(images, generator), generator)


def corrupt(images: torch.Tensor, generator: torch.Generator, noise_std: float = 0.1,
            mask_probability: float = 0.25, grid: int = 8) -> torch.Tensor:
    """Cover each cell of a grid x grid partition with mid-gray (0.5) with `mask_probability`, add
    Gaussian noise of standard deviation `noise_std` everywhere, clip to [0, 1]."""
    count, channels, height, width = images.shape
    cells = torch.rand(count, 1, grid, grid, generator=generator, device=images.device) < mask_probability
    mask = F.interpolate(cells.to(images.dtype), size=(height, width), mode="nearest")
    covered = images * (1.0 - mask) + 0.5 * mask
    noise = noise_std * torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return (covered + noise).clamp(0.0, 1.0)
