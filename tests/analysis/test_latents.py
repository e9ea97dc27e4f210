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


def _gaussian_posterior(num_points, units, logvar_value, seed=0):
    """mu ~ N(0, I), sigma^2 = exp(logvar_value): I(x; z) = units / 2 * log(1 + exp(-logvar_value)) in closed form."""
    mu = torch.randn(num_points, units, generator=torch.Generator().manual_seed(seed))
    return mu, torch.full_like(mu, logvar_value), units / 2 * math.log1p(math.exp(-logvar_value))


def test_an_estimate_below_log_n_is_not_flagged():
    mu, logvar, true_information = _gaussian_posterior(400, 2, 0.0)
    results = latent_statistics(mu, logvar)
    assert true_information == pytest.approx(math.log(2))
    assert results["mutual_information"] == pytest.approx(true_information, abs=0.15)
    assert results["mutual_information_ceiling"] == pytest.approx(math.log(400))
    assert results["mutual_information_saturated"] is False


@pytest.mark.parametrize("units", [4, DECOMPOSITION_MAX_UNITS + 1])
def test_information_beyond_log_n_is_flagged_as_saturated(units):
    mu, logvar, true_information = _gaussian_posterior(200, units, -10.0)
    results = latent_statistics(mu, logvar)
    assert true_information > 19 > math.log(200)
    # The estimator cannot exceed log N: what it returns is log N, a floor on the true 19+ nats.
    assert results["mutual_information"] == pytest.approx(math.log(200), abs=0.01)
    assert results["mutual_information_saturated"] is True


def test_the_channel_view_is_flagged_against_its_own_ceiling():
    mu, logvar, _ = _gaussian_posterior(12 * 4, 3, -10.0)
    spatial = (mu.reshape(12, 2, 2, 3).movedim(-1, 1), logvar.reshape(12, 2, 2, 3).movedim(-1, 1))
    results = latent_statistics(*spatial)
    assert results["channel.mutual_information_ceiling"] == pytest.approx(math.log(48))
    assert results["channel.mutual_information_saturated"] is True
    assert results["mutual_information_ceiling"] == pytest.approx(math.log(12))


def test_both_views_carry_the_latent_diffusion_statistics():
    spatial = latent_statistics(*_posterior((12, 3, 2, 2)), seed=4)
    vector = latent_statistics(*_posterior((30, 5)))
    assert len(spatial["latent_stats.channel_std"]) == 3 and len(vector["latent_stats.channel_std"]) == 5
    assert spatial["latent_stats.seed"] == 4 and spatial["latent_stats.num_images"] == 12
    assert spatial["latent_stats.scaling_factor"] == 1 / spatial["latent_stats.sample_std"]
