"""Pointwise reconstruction likelihoods: per-image negative log-likelihood in nats, summed over pixels.

Each likelihood reads the decoder's raw output its own way (`mean` gives the reconstruction in
image space) and keeps every normalising constant, so the distortion is a true NLL in nats.
"""

from __future__ import annotations

import math
import typing
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vaelens.config.sections import LikelihoodName

HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)
REFERENCE_CLAMP = 0.01
"""Bernoulli calibration point: the mean image kept this far from 0 and 1, where the curvature is finite."""


class PointwiseLikelihood(nn.Module):
    name: str = ""

    def nll(self, x: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """Per-image negative log-likelihood (B,), summed over pixels, in nats."""
        raise NotImplementedError

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        """The reconstruction in image space."""
        return output

    def image_nll(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """The NLL as a function of the reconstruction in image space, where neural terms are measured too
        (the decoder output is that reconstruction here; Bernoulli overrides it)."""
        return self.nll(x, x_hat)

    def calibration_point(self, images: torch.Tensor) -> tuple[torch.Tensor, str]:
        """Where the curvature of this term is measured when a neural weight is calibrated against it, and
        that point said in words: x̂ = x, the point a good reconstruction approaches."""
        return images, "x_hat = x"

    def constant(self, pixels: int) -> float | None:
        """The part of nll(x, x̂) per image that no parameter moves (its normalising constant), in nats, for
        images of `pixels` values; None when a learned scale leaves the NLL without a fixed origin. The
        convergence figure measures the objective from here, so the choice of sigma does not shift it."""
        return 0.0

    def describe(self) -> dict:
        return {"likelihood": self.name}


class GaussianLikelihood(PointwiseLikelihood):
    """N(x | x̂, sigma^2) per pixel with fixed sigma: ||x - x̂||^2 / (2 sigma^2) + D log(sigma sqrt(2 pi))."""

    name = "gaussian"

    def __init__(self, sigma: float = 1.0):
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"loss.sigma must be positive for the Gaussian likelihood, got {sigma}")
        self.sigma = float(sigma)

    def nll(self, x, output):
        pixels = x[0].numel()
        squared = (x - output).pow(2).flatten(1).sum(1)
        return squared / (2 * self.sigma**2) + self.constant(pixels)

    def constant(self, pixels):
        return pixels * (math.log(self.sigma) + HALF_LOG_TWO_PI)

    def describe(self):
        return {"likelihood": self.name, "sigma": self.sigma}


class MetricGaussianLikelihood(PointwiseLikelihood):
    """N(x | x̂, sigma^2 M^-1) over the flattened pixels: the quadratic distortion of the linear theory.

    nll = (x - x̂)^T M (x - x̂) / (2 sigma^2) + D log(sigma sqrt(2 pi)) - 0.5 log det M, with M a fixed
    positive-definite (D, D) matrix, e.g. I + w J^T J for a linearised perceptual loss (vaelens.theory).
    """

    name = "gaussian"

    def __init__(self, metric: torch.Tensor, sigma: float = 1.0, source: str = "tensor"):
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"loss.sigma must be positive for the Gaussian likelihood, got {sigma}")
        metric = torch.as_tensor(metric, dtype=torch.float64)
        if metric.ndim != 2 or metric.shape[0] != metric.shape[1]:
            raise ValueError(f"loss.metric {source} must hold a square (D, D) matrix, got shape {tuple(metric.shape)}")
        if not bool(torch.isfinite(metric).all()):
            raise ValueError(f"loss.metric {source} has NaN or infinite entries")
        if (metric - metric.T).abs().max() > 1e-6 * max(1.0, float(metric.abs().max())):
            raise ValueError(f"loss.metric {source} must be symmetric; store 0.5 * (M + M.T)")
        metric = 0.5 * (metric + metric.T)
        cholesky, info = torch.linalg.cholesky_ex(metric)
        if int(info) != 0:
            raise ValueError(f"loss.metric {source} must be positive definite (a feature-only metric usually is "
                             "not: add the pixel identity, e.g. I + w J^T J)")
        self.sigma = float(sigma)
        self.source = source
        self.register_buffer("metric", metric.float(), persistent=False)
        self.log_det_metric = float(2 * torch.log(torch.diagonal(cholesky)).sum())

    def nll(self, x, output):
        pixels = x[0].numel()
        if self.metric.shape[0] != pixels:
            raise ValueError(f"loss.metric {self.source} is {self.metric.shape[0]} x {self.metric.shape[0]} but the "
                             f"images have {pixels} pixels; build it for images of shape {tuple(x.shape[1:])}")
        delta = (x - output).flatten(1)
        quadratic = torch.einsum("bi,ij,bj->b", delta, self.metric.to(delta.dtype), delta)
        return quadratic / (2 * self.sigma**2) + self.constant(pixels)

    def constant(self, pixels):
        return pixels * (math.log(self.sigma) + HALF_LOG_TWO_PI) - 0.5 * self.log_det_metric

    def describe(self):
        return {"likelihood": self.name, "sigma": self.sigma, "metric": self.source,
                "metric_trace": float(self.metric.double().trace()), "metric_log_det": self.log_det_metric}


