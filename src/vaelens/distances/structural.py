"""Structural similarity per image: SSIM and MS-SSIM (torchmetrics), differentiable, shape (N,).

The training's structural term (1 - SSIM) and the analysis' distortion metrics both call these.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    structural_similarity_index_measure,
)

from vaelens.distances.images import check_image_pair, check_window_fits

SSIM_KERNEL_SIZE = 11
SSIM_SIGMA = 1.5
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Per-scale exponents of Wang et al. (2003), the torchmetrics default: five scales."""

def ssim(x, x_hat) -> torch.Tensor:
    """Per-image SSIM (11x11 Gaussian window, sigma 1.5, data range 1), shape (N,); 1 means identical."""
    x, x_hat = check_image_pair(x, x_hat)
    check_window_fits(x, "SSIM", SSIM_KERNEL_SIZE, "the 11x11 window must fit inside the image")
    return structural_similarity_index_measure(
        x_hat, x, gaussian_kernel=True, sigma=SSIM_SIGMA, kernel_size=SSIM_KERNEL_SIZE,
        data_range=1.0, reduction="none",
    )


def ms_ssim_min_side(num_scales: int = len(MS_SSIM_BETAS), kernel_size: int = SSIM_KERNEL_SIZE) -> int:
    """Smallest image side torchmetrics accepts for MS-SSIM with `num_scales` scales (176 for 5 scales, 11x11).

    Mirrors torchmetrics' own check: the side must be at least 2**num_scales and
    side // max(1, num_scales - 1)**2 must exceed kernel_size - 1.
    """
    if num_scales < 1:
        raise ValueError(f"num_scales must be >= 1, got {num_scales}")
    return max(2**num_scales, kernel_size * max(1, num_scales - 1) ** 2)


def ms_ssim(x, x_hat, betas: Sequence[float] = MS_SSIM_BETAS) -> torch.Tensor:
    """Per-image multi-scale SSIM (Wang et al. 2003; 11x11 Gaussian window, sigma 1.5), shape (N,).

    With the five standard scales images must be at least 176x176 (`ms_ssim_min_side`); 64x64
    images are too small. Passing fewer `betas` uses fewer scales (not comparable to the standard
    score; say so when reporting).
    """
    x, x_hat = check_image_pair(x, x_hat)
    betas = tuple(float(beta) for beta in betas)
    min_side = ms_ssim_min_side(len(betas))
    check_window_fits(
        x, f"MS-SSIM with {len(betas)} scales", min_side,
        "use ssim() for small images, or pass fewer betas (fewer scales)",
    )
    return multiscale_structural_similarity_index_measure(
        x_hat, x, gaussian_kernel=True, sigma=SSIM_SIGMA, kernel_size=SSIM_KERNEL_SIZE,
        data_range=1.0, betas=betas, reduction="none",
    )
