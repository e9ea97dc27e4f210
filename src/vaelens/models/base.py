"""What every vaelens model provides (a diagonal-Gaussian encoder and a decoder, kept apart from the loss),
and the smaller protocol any model, vaelens' or pretrained, meets to be analysed."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from vaelens.posterior import DiagonalGaussian


class VAE(nn.Module):
    """Encoder q(z|x) = N(mu(x), diag exp(logvar(x))) and decoder g(z).

    Subclasses set `image_shape` and `latent_shape` and implement `encode`, `decode` and
    `decoder_last_layer`. `decode` returns the raw decoder output; the likelihood decides what
    it means (Bernoulli logits, Gaussian means).
    """

    image_shape: tuple[int, int, int]
    latent_shape: tuple[int, ...]
    architecture: str | None = None
    """Names a revision of the model's computation made under an unchanged config. Checkpoints record it, and
    weights saved under another revision are refused rather than run in a network they were not trained in;
    None for a model never revised."""

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def decoder_last_layer(self) -> nn.Module:
        """The decoder's final layer; the adaptive adversarial weight takes gradients at its weight."""
        raise NotImplementedError

    @property
    def latent_dim(self) -> int:
        """Total number of latent units (C*h*w for spatial latents)."""
        return int(torch.Size(self.latent_shape).numel())

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear error when images do not have the shape this model was built for."""
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(self.image_shape):
            raise ValueError(
                f"{type(self).__name__} expects images of shape (N, {', '.join(map(str, self.image_shape))}), "
                f"got {tuple(x.shape)}; set data.image_size / data.grayscale to match, or choose another model"
            )

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None):
        """Encode, reparameterise (z = mu + sigma * noise; noise=None means z = mu), decode."""
        mu, logvar = self.encode(x)
        z = mu if noise is None else DiagonalGaussian(mu, logvar).sample(noise)
        return self.decode(z), mu, logvar


class PosteriorEncoder(Protocol):
    """What `vaelens.analyze` needs of a model: image shape, latent shape, encode, reconstruct."""

    image_shape: tuple[int, int, int]
    latent_shape: tuple[int, ...]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def reconstruct(self, z: torch.Tensor) -> torch.Tensor: ...
