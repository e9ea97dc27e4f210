"""Reconstruction distortions: MSE, PSNR, SSIM, MS-SSIM and LPIPS, and a report of all of them.

Conventions shared by every function here:

- Images are (N, C, H, W) floating tensors with values in [0, 1] (numpy arrays are accepted too);
  `x` is the data, `x_hat` the reconstruction. They stay on their device and keep their dtype.
- Every metric returns a per-image tensor of shape (N,); `distortion_report` averages those over
  images and returns plain floats.
- Structural metrics come from torchmetrics, LPIPS from the `lpips` package through
  `vaelens.losses.lpips`, which owns its networks (offline backbones from the torch hub cache) and
  the LPIPS-style `feature_distance` that the training losses share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    structural_similarity_index_measure,
)

from vaelens.losses.lpips import (
    LPIPS_MIN_SIDE,
    MissingBackboneError,
    build_lpips,
    check_lpips_net,
    feature_distance,
    lpips_between,
    lpips_metric_name,
)
from vaelens.metrics.checks import check_finite

SSIM_KERNEL_SIZE = 11
SSIM_SIGMA = 1.5
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Per-scale exponents of Wang et al. (2003), the torchmetrics default: five scales."""
PSNR_CAP_DB = 100.0
"""PSNR given to an exact reconstruction (MSE = 0) so that averages over images stay finite."""


def _check_images(x, x_hat) -> tuple[torch.Tensor, torch.Tensor]:
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


def mse(x, x_hat, reduction: str = "mean") -> torch.Tensor:
    """Per-image squared error, shape (N,).

    reduction="mean" averages over the C*H*W pixels (the usual reported MSE, scale-free in image
    size); reduction="sum" sums over them, the pixel term of the training objective (PAPER.md §1).
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    x, x_hat = _check_images(x, x_hat)
    squared = (x - x_hat).pow(2).flatten(1)
    return squared.mean(dim=1) if reduction == "mean" else squared.sum(dim=1)


def psnr(x, x_hat, max_db: float | None = PSNR_CAP_DB) -> torch.Tensor:
    """Per-image peak signal-to-noise ratio in dB with MAX = 1: 10 log10(1 / MSE), shape (N,).

    An exact reconstruction has MSE = 0 and infinite PSNR; values are capped at `max_db` (100 dB by
    default, far above any real reconstruction) so means over images stay finite. Pass
    max_db=None to get +inf instead. Computed in float64.
    """
    per_pixel = mse(x, x_hat, reduction="mean").to(torch.float64)
    values = -10.0 * torch.log10(per_pixel)
    return values if max_db is None else values.clamp(max=max_db)


def _check_window_fits(x: torch.Tensor, what: str, min_side: int, hint: str) -> None:
    height, width = x.shape[-2:]
    if height < min_side or width < min_side:
        raise ValueError(f"{what} needs images of at least {min_side}x{min_side} pixels, got {height}x{width}; {hint}")


def ssim(x, x_hat) -> torch.Tensor:
    """Per-image SSIM (11x11 Gaussian window, sigma 1.5, data range 1), shape (N,); 1 means identical."""
    x, x_hat = _check_images(x, x_hat)
    _check_window_fits(x, "SSIM", SSIM_KERNEL_SIZE, "the 11x11 window must fit inside the image")
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
    x, x_hat = _check_images(x, x_hat)
    betas = tuple(float(beta) for beta in betas)
    min_side = ms_ssim_min_side(len(betas))
    _check_window_fits(
        x, f"MS-SSIM with {len(betas)} scales", min_side,
        "use ssim() for small images, or pass fewer betas (fewer scales)",
    )
    return multiscale_structural_similarity_index_measure(
        x_hat, x, gaussian_kernel=True, sigma=SSIM_SIGMA, kernel_size=SSIM_KERNEL_SIZE,
        data_range=1.0, betas=betas, reduction="none",
    )


def lpips_distance(
    x, x_hat, net: str = "alex", *, pnet_rand: bool = False, model: torch.nn.Module | None = None
) -> torch.Tensor:
    """Per-image LPIPS distance (Zhang et al. 2018), shape (N,); lower is more similar.

    Images in [0, 1] are mapped to [-1, 1]; single-channel images are repeated to 3 channels; the
    result has the module's dtype (float32). Images need sides of at least LPIPS_MIN_SIDE[net]
    (31 for AlexNet). `model` overrides the cached `build_lpips(net, pnet_rand)` module (it must
    match `net`). Gradients flow to x_hat.
    """
    x, x_hat = _check_images(x, x_hat)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"LPIPS needs 1- or 3-channel images, got {x.shape[1]} channels")
    check_lpips_net(net)
    _check_window_fits(
        x, f"LPIPS-{net}", LPIPS_MIN_SIDE[net], "pad or upsample the images (e.g. 28x28 MNIST) before LPIPS"
    )
    if model is None:
        model = build_lpips(net, pnet_rand)
    model = model.to(x.device)
    weight_dtype = next(model.parameters()).dtype
    return lpips_between(model, x.to(weight_dtype), x_hat.to(weight_dtype))


def distortion_report(
    x,
    x_hat,
    *,
    lpips_net: str | None = None,
    lpips_random_backbone: bool = False,
    feature_fn: Callable[[torch.Tensor], Sequence[torch.Tensor]] | None = None,
) -> dict[str, float | str]:
    """Mean over images of every available distortion, as a flat dict.

    Keys: mse (per-pixel mean), mse_sum (per-image pixel sum, the training objective's scale),
    psnr (dB, capped at PSNR_CAP_DB), ssim, ms_ssim, `lpips_metric_name(lpips_net, ...)` when
    lpips_net is given, and feature when feature_fn is given. A metric that cannot be computed
    (images too small, backbone weights missing) is left out and a "<name>_skipped" key holds
    the reason as a string.
    """
    x, x_hat = _check_images(x, x_hat)
    report: dict[str, float | str] = {
        "mse": float(mse(x, x_hat).mean()),
        "mse_sum": float(mse(x, x_hat, reduction="sum").mean()),
        "psnr": float(psnr(x, x_hat).mean()),
    }
    for name, metric in (("ssim", ssim), ("ms_ssim", ms_ssim)):
        try:
            report[name] = float(metric(x, x_hat).mean())
        except ValueError as error:
            report[f"{name}_skipped"] = str(error)
    if lpips_net is not None:
        name = lpips_metric_name(lpips_net, lpips_random_backbone)
        try:
            with torch.no_grad():
                report[name] = float(lpips_distance(x, x_hat, lpips_net, pnet_rand=lpips_random_backbone).mean())
        except (MissingBackboneError, ValueError) as error:
            report[f"{name}_skipped"] = str(error)
    if feature_fn is not None:
        with torch.no_grad():
            report["feature"] = float(feature_distance(x, x_hat, feature_fn).mean())
    return report
