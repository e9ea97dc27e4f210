"""Spatial (N, C, h, w) latents: both flattenings, and the metrics running on them."""

from __future__ import annotations

import math

import pytest
import torch

from vaelens.metrics.geometry import covariance_spectrum
from vaelens.metrics.information import mutual_information, rate
from vaelens.metrics.spatial import flatten_spatial, flatten_spatial_posterior, subsample_rows
from vaelens.metrics.variance import posterior_variance_profile

F64 = torch.float64


def test_element_and_channel_layouts():
    latents = torch.arange(2 * 3 * 2 * 2, dtype=F64).reshape(2, 3, 2, 2)
    element = flatten_spatial(latents, "element")
    assert element.shape == (2, 12)
    assert element[1, 1 * 4 + 1 * 2 + 0] == latents[1, 1, 1, 0]
    channel = flatten_spatial(latents, "channel")
    assert channel.shape == (8, 3)
    assert channel[(1 * 2 + 1) * 2 + 0].tolist() == latents[1, :, 1, 0].tolist()


def test_channel_view_rate_is_per_position_rate_and_profile_is_per_channel():
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(40, 4, 3, 3, generator=generator, dtype=F64)
    logvar = torch.log(torch.tensor([0.1, 0.2, 0.4, 0.8], dtype=F64)).view(1, 4, 1, 1).expand(40, 4, 3, 3)
    element_rate, _ = rate(*flatten_spatial_posterior(mu, logvar, "element"))
    channel_rate, per_channel = rate(*flatten_spatial_posterior(mu, logvar, "channel"))
    assert channel_rate == pytest.approx(element_rate / 9, rel=1e-12)
    assert len(per_channel) == 4
    profile = posterior_variance_profile(flatten_spatial(logvar, "channel"))
    assert profile.profile == pytest.approx([0.8, 0.4, 0.2, 0.1])
    assert len(covariance_spectrum(flatten_spatial(mu, "channel"))) == 4


def test_channel_view_information_is_bounded_by_log_positions():
    generator = torch.Generator().manual_seed(1)
    mu = torch.randn(20, 2, 4, 4, generator=generator, dtype=F64) * 10
    logvar = torch.full_like(mu, math.log(1e-4))
    flat_mu, flat_logvar = flatten_spatial_posterior(mu, logvar, "channel")
    assert mutual_information(flat_mu, flat_logvar) <= math.log(20 * 16) + 1e-12
    small_mu, small_logvar = subsample_rows(flat_mu, flat_logvar, max_rows=50, seed=3)
    assert small_mu.shape == (50, 2)
    matches = (flat_mu[:, None, :] == small_mu[None]).all(-1).nonzero()[:, 0]
    assert torch.equal(flat_logvar[matches], small_logvar)


def test_subsample_rows_keeps_small_inputs_and_is_seeded():
    rows = torch.arange(10.0).unsqueeze(1)
    assert subsample_rows(rows, max_rows=20)[0] is rows
    assert torch.equal(subsample_rows(rows, max_rows=4, seed=1)[0], subsample_rows(rows, max_rows=4, seed=1)[0])


def test_bad_spatial_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="mode must be one of"):
        flatten_spatial(torch.zeros(2, 3, 4, 4), "pixel")
    with pytest.raises(ValueError, match=r"\(N, C, h, w\)"):
        flatten_spatial(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="same shape"):
        flatten_spatial_posterior(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match="same number of rows"):
        subsample_rows(torch.zeros(3, 2), torch.zeros(4, 2), max_rows=2)
    with pytest.raises(ValueError, match="max_rows"):
        subsample_rows(torch.zeros(3, 2), max_rows=0)
