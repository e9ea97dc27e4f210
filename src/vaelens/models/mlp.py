"""Fully connected VAE (two hidden ReLU layers each way) and the linear VAE of the theory."""

from __future__ import annotations

import math

import torch
from torch import nn

from vaelens.models.base import VAE


class MLPVAE(VAE):
    def __init__(self, image_shape, latent_dim: int = 10, hidden_dim: int = 256):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.latent_shape = (latent_dim,)
        pixels = math.prod(image_shape)
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(pixels, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
            nn.Linear(hidden_dim, 2 * latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
            nn.Linear(hidden_dim, pixels), nn.Unflatten(1, self.image_shape),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_input(x)
        return self.encoder(x).chunk(2, dim=1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    @property
    def decoder_last_layer(self) -> nn.Module:
        return self.decoder[-2]


class LinearVAE(VAE):
    """mu(x) = A x + a, a posterior log-variance per unit that does not depend on x, g(z) = W z + b.

    This is the model class of the closed-form linear-Gaussian theory (docs/science.md,
    "The linear-Gaussian theory"): at its optimum the posterior variance is the same for every input, so it is a
    parameter, not a network.
    """

    def __init__(self, image_shape, latent_dim: int = 10):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.latent_shape = (latent_dim,)
        pixels = math.prod(image_shape)
        self.encoder_mean = nn.Linear(pixels, latent_dim)
        self.posterior_logvar = nn.Parameter(torch.zeros(latent_dim))
        self.decoder = nn.Linear(latent_dim, pixels)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_input(x)
        mu = self.encoder_mean(x.flatten(1))
        return mu, self.posterior_logvar.expand_as(mu)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).unflatten(1, self.image_shape)

    @property
    def decoder_last_layer(self) -> nn.Module:
        return self.decoder


def mlp(image_shape, config) -> MLPVAE:
    return MLPVAE(image_shape, config.latent_dim, config.hidden_dim)


def linear(image_shape, config) -> LinearVAE:
    return LinearVAE(image_shape, config.latent_dim)
