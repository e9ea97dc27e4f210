"""Property tests: invariances of the latent metrics under rotations, scalings and unit permutations."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vaelens.metrics.geometry import (
    condition_number,
    covariance_spectrum,
    effective_rank,
    isoscore,
    participation_ratio,
    partition_isotropy,
)
from vaelens.metrics.information import (
    aggregate_posterior_decomposition,
    gaussian_mi_upper_bound,
    mutual_information,
    rate,
)
from vaelens.metrics.variance import mean_variance_profile, posterior_variance_profile

F64 = torch.float64
FEW = settings(max_examples=20, deadline=None)
SCALE_INVARIANT = (participation_ratio, isoscore, effective_rank, condition_number)


def random_cloud(seed: int, num_points: int, num_dims: int) -> torch.Tensor:
    """An anisotropic, offset cloud with distinct covariance eigenvalues."""
    generator = torch.Generator().manual_seed(seed)
    scales = torch.linspace(0.3, 2.0, num_dims, dtype=F64)
    return torch.randn(num_points, num_dims, generator=generator, dtype=F64) * scales + 0.5


def random_rotation(seed: int, num_dims: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed + 1)
    rotation, _ = torch.linalg.qr(torch.randn(num_dims, num_dims, generator=generator, dtype=F64))
    return rotation


def random_posterior(seed: int, num_points: int, num_units: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    mu = torch.randn(num_points, num_units, generator=generator, dtype=F64) * 1.5
    logvar = torch.rand(num_points, num_units, generator=generator, dtype=F64) * 4 - 3
    return mu, logvar


clouds = st.tuples(st.integers(0, 10**6), st.integers(12, 60), st.integers(2, 5))


@FEW
@given(clouds)
def test_isotropy_statistics_are_rotation_invariant(cloud):
    seed, num_points, num_dims = cloud
    points = random_cloud(seed, num_points, num_dims)
    rotated = points @ random_rotation(seed, num_dims).T
    assert covariance_spectrum(rotated) == pytest.approx(covariance_spectrum(points), rel=1e-8, abs=1e-12)
    for statistic in SCALE_INVARIANT:
        assert statistic(rotated) == pytest.approx(statistic(points), rel=1e-8), statistic.__name__
    for center in (False, True):
        assert partition_isotropy(rotated, center=center) == pytest.approx(partition_isotropy(points, center=center),
                                                                           rel=1e-8)


@FEW
@given(clouds, st.floats(1e-3, 1e3))
def test_global_scaling_scales_spectrum_by_square_and_leaves_isotropy(cloud, scale):
    seed, num_points, num_dims = cloud
    points = random_cloud(seed, num_points, num_dims)
    scaled = points * scale
    expected = [scale**2 * value for value in covariance_spectrum(points)]
    assert covariance_spectrum(scaled) == pytest.approx(expected, rel=1e-8)
    for statistic in SCALE_INVARIANT:
        assert statistic(scaled) == pytest.approx(statistic(points), rel=1e-8), statistic.__name__
    shifted = points + torch.randn(num_dims, generator=torch.Generator().manual_seed(seed), dtype=F64)
    assert isoscore(shifted) == pytest.approx(isoscore(points), rel=1e-8)


@FEW
@given(st.integers(0, 10**6), st.integers(5, 40), st.integers(2, 5), st.randoms(use_true_random=False))
def test_information_metrics_are_invariant_under_unit_permutation(seed, num_points, num_units, shuffler):
    mu, logvar = random_posterior(seed, num_points, num_units)
    order = list(range(num_units))
    shuffler.shuffle(order)
    noise = torch.randn(2, num_points, num_units, generator=torch.Generator().manual_seed(seed), dtype=F64)
    original = aggregate_posterior_decomposition(mu, logvar, num_samples=2, noise=noise).to_dict()
    permuted = aggregate_posterior_decomposition(mu[:, order], logvar[:, order], num_samples=2,
                                                 noise=noise[..., order]).to_dict()
    assert permuted == pytest.approx(original, rel=1e-9, abs=1e-12)
    fast = mutual_information(mu[:, order], logvar[:, order], num_samples=2, noise=noise[..., order])
    assert fast == pytest.approx(original["mutual_information"], rel=1e-8, abs=1e-10)
    total, per_unit = rate(mu, logvar)
    permuted_total, permuted_per_unit = rate(mu[:, order], logvar[:, order])
    assert permuted_total == pytest.approx(total, rel=1e-12)
    assert permuted_per_unit == pytest.approx([per_unit[unit] for unit in order], rel=1e-12)
    profile, reference = posterior_variance_profile(logvar[:, order]), posterior_variance_profile(logvar)
    assert profile.profile == pytest.approx(reference.profile, rel=1e-12)
    assert profile.normalized_entropy == pytest.approx(reference.normalized_entropy, rel=1e-12)


@FEW
@given(st.integers(0, 10**6), st.integers(2, 30), st.integers(1, 4), st.floats(-12, 2))
def test_decomposition_identities_and_log_n_ceiling_hold_for_any_posterior(seed, num_points, num_units, log_scale):
    mu, logvar = random_posterior(seed, num_points, num_units)
    result = aggregate_posterior_decomposition(mu, logvar + log_scale, seed=seed, chunk_size=7)
    assert result.mutual_information <= math.log(num_points) + 1e-12
    assert result.rate_monte_carlo == pytest.approx(result.mutual_information + result.marginal_kl, abs=1e-9)
    assert result.marginal_kl == pytest.approx(result.total_correlation + result.dimension_wise_kl, abs=1e-9)


@FEW
@given(st.integers(0, 10**6), st.integers(3, 30), st.integers(2, 4),
       st.lists(st.floats(1e-2, 1e2), min_size=4, max_size=4))
def test_rescaling_latent_units_leaves_information_and_uniformity_unchanged(seed, num_points, num_units, scales):
    """z_j -> c_j z_j is invertible, so I(x; z) and TC stay; the rate (against a fixed prior) does not."""
    mu, logvar = random_posterior(seed, num_points, num_units)
    scale = torch.tensor(scales[:num_units], dtype=F64)
    scaled_mu, scaled_logvar = mu * scale, logvar + 2 * scale.log()
    noise = torch.randn(1, num_points, num_units, generator=torch.Generator().manual_seed(seed), dtype=F64)
    original = aggregate_posterior_decomposition(mu, logvar, noise=noise)
    scaled = aggregate_posterior_decomposition(scaled_mu, scaled_logvar, noise=noise)
    assert scaled.mutual_information == pytest.approx(original.mutual_information, rel=1e-7, abs=1e-9)
    assert scaled.total_correlation == pytest.approx(original.total_correlation, rel=1e-7, abs=1e-9)
    assert gaussian_mi_upper_bound(scaled_mu, scaled_logvar) == pytest.approx(gaussian_mi_upper_bound(mu, logvar),
                                                                              rel=1e-7, abs=1e-9)
    # A common factor c on every unit scales both profiles by c^2 and leaves their uniformity alone.
    common = scales[0]
    for profile_of, original_input, scaled_input in (
        (posterior_variance_profile, logvar, logvar + 2 * math.log(common)),
        (mean_variance_profile, mu, mu * common),
    ):
        reference, result = profile_of(original_input), profile_of(scaled_input)
        assert result.profile == pytest.approx([common**2 * value for value in reference.profile], rel=1e-9)
        for statistic in ("normalized_entropy", "coefficient_of_variation", "participation_ratio"):
            assert getattr(result, statistic) == pytest.approx(getattr(reference, statistic), rel=1e-9, abs=1e-12)
