"""Every latent statistic of one encoded set, as flat analysis.json keys (nats).

Vector latents (N, d) are measured once, with unprefixed keys. Spatial latents (N, C, h, w) are
measured twice (docs/science.md, "Information"): the unprefixed keys treat each of the C*h*w elements as a
unit ("element" view), and the `channel.` keys pool the h*w positions as samples of a C-unit
latent ("channel" view; see vaelens.metrics.spatial for what its information numbers mean).
Both get the `latent_stats.` keys: the moments of posterior samples a latent diffusion model is scaled by
(vaelens.metrics.latent_stats), per element and per channel (per unit for vector latents).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vaelens.metrics.geometry import geometry_summary
from vaelens.metrics.information import (
    active_unit_mask,
    aggregate_posterior_decomposition,
    gaussian_mi_upper_bound,
    marginal_kl,
    mutual_information,
    rate,
)
from vaelens.metrics.latent_stats import latent_diffusion_statistics
from vaelens.metrics.spatial import flatten_spatial_posterior, subsample_rows
from vaelens.metrics.variance import mean_variance_profile, posterior_variance_profile

ACTIVE_THRESHOLD = 0.01
"""Var_x(mu_j) above which a unit counts as active (Burda et al. 2016)."""
DECOMPOSITION_MAX_UNITS = 64
"""TC and dimension-wise KL score each unit's 1-D mixture separately (d times the cost of MI), so
above this many units only I(x; z) and KL(q(z)||p(z)) are estimated and the skip is recorded."""
CHANNEL_VIEW_MAX_ROWS = 4096
"""(image, position) rows kept for the channel view: its estimators cost O(rows^2)."""
SATURATION_MARGIN_NATS = 0.5
"""An I(x; z) estimate within this of its ceiling log N is flagged as saturated (docs/science.md, "How a claim is
tested"):
every per-sample term is <= log N, so near it the number is a floor set by N, not by the model."""


def _saturation(information: float, num_points: int) -> dict:
    ceiling = math.log(num_points)
    return {"mutual_information_ceiling": ceiling,
            "mutual_information_saturated": bool(information >= ceiling - SATURATION_MARGIN_NATS)}


def _information(mu: torch.Tensor, logvar: torch.Tensor, seed: int, mi_samples: int) -> dict:
    """Rate, I(x; z) and the aggregate-posterior KL terms with their standard errors."""
    total, per_unit = rate(mu, logvar)
    results = {"rate": total, "rate_per_unit": per_unit, "mi_num_samples": mi_samples,
               "gaussian_mi_upper_bound": gaussian_mi_upper_bound(mu, logvar)}
    if mu.shape[1] <= DECOMPOSITION_MAX_UNITS:
        decomposition = aggregate_posterior_decomposition(mu, logvar, num_samples=mi_samples, seed=seed).to_dict()
        for key in ("num_points", "num_samples", "log_num_points", "rate"):
            decomposition.pop(key)
        results.update(decomposition)
        results.update(_saturation(decomposition["mutual_information"], mu.shape[0]))
        return results
    information, information_stderr = mutual_information(mu, logvar, num_samples=mi_samples, seed=seed,
                                                          return_stderr=True)
    kl, kl_stderr = marginal_kl(mu, logvar, num_samples=mi_samples, seed=seed, return_stderr=True)
    results.update(mutual_information=information, mutual_information_stderr=information_stderr,
                   marginal_kl=kl, marginal_kl_stderr=kl_stderr,
                   total_correlation_skipped=f"{mu.shape[1]} units > {DECOMPOSITION_MAX_UNITS}: total "
                                             "correlation and dimension-wise KL cost d times MI; see the "
                                             "channel view for spatial latents")
    results.update(_saturation(information, mu.shape[0]))
    return results


def _geometry(points: torch.Tensor, prefix: str) -> dict:
    """geometry_summary of `points` under `prefix`, or a `<prefix>skipped` reason when undefined."""
    if points.shape[1] < 1:
        return {f"{prefix}skipped": "no units"}
    try:
        summary = geometry_summary(points)
    except ValueError as error:
        return {f"{prefix}skipped": str(error)}
    return {f"{prefix}{key}": value for key, value in summary.items()}


def _profiles(mu: torch.Tensor, logvar: torch.Tensor) -> dict:
    """Both variance profiles, or a `<prefix>skipped` reason (one unit, or no variance at all)."""
    results = {}
    for prefix, profile_of, values in (("posterior_variance.", posterior_variance_profile, logvar),
                                       ("mean_variance.", mean_variance_profile, mu)):
        try:
            profile = profile_of(values).to_dict()
        except ValueError as error:
            results[f"{prefix}skipped"] = str(error)
            continue
        results.update({f"{prefix}{key}": value for key, value in profile.items()})
    return results


@dataclass(frozen=True)
class LatentSample:
    """An encoded set as the latent statistics see it: (N, d) posteriors and what the estimators need."""

    mu: torch.Tensor
    """Posterior means, (N, d)."""
    logvar: torch.Tensor
    """Posterior log-variances, (N, d)."""
    active: torch.Tensor
    """The active units' mask, (d,) (Var_x(mu_j) > ACTIVE_THRESHOLD)."""
    seed: int
    """Seed of every Monte-Carlo estimate."""
    mi_samples: int
    """Draws of z per image in the information estimates."""


@dataclass(frozen=True)
class LatentStatistic:
    """One group of analysis.json keys computed from the encoded posteriors."""

    name: str
    """What it measures."""
    compute: Callable[[LatentSample], dict]
    """The sample -> its flat keys (a `<prefix>skipped` key says why where it cannot be computed)."""


def _active_units(sample: LatentSample) -> dict:
    return {"active_units": int(sample.active.sum()), "active_mask": sample.active.tolist(),
            "active_threshold": ACTIVE_THRESHOLD}


LATENT_STATISTICS: tuple[LatentStatistic, ...] = (
    LatentStatistic("information", lambda sample: _information(sample.mu, sample.logvar, sample.seed,
                                                                 sample.mi_samples)),
    LatentStatistic("active units", _active_units),
    LatentStatistic("geometry of mu", lambda sample: _geometry(sample.mu, "geometry.")),
    LatentStatistic("geometry of mu, active units", lambda sample: _geometry(sample.mu[:, sample.active],
                                                                              "geometry_active.")),
    LatentStatistic("variance profiles", lambda sample: _profiles(sample.mu, sample.logvar)),
)
"""Every statistic of an (N, d) posterior, in the order analysis.json lists them. A new latent metric is its
function (vaelens.metrics), an entry here, and its line in the quantity registry (vaelens.quantities) where the
report, the claims or results.csv should show it."""


def vector_latent_statistics(mu: torch.Tensor, logvar: torch.Tensor, *, seed: int = 0, mi_samples: int = 1) -> dict:
    """All statistics of an (N, d) posterior (LATENT_STATISTICS): information, active units, geometry of mu,
    profiles."""
    sample = LatentSample(mu, logvar, active_unit_mask(mu, ACTIVE_THRESHOLD), seed, mi_samples)
    results: dict = {}
    for statistic in LATENT_STATISTICS:
        results.update(statistic.compute(sample))
    return results


def latent_statistics(mu: torch.Tensor, logvar: torch.Tensor, *, seed: int = 0, mi_samples: int = 1,
                      channel_rows: int = CHANNEL_VIEW_MAX_ROWS) -> dict:
    """Flat dict of every latent statistic; spatial latents also get the `channel.` view."""
    if tuple(mu.shape) != tuple(logvar.shape):
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    if mu.ndim < 2 or mu.ndim == 3:
        raise ValueError(f"latents must be (N, d) or spatial (N, C, h, w), got shape {tuple(mu.shape)}")
    diffusion = {f"latent_stats.{key}": value
                 for key, value in latent_diffusion_statistics(mu, logvar, seed=seed).to_dict().items()}
    if mu.ndim == 2:
        return {"latent_view": "vector", **vector_latent_statistics(mu, logvar, seed=seed, mi_samples=mi_samples),
                **diffusion}
    element = vector_latent_statistics(*flatten_spatial_posterior(mu, logvar, "element"), seed=seed,
                                       mi_samples=mi_samples)
    channel_mu, channel_logvar = subsample_rows(*flatten_spatial_posterior(mu, logvar, "channel"),
                                                max_rows=channel_rows, seed=seed)
    channel = vector_latent_statistics(channel_mu, channel_logvar, seed=seed, mi_samples=mi_samples)
    return {"latent_view": "element", **element, "channel.num_rows": channel_mu.shape[0],
            **{f"channel.{key}": value for key, value in channel.items()}, **diffusion}
