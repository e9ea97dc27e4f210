"""Reconstruction distortions: MSE, PSNR, SSIM, MS-SSIM and LPIPS, and a report of all of them.

Conventions shared by every function here:

- Images are (N, C, H, W) floating tensors with values in [0, 1] (numpy arrays are accepted too);
  `x` is the data, `x_hat` the reconstruction. They stay on their device and keep their dtype.
- Every metric returns a per-image tensor of shape (N,); `distortion_report` averages those over
  images and returns plain floats.
- The distances themselves live in `vaelens.distances`, below both the metrics and the training losses:
  SSIM and MS-SSIM (torchmetrics, `vaelens.distances.structural`, re-exported here), LPIPS from the
  `lpips` package (`vaelens.distances.lpips`, which owns its offline backbones) and the LPIPS-style
  `feature_distance` (`vaelens.distances.features`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from vaelens.distances.efficientnet import DISTANCE_NAME, CorruptWeightsError, efficientnet_distance
from vaelens.distances.features import feature_distance
from vaelens.distances.images import check_image_pair, check_window_fits
from vaelens.distances.lpips import (
    LPIPS_MIN_SIDE,
    MissingBackboneError,
    build_lpips,
    check_lpips_net,
    lpips_between,
    lpips_metric_name,
)
from vaelens.distances.structural import ms_ssim, ms_ssim_min_side, ssim
from vaelens.errors import MissingDependency

__all__ = ["distortion_report", "lpips_distance", "ms_ssim", "ms_ssim_min_side", "mse", "psnr", "ssim"]

IMAGENET_KEY = DISTANCE_NAME.replace("-", "_")
"""The report key of the ImageNet EfficientNet-Lite0 distance (distortion.effnet_lite0 in analysis.json)."""
PSNR_CAP_DB = 100.0
"""PSNR given to an exact reconstruction (MSE = 0) so that averages over images stay finite."""


def mse(x, x_hat, reduction: str = "mean") -> torch.Tensor:
    """Per-image squared error, shape (N,).

    reduction="mean" averages over the C*H*W pixels (the usual reported MSE, scale-free in image
    size); reduction="sum" sums over them, the pixel term of the training objective (docs/science.md,
    "Objectives and weighting conventions").
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    x, x_hat = check_image_pair(x, x_hat)
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


def lpips_distance(
    x, x_hat, net: str = "alex", *, pnet_rand: bool = False, model: torch.nn.Module | None = None
) -> torch.Tensor:
    """Per-image LPIPS distance (Zhang et al. 2018), shape (N,); lower is more similar.

    Images in [0, 1] are mapped to [-1, 1]; single-channel images are repeated to 3 channels; the
    result has the module's dtype (float32). Images need sides of at least LPIPS_MIN_SIDE[net]
    (31 for AlexNet). `model` overrides the cached `build_lpips(net, pnet_rand)` module (it must
    match `net`). Gradients flow to x_hat.
    """
    x, x_hat = check_image_pair(x, x_hat)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"LPIPS needs 1- or 3-channel images, got {x.shape[1]} channels")
    check_lpips_net(net)
    check_window_fits(
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
    imagenet_features: bool = False,
) -> dict[str, float | str]:
    """Mean over images of every available distortion, as a flat dict.

    Keys: mse (per-pixel mean), mse_sum (per-image pixel sum, the training objective's scale),
    psnr (dB, capped at PSNR_CAP_DB), ssim, ms_ssim, `lpips_metric_name(lpips_net, ...)` when
    lpips_net is given, feature when feature_fn is given, and effnet_lite0 (the uncalibrated LPIPS-style
    distance over the ImageNet EfficientNet-Lite0, vaelens.distances.efficientnet: installed with vaelens, so
    available offline) when imagenet_features is set. A metric that cannot be computed (images too small,
    backbone weights missing) is left out and a "<name>_skipped" key holds the reason as a string.
    """
    x, x_hat = check_image_pair(x, x_hat)
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
    if imagenet_features:
        try:
            with torch.no_grad():
                report[IMAGENET_KEY] = float(efficientnet_distance(x.float(), x_hat.float()).mean())
        except (MissingDependency, CorruptWeightsError, ValueError) as error:
            report[f"{IMAGENET_KEY}_skipped"] = str(error)
    return report
