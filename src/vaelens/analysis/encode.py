"""Encode an evaluation set once (posterior means and log-variances) and draw the seeded subsets scored on it.

Every subset the analysis scores is `vaelens.sampling.random_subset(size, count, seed)`, so draws of
different counts from the same size and seed are nested (the 16 images of the reconstruction figure lie
among the distortion images) and a recorded (size, count, seed) reproduces the subset exactly. Nesting also
lets a larger draw reuse a smaller one's encodings (`extend_encoded`): no image is encoded twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from vaelens.models.base import VAE, PosteriorEncoder
from vaelens.sampling import random_subset


@dataclass
class EncodedSet:
    mu: torch.Tensor
    """Posterior means, (N, *latent_shape), float32 on the CPU."""
    logvar: torch.Tensor
    """Posterior log-variances, same shape."""
    indices: torch.Tensor
    """Which images of the data set were encoded, ascending (a seeded random draw, not the first N)."""


def reconstruction_function(model: VAE | PosteriorEncoder, objective=None):
    """z -> reconstruction in image space: the model's own `reconstruct`, or the likelihood's mean."""
    if hasattr(model, "reconstruct"):
        return model.reconstruct
    if objective is None:
        raise ValueError("a vaelens model needs its objective to turn decoder outputs into images")
    return lambda z: objective.likelihood.mean(model.decode(z))


@torch.no_grad()
def encode_at(model, data, indices: torch.Tensor, batch_size: int = 256, device="cpu",
              progress: bool = True) -> EncodedSet:
    """Encode the images of `data` at `indices` (ascending), in batches of `batch_size`."""
    means, logvars = [], []
    for start in tqdm(range(0, len(indices), batch_size), desc="encode", disable=not progress, leave=False):
        images = data.images(indices[start:start + batch_size]).to(device)
        mu, logvar = model.encode(images)
        means.append(mu.float().cpu())
        logvars.append(logvar.float().cpu())
    return EncodedSet(torch.cat(means), torch.cat(logvars), indices)


def encode_images(model, data, max_images: int | None, batch_size: int = 256, seed: int = 0,
                  device="cpu", progress: bool = True) -> EncodedSet:
    """Encode up to `max_images` images of `data` (a seeded random selection when there are more)."""
    return encode_at(model, data, random_subset(data.num_images, max_images, seed), batch_size, device, progress)


def extend_encoded(model, data, encoded: EncodedSet, indices: torch.Tensor, device="cpu",
                   progress: bool = True) -> EncodedSet:
    """The encoded set at `indices` (ascending, a superset of `encoded.indices`): only the images not yet
    encoded are encoded, and the two are merged in index order."""
    missing = indices[~torch.isin(indices, encoded.indices)]
    if len(indices) != len(encoded.indices) + len(missing):
        raise ValueError("extend_encoded needs indices that contain every index already encoded")
    if not len(missing):
        return encoded
    added = encode_at(model, data, missing, device=device, progress=progress)
    order = torch.argsort(torch.cat([encoded.indices, added.indices]))
    return EncodedSet(torch.cat([encoded.mu, added.mu])[order], torch.cat([encoded.logvar, added.logvar])[order],
                      indices)
