"""Weighting conventions (docs/science.md, "Objectives and weighting conventions"): how the pixel term and the other
reconstruction terms combine.

- additive: d_pix + sum_k w_k d_k
- convex:   (1 - a) d_pix + a sum_{k mixed} w_k d_k + sum_{k not mixed} w_k d_k
- ldm:      sum_pixels((|x - x̂| + sum_{k mixed} w_k d_k) / exp(s) + s) + sum_{k not mixed} w_k d_k

The mixed terms are the neural ones (perceptual); the structural term is added outside the mix. With a
calibrated w (losses/calibration.py) the convex mix keeps the pixel term's average curvature and only
redistributes it. Each function returns the per-image distortion (B,).
"""

from __future__ import annotations

import torch


def additive(pixel: torch.Tensor, weighted: list[tuple[object, torch.Tensor, bool]]) -> torch.Tensor:
    """`weighted`: (weight, per-image value, mixed) of each term."""
    total = pixel
    for weight, value, _ in weighted:
        total = total + weight * value
    return total


def convex(pixel: torch.Tensor, weighted: list[tuple[object, torch.Tensor, bool]], fraction: float) -> torch.Tensor:
    total = (1.0 - fraction) * pixel
    for weight, value, mixed in weighted:
        total = total + (fraction if mixed else 1.0) * weight * value
    return total


def ldm(pixel_map: torch.Tensor, weighted: list[tuple[object, torch.Tensor, bool]],
        logvar: torch.Tensor) -> torch.Tensor:
    """latent-diffusion's LPIPSWithDiscriminator: mixed per-image terms broadcast to every pixel, then the
    learned scalar log-variance s: sum((rec / exp(s)) + s)."""
    per_pixel, outside = pixel_map, 0.0
    for weight, value, mixed in weighted:
        if mixed:
            per_pixel = per_pixel + weight * value.view(-1, *[1] * (pixel_map.ndim - 1))
        else:
            outside = outside + weight * value
    return (per_pixel / torch.exp(logvar) + logvar).flatten(1).sum(1) + outside
