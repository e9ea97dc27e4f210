"""Validation of an image pair (x, x̂) shared by every distance and distortion metric: same (N, C, H, W) shape,
finite, values in [0, 1]; and whether a window or network fits the images."""

from __future__ import annotations

import torch

from vaelens.checks import check_finite


def check_image_pair(x, x_hat) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate an image pair: same (N, C, H, W) shape, finite, values in [0, 1]; return float tensors."""
    tensors = []
    for name, value in (("x", x), ("x_hat", x_hat)):
        if not isinstance(value, torch.Tensor):
            value = torch.as_tensor(value)
        if not value.is_floating_point():
            value = value.to(torch.float32)
        if value.ndim != 4:
            raise ValueError(f"{name} must be a 4-D image batch (N, C, H, W), got shape {tuple(value.shape)}")
        check_finite(value.detach(), name)
        low, high = float(value.detach().min()), float(value.detach().max())
        if low < -1e-6 or high > 1.0 + 1e-6:
            raise ValueError(
                f"{name} must hold values in [0, 1], found range [{low:.4g}, {high:.4g}]; "
                "map images to [0, 1] (and clamp decoder outputs) before measuring distortion"
            )
        tensors.append(value)
    x, x_hat = tensors
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    return x, x_hat.to(x.device, x.dtype)


def check_window_fits(x: torch.Tensor, what: str, min_side: int, hint: str) -> None:
    height, width = x.shape[-2:]
    if height < min_side or width < min_side:
        raise ValueError(f"{what} needs images of at least {min_side}x{min_side} pixels, got {height}x{width}; {hint}")
