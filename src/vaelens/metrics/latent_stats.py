"""Latent statistics for latent diffusion: the scale and offset a diffusion model trained on these latents needs.

A latent diffusion model is trained on posterior samples z = mu + sigma * eps, rescaled to unit variance:

- Stable Diffusion (v1, v2, XL): z * scaling_factor with scaling_factor = 1 / std(z) over every element of a
  batch of encoded images (0.18215 for SD v1);
- SD3 and FLUX: (z - shift_factor) * scaling_factor with shift_factor = mean(z); the scaling factor is then
  1 / std(z - shift_factor), which is the same number, 1 / std(z), since a shift leaves the std unchanged;
- per channel, as diffusers' `latents_mean` / `latents_std` (used e.g. by the SDXL pipelines when the VAE
  config sets them): (z - latents_mean[c]) * scaling_factor / latents_std[c], so that scaling_factor = 1 gives
  every channel unit variance.

`latent_diffusion_statistics(mu, logvar, seed)` measures all of these from encoded posteriors: (N, d) vector
latents (a "channel" is then a unit) or spatial ones (N, C, *spatial), per channel pooled over positions and
images. The noise eps is standard normal, drawn block by block (SAMPLE_BLOCK_IMAGES images at a time, in image
order, each block one float64 draw of its shape) from one CPU generator seeded with `seed`, so a seed gives the
same z on every device. Every std uses the unbiased (n - 1) normalisation over the elements pooled, as
`torch.std` does. Moments are accumulated as float64 sums of z and z^2.

Elements of one image are not independent samples, so the standard errors are delete-one-image jackknife
estimates over the N images, not sqrt(n) formulas over the elements.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from vaelens.checks import as_float_tensor, check_finite
from vaelens.metrics._aggregate import standard_normal_noise
from vaelens.posterior import DiagonalGaussian

__all__ = ["LatentDiffusionStatistics", "latent_diffusion_statistics"]

SAMPLE_BLOCK_IMAGES = 256
"""Images whose noise is drawn at once (the draw is part of the definition of z; it bounds the float64 buffers)."""


@dataclass(frozen=True)
class LatentDiffusionStatistics:
    """Moments of the posterior samples z and of the posterior means mu, and the diffusion factors they give."""

    sample_mean: float
    """Mean of z over every element of every image."""
    sample_std: float
    """Std of z over every element of every image."""
    mean_mean: float
    """Mean of mu over every element."""
    mean_std: float
    """Std of mu over every element."""
    scaling_factor: float | None
    """1 / sample_std: Stable Diffusion's scaling_factor, and SD3/FLUX's beside shift_factor (None when z is
    constant)."""
    shift_factor: float
    """sample_mean: SD3/FLUX's shift_factor."""
    channel_mean: list[float]
    """Mean of z per channel (per unit for vector latents): diffusers' latents_mean."""
    channel_std: list[float]
    """Std of z per channel (per unit for vector latents): diffusers' latents_std."""
    num_images: int
    """Images the statistics pool."""
    seed: int
    """Seed of the noise eps."""
    sample_mean_stderr: float | None
    """Jackknife (over images) standard error of sample_mean; None with too few elements."""
    sample_std_stderr: float | None
    """Jackknife standard error of sample_std."""
    scaling_factor_stderr: float | None
    """Jackknife standard error of scaling_factor."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Sums:
    """float64 sums of values and their squares, per image and channel, (N, C) each, over L elements."""

    first: torch.Tensor
    second: torch.Tensor
    elements: int

    def channel_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        count = self.first.shape[0] * self.elements
        mean = self.first.sum(0) / count
        variance = (self.second.sum(0) - count * mean.square()) / (count - 1)
        return mean, variance.clamp(min=0).sqrt()

    def per_image(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Per-image sums over every element, and the elements of one image."""
        return self.first.sum(1), self.second.sum(1), self.first.shape[1] * self.elements


