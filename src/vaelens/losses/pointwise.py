"""Pointwise reconstruction likelihoods: per-image negative log-likelihood in nats, summed over pixels.

Each likelihood reads the decoder's raw output its own way (`mean` gives the reconstruction in
image space) and keeps every normalising constant, so the distortion is a true NLL in nats.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)


class PointwiseLikelihood(nn.Module):
    name: str = ""

    def nll(self, x: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """Per-image negative log-likelihood (B,), summed over pixels, in nats."""
        raise NotImplementedError

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        """The reconstruction in image space."""
        return output

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
        return squared / (2 * self.sigma**2) + pixels * (math.log(self.sigma) + HALF_LOG_TWO_PI)

    def describe(self):
        return {"likelihood": self.name, "sigma": self.sigma}


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
        return (x - output).abs().flatten(1).sum(1) / self.scale + pixels * math.log(2 * self.scale)

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


LIKELIHOODS = ("gaussian", "gaussian_learned", "laplace", "bernoulli")


def build_likelihood(config, image_shape) -> PointwiseLikelihood:
    """The likelihood named by `config.likelihood` (a LossConfig)."""
    if config.likelihood == "gaussian":
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
