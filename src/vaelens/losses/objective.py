"""The beta-VAE objective: E_q[d(x, g(z))] + beta * KL(q(z|x) || N(0, I)).

Convention (recorded in every run): the reconstruction term is summed over pixels and averaged
over the batch; the KL is summed over latent units (all C*h*w for spatial latents), averaged over
the batch and multiplied by beta. One reparameterised sample per image.
"""

from __future__ import annotations

import torch
from torch import nn

from vaelens.losses.pointwise import PointwiseLikelihood, build_likelihood

REDUCTION = "reconstruction summed over pixels, mean over batch; KL summed over latent units, times beta"


def kl_per_unit(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per image and latent unit, flattened to (B, d), in nats."""
    mu, logvar = mu.flatten(1).float(), logvar.flatten(1).float()
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


class BetaVAEObjective(nn.Module):
    def __init__(self, likelihood: PointwiseLikelihood, beta: float):
        super().__init__()
        if beta < 0:
            raise ValueError(f"loss.beta must be non-negative, got {beta}")
        self.likelihood = likelihood
        self.beta = float(beta)

    def forward(self, x, output, mu, logvar) -> dict[str, torch.Tensor]:
        """Loss terms for one batch: `loss` (to minimise), `distortion` and `rate` (batch means, nats),
        `kl_per_unit` (d,) batch mean."""
        distortion = self.likelihood.nll(x, output.float()).mean()
        kl = kl_per_unit(mu, logvar)
        rate = kl.sum(1).mean()
        return {"loss": distortion + self.beta * rate, "distortion": distortion, "rate": rate,
                "kl_per_unit": kl.mean(0)}

    def describe(self) -> dict:
        """Everything a reader needs to interpret the numbers: likelihood, beta, convention, units."""
        return {**self.likelihood.describe(), "beta": self.beta, "convention": "pointwise",
                "reduction": REDUCTION, "units": "nats"}


def build_objective(config, image_shape) -> BetaVAEObjective:
    """The objective described by a LossConfig for images of shape (C, H, W)."""
    return BetaVAEObjective(build_likelihood(config, image_shape), config.beta)