def _mean_and_std(first: torch.Tensor, second: torch.Tensor, count) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased std from (batched) sums over `count` elements."""
    mean = first / count
    return mean, ((second - count * mean.square()) / (count - 1)).clamp(min=0).sqrt()


def _jackknife_stderr(first: torch.Tensor, second: torch.Tensor, per_image: int) -> tuple[float | None, ...]:
    """Delete-one-image jackknife standard errors of the mean, the std and 1 / std."""
    images = first.shape[0]
    count = (images - 1) * per_image
    if images < 2 or count < 2:
        return None, None, None
    mean, std = _mean_and_std(first.sum() - first, second.sum() - second, count)
    estimates = (mean, std, std.reciprocal())
    return tuple(float(((images - 1) / images * (values - values.mean()).square().sum()).sqrt())
                 for values in estimates)


def _sums(values: torch.Tensor) -> _Sums:
    return _Sums(values.sum(2), values.square().sum(2), values.shape[2])


def _joined(blocks: list[_Sums]) -> _Sums:
    return _Sums(torch.cat([block.first for block in blocks]), torch.cat([block.second for block in blocks]),
                 blocks[0].elements)


def _as_channels(tensor, name: str) -> torch.Tensor:
    """(N, d) -> (N, d, 1); (N, C, *spatial) -> (N, C, prod(spatial)), in its own floating dtype (blocks are
    summed in float64, so no float64 copy of the whole set is made)."""
    if not (isinstance(tensor, torch.Tensor) and tensor.is_floating_point()):
        tensor = as_float_tensor(tensor, name)
    if tensor.ndim < 2 or tensor.shape[0] < 2 or tensor.shape[1] < 1:
        raise ValueError(f"{name} must be (N, d) or (N, C, *spatial) with N >= 2 images, got {tuple(tensor.shape)}")
    check_finite(tensor, name)
    return tensor.reshape(tensor.shape[0], tensor.shape[1], -1)


def latent_diffusion_statistics(mu, logvar, seed: int = 0) -> LatentDiffusionStatistics:
    """The statistics of the module docstring for posteriors N(mu, diag exp(logvar)) of N images."""
    mu, logvar = _as_channels(mu, "mu"), _as_channels(logvar, "logvar")
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    generator = torch.Generator().manual_seed(int(seed))
    sample_blocks, mean_blocks = [], []
    for start in range(0, mu.shape[0], SAMPLE_BLOCK_IMAGES):
        block_mu = mu[start:start + SAMPLE_BLOCK_IMAGES].double()
        noise = standard_normal_noise(tuple(block_mu.shape), generator=generator).to(mu.device)
        sample_blocks.append(_sums(DiagonalGaussian(block_mu, logvar[start:start + len(block_mu)].double())
                                   .sample(noise)))
        mean_blocks.append(_sums(block_mu))
    samples, means = _joined(sample_blocks), _joined(mean_blocks)
    first, second, per_image = samples.per_image()
    count = first.shape[0] * per_image
    sample_mean, sample_std = _mean_and_std(first.sum(), second.sum(), count)
    mean_first, mean_second, _ = means.per_image()
    mean_mean, mean_std = _mean_and_std(mean_first.sum(), mean_second.sum(), count)
    channel_mean, channel_std = samples.channel_moments()
    mean_stderr, std_stderr, scale_stderr = _jackknife_stderr(first, second, per_image)
    std = float(sample_std)
    return LatentDiffusionStatistics(
        sample_mean=float(sample_mean), sample_std=std, mean_mean=float(mean_mean), mean_std=float(mean_std),
        scaling_factor=1 / std if std > 0 else None, shift_factor=float(sample_mean),
        channel_mean=channel_mean.tolist(), channel_std=channel_std.tolist(), num_images=int(mu.shape[0]),
        seed=int(seed), sample_mean_stderr=mean_stderr, sample_std_stderr=std_stderr,
        scaling_factor_stderr=scale_stderr if std > 0 else None)