def load_metric(path: str) -> torch.Tensor:
    """The (D, D) matrix stored in the .npy file loss.metric (no pickles)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"loss.metric file {file} does not exist; save M with numpy.save")
    try:
        matrix = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read loss.metric {file} as a .npy array: {error}") from error
    if not isinstance(matrix, np.ndarray) or not np.issubdtype(matrix.dtype, np.number):
        raise ValueError(f"loss.metric {file} must hold a numeric (D, D) array")
    return torch.from_numpy(np.asarray(matrix, dtype=np.float64))


class LearnedGaussianLikelihood(PointwiseLikelihood):
    """Gaussian with a learned log-sigma, one for all pixels (scalar) or one per pixel."""

    name = "gaussian_learned"

    def __init__(self, image_shape, per_pixel: bool = False):
        super().__init__()
        self.per_pixel = per_pixel
        self.log_sigma = nn.Parameter(torch.zeros(tuple(image_shape) if per_pixel else ()))

    def nll(self, x, output):
        log_sigma = self.log_sigma.expand_as(x)
        per_pixel = 0.5 * (x - output).pow(2) * torch.exp(-2 * log_sigma) + log_sigma + HALF_LOG_TWO_PI
        return per_pixel.flatten(1).sum(1)

    def constant(self, pixels):
        return None  # sum(log sigma) moves with training: the NLL has no fixed origin

    def constant_at_current_scale(self, image_shape) -> float:
        """The NLL's constant per image with sigma frozen at its current value: sum over pixels of
        log sigma + log(2 pi) / 2, the value at a perfect reconstruction."""
        log_sigma = self.log_sigma.detach().double().expand(tuple(image_shape))
        return float(log_sigma.sum()) + math.prod(image_shape) * HALF_LOG_TWO_PI

    def describe(self):
        sigma = torch.exp(self.log_sigma.detach())
        return {"likelihood": self.name, "learned_sigma": "pixel" if self.per_pixel else "scalar",
                "sigma_mean": float(sigma.mean())}


class LaplaceLikelihood(PointwiseLikelihood):
    """Laplace(x | x̂, b) per pixel with fixed scale b: |x - x̂| / b + D log(2 b)."""

    name = "laplace"

    def __init__(self, scale: float = 1.0):
        super().__init__()
        if scale <= 0:
            raise ValueError(f"loss.sigma (the Laplace scale b) must be positive, got {scale}")
        self.scale = float(scale)

    def nll(self, x, output):
        pixels = x[0].numel()
        return (x - output).abs().flatten(1).sum(1) / self.scale + self.constant(pixels)

    def constant(self, pixels):
        return pixels * math.log(2 * self.scale)

    def calibration_point(self, images):
        raise ValueError("a calibrated neural weight (loss.perceptual_weight=auto) matches curvatures, and the "
                         "Laplace term |x - x_hat| has none (its Hessian is zero away from x_hat = x); use "
                         "loss.likelihood=gaussian or bernoulli, or give loss.perceptual_weight a number")

    def describe(self):
        return {"likelihood": self.name, "scale": self.scale}


class BernoulliLikelihood(PointwiseLikelihood):
    """Bernoulli(x | sigmoid(logits)) per pixel: binary cross-entropy with logits, summed.

    For targets strictly between 0 and 1 this is the continuous cross-entropy, which is not a
    normalised likelihood; on binary data (dSprites) it is exact.
    """

    name = "bernoulli"

    def nll(self, x, output):
        return F.binary_cross_entropy_with_logits(output, x, reduction="none").flatten(1).sum(1)

    def mean(self, output):
        return torch.sigmoid(output)

    def image_nll(self, x, x_hat):
        return self.nll(x, torch.logit(x_hat))

    def calibration_point(self, images):
        # At x̂ = x the Bernoulli curvature x / x̂^2 + (1 - x) / (1 - x̂)^2 is infinite for binary images; the
        # data-mean image (clamped away from 0 and 1) is a reconstruction at which it is finite.
        mean = images.mean(0, keepdim=True).clamp(REFERENCE_CLAMP, 1 - REFERENCE_CLAMP).expand_as(images)
        where = (f"x_hat = the calibration images' mean image, clamped to [{REFERENCE_CLAMP}, {1 - REFERENCE_CLAMP}] "
                 "(the Bernoulli curvature is infinite at a binary x_hat = x)")
        return mean.contiguous(), where


LIKELIHOODS = typing.get_args(LikelihoodName)
"""The likelihood names, as the config declares them."""


def build_likelihood(config, image_shape) -> PointwiseLikelihood:
    """The likelihood named by `config.likelihood` (a LossConfig)."""
    metric = getattr(config, "metric", None)
    if metric and config.likelihood != "gaussian":
        raise ValueError(f"loss.metric applies to the fixed-sigma Gaussian likelihood only, not "
                         f"loss.likelihood={config.likelihood}; set loss.likelihood=gaussian or loss.metric=null")
    if config.likelihood == "gaussian":
        if metric:
            return MetricGaussianLikelihood(load_metric(metric), config.sigma, str(metric))
        return GaussianLikelihood(config.sigma)
    if config.likelihood == "gaussian_learned":
        if config.learned_sigma not in ("scalar", "pixel"):
            raise ValueError(f"loss.learned_sigma must be 'scalar' or 'pixel', got '{config.learned_sigma}'")
        return LearnedGaussianLikelihood(image_shape, per_pixel=config.learned_sigma == "pixel")
    if config.likelihood == "laplace":
        return LaplaceLikelihood(config.sigma)
    if config.likelihood == "bernoulli":
        return BernoulliLikelihood()
    raise ValueError(f"unknown loss.likelihood '{config.likelihood}'; available: {', '.join(LIKELIHOODS)}")
