"""The diagonal Gaussian posterior q(z|x) = N(mean, diag exp(logvar)): its reparameterised sample, its KL to the
prior N(0, I) and its log-density, written once for the model, the objective, the metrics and the checks.

Every method works elementwise on tensors of any shape (vector latents (B, d), spatial ones (B, C, h, w)) in
the dtype given; callers flatten or reduce.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class DiagonalGaussian:
    """N(mean, diag exp(logvar)), as an encoder gives it."""

    mean: torch.Tensor
    """Posterior means mu."""
    logvar: torch.Tensor
    """Posterior log-variances log sigma^2, the shape of `mean`."""

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, noise: torch.Tensor) -> torch.Tensor:
        """The reparameterised draw mean + sigma * noise for standard-normal `noise` (the caller owns the noise,
        so a seeded generator decides it)."""
        return self.mean + torch.exp(0.5 * self.logvar) * noise

    def kl_to_standard_normal(self) -> torch.Tensor:
        """KL(N(mu_j, sigma_j^2) || N(0, 1)) of every unit, in nats: 0.5 (mu^2 + sigma^2 - 1 - log sigma^2)."""
        return 0.5 * (self.mean.square() + self.logvar.exp() - 1.0 - self.logvar)

    def log_density_of_sample(self, noise: torch.Tensor) -> torch.Tensor:
        """log q(z_j|x) per unit at the draw z = sample(noise): -0.5 (noise^2 + log sigma^2 + log 2 pi), written
        in the noise so that no cancellation of z - mu enters."""
        return -0.5 * (noise.square() + self.logvar + LOG_2PI)
