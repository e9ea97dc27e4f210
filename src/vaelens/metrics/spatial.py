"""Spatial latents (N, C, h, w), as in Stable-Diffusion-style VAEs, reshaped for the (N, d) metrics.

Two views, both accepted by every metric in vaelens.metrics:

- mode="element": each image is one sample of a C*h*w-dimensional latent, (N, C*h*w), column
  index c*h*w + y*w + x. The rate and the variance profiles then count every latent element.
- mode="channel": each spatial position is one sample of a C-dimensional latent, (N*h*w, C),
  row index (n*h + y)*w + x. Geometry and variance profiles then describe the channel space,
  pooled over positions.

What the information metrics mean on the channel view: the "data" become the N*h*w
(image, position) pairs, each with its own posterior, so `mutual_information` estimates the
information one latent pixel's C channels carry about which image *and* which position it came
from (bounded by log(N*h*w)), not I(x; z) of whole images; the rate is the mean KL per position
(the element-view rate divided by h*w). Positions of one image are not independent samples, so
standard errors on this view are optimistic. The cost is O((N*h*w)^2 C): `subsample_rows` draws a
random subset of rows first.
"""

from __future__ import annotations

import torch

from vaelens.sampling import random_subset

__all__ = ["flatten_spatial", "flatten_spatial_posterior", "subsample_rows"]

MODES = ("element", "channel")


def flatten_spatial(latents: torch.Tensor, mode: str = "element") -> torch.Tensor:
    """(N, C, *spatial) -> (N, C * prod(spatial)) for "element", (N * prod(spatial), C) for "channel"."""
    if not isinstance(latents, torch.Tensor):
        latents = torch.as_tensor(latents)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if latents.ndim < 3:
        raise ValueError(
            f"spatial latents must have shape (N, C, h, w) (or (N, C, *spatial)), got {tuple(latents.shape)}; "
            "(N, d) latents need no flattening"
        )
    if mode == "element":
        return latents.reshape(latents.shape[0], -1)
    return latents.movedim(1, -1).reshape(-1, latents.shape[1])


def flatten_spatial_posterior(mu: torch.Tensor, logvar: torch.Tensor,
                              mode: str = "element") -> tuple[torch.Tensor, torch.Tensor]:
    """`flatten_spatial` applied to a posterior's means and log-variances, which must match in shape."""
    if tuple(mu.shape) != tuple(logvar.shape):
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    return flatten_spatial(mu, mode), flatten_spatial(logvar, mode)


def subsample_rows(*tensors: torch.Tensor, max_rows: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """The same random `max_rows` rows of each tensor (all as given when they have no more rows).

    For keeping the O(rows^2) information estimators affordable on the channel view.
    """
    if not tensors:
        raise ValueError("subsample_rows needs at least one tensor")
    if not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows must be a positive integer, got {max_rows!r}")
    num_rows = tensors[0].shape[0]
    if any(tensor.shape[0] != num_rows for tensor in tensors):
        raise ValueError(f"all tensors must have the same number of rows, got {[t.shape[0] for t in tensors]}")
    if num_rows <= max_rows:
        return tensors
    chosen = random_subset(num_rows, max_rows, seed)
    return tuple(tensor[chosen.to(tensor.device)] for tensor in tensors)
