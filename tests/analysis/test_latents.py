import math

import pytest
import torch

from vaelens.analysis.latents import DECOMPOSITION_MAX_UNITS, latent_statistics


def _posterior(shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    mu = torch.randn(shape, generator=generator)
    logvar = -1.0 + 0.3 * torch.randn(shape, generator=generator)
    return mu, logvar


def test_vector_latents_give_consistent_information_terms():
    mu, logvar = _posterior((200, 5))
    results = latent_statistics(mu, logvar)
    assert results["latent_view"] == "vector" and "channel.rate" not in results
    assert results["rate"] == pytest.approx(sum(results["rate_per_unit"]))
    assert results["mutual_information"] <= math.log(200) + 1e-9
    assert results["rate_monte_carlo"] == pytest.approx(results["mutual_information"] + results["marginal_kl"])
    assert results["marginal_kl"] == pytest.approx(results["total_correlation"] + results["dimension_wise_kl"])
    bound = results["gaussian_mi_upper_bound"]
    assert results["mutual_information"] <= bound + 3 * results["mutual_information_stderr"]
    assert results["active_units"] == 5 and results["active_mask"] == [True] * 5
    profile = results["posterior_variance.profile"]
    assert profile == sorted(profile, reverse=True) and len(profile) == 5
    assert results["geometry.num_dimensions"] == results["geometry_active.num_dimensions"] == 5


def test_spatial_latents_have_element_and_channel_views():
    mu, logvar = _posterior((12, 3, 2, 2))
    results = latent_statistics(mu, logvar)
    assert results["latent_view"] == "element"
    assert len(results["rate_per_unit"]) == 12 and len(results["channel.rate_per_unit"]) == 3
    assert results["channel.num_rows"] == 12 * 2 * 2
    # The channel view's rate is the KL per position: the element view's divided by h * w.
    assert results["channel.rate"] == pytest.approx(results["rate"] / 4)
    assert results["channel.mutual_information"] <= math.log(48) + 1e-9
    assert results["channel.geometry.num_dimensions"] == 3


def test_many_units_skip_only_the_expensive_decomposition():
    mu, logvar = _posterior((20, DECOMPOSITION_MAX_UNITS + 1))
    results = latent_statistics(mu, logvar)
    assert "total_correlation" not in results and "units" in results["total_correlation_skipped"]
    assert results["mutual_information"] <= math.log(20) + 1e-9
    assert "marginal_kl" in results


def test_collapsed_units_are_reported_not_crashed():
    mu = torch.zeros(30, 3)
    results = latent_statistics(mu, torch.zeros(30, 3))
    assert results["active_units"] == 0
    assert results["geometry_active.skipped"] == "no units"
    assert "zero variance" in results["geometry.skipped"]
    assert "all zeros" in results["mean_variance.skipped"]


@pytest.mark.parametrize("mu_shape, logvar_shape, message", [
    ((10, 3), (10, 4), "same shape"),
    ((10, 3, 2), (10, 3, 2), "(N, C, h, w)"),
])
def test_bad_shapes_are_named(mu_shape, logvar_shape, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        latent_statistics(torch.zeros(mu_shape), torch.zeros(logvar_shape))
