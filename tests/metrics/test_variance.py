"""Posterior-variance and mean-variance profiles on constructed encoders."""

from __future__ import annotations

import json
import math

import pytest
import torch

from vaelens.metrics.variance import mean_variance_profile, posterior_variance_profile, profile_uniformity

F64 = torch.float64


def test_uniform_posterior_variance_is_perfectly_uniform():
    profile = posterior_variance_profile(torch.full((10, 4), math.log(0.3), dtype=F64))
    assert profile.profile == pytest.approx([0.3] * 4)
    assert profile.log_profile == pytest.approx([math.log(0.3)] * 4)
    assert profile.normalized_entropy == pytest.approx(1.0)
    assert profile.coefficient_of_variation == pytest.approx(0.0, abs=1e-12)
    assert profile.max_min_ratio == pytest.approx(1.0)
    assert profile.participation_ratio == pytest.approx(4.0)


def test_profile_of_constructed_posterior_is_sorted_with_known_statistics():
    # Unit variances alternate between two values across rows: s = mean of exp(logvar) per column.
    logvar = torch.log(torch.tensor([[1.0, 0.1, 0.5], [1.0, 0.3, 0.1]], dtype=F64))
    profile = posterior_variance_profile(logvar)
    values = [1.0, 0.3, 0.2]
    assert profile.profile == pytest.approx(values)
    expected_logs = sorted([0.0, 0.5 * (math.log(0.1) + math.log(0.3)), 0.5 * (math.log(0.5) + math.log(0.1))],
                           reverse=True)
    assert profile.log_profile == pytest.approx(expected_logs)
    total = sum(values)
    weights = [value / total for value in values]
    assert profile.normalized_entropy == pytest.approx(-sum(w * math.log(w) for w in weights) / math.log(3))
    mean = total / 3
    std = math.sqrt(sum((value - mean) ** 2 for value in values) / 3)
    assert profile.coefficient_of_variation == pytest.approx(std / mean)
    assert profile.max_min_ratio == pytest.approx(5.0)
    assert profile.participation_ratio == pytest.approx(total**2 / sum(v * v for v in values))


def test_concentrated_profile_is_far_from_uniform():
    statistics = profile_uniformity([1.0, 1e-6, 1e-6, 1e-6])
    assert statistics["normalized_entropy"] < 0.01
    assert statistics["participation_ratio"] == pytest.approx(1.0, abs=1e-5)
    assert statistics["coefficient_of_variation"] == pytest.approx(math.sqrt(3), rel=1e-4)


def test_mean_variance_profile_and_linear_theory_complement():
    generator = torch.Generator().manual_seed(0)
    posterior_variances = torch.tensor([0.1, 0.4, 0.8], dtype=F64)
    mu = torch.randn(50000, 3, generator=generator, dtype=F64) * (1 - posterior_variances).sqrt()
    profile = mean_variance_profile(mu)
    assert profile.profile == pytest.approx([0.9, 0.6, 0.2], rel=0.03)
    assert profile.log_profile is None
    collapsed = mean_variance_profile(torch.cat([mu[:, :2], torch.zeros(50000, 1, dtype=F64)], dim=1))
    assert collapsed.max_min_ratio == math.inf
    assert collapsed.to_dict()["max_min_ratio"] is None


def test_to_dict_is_flat_and_json_ready():
    dictionary = posterior_variance_profile(torch.zeros(3, 2)).to_dict()
    assert set(dictionary) == {"profile", "log_profile", "normalized_entropy", "coefficient_of_variation",
                               "max_min_ratio", "participation_ratio"}
    json.dumps(dictionary, allow_nan=False)
    assert "log_profile" not in mean_variance_profile(torch.randn(5, 2)).to_dict()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="logvar has 1 NaN/Inf"):
        posterior_variance_profile(torch.tensor([[0.0, float("inf")]]))
    with pytest.raises(ValueError, match="at least 2 columns"):
        posterior_variance_profile(torch.zeros(5, 1))
    with pytest.raises(ValueError, match="2-D"):
        mean_variance_profile(torch.zeros(5))
    with pytest.raises(ValueError, match="at least 2 rows"):
        mean_variance_profile(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="all zeros"):
        mean_variance_profile(torch.ones(4, 3))
    with pytest.raises(ValueError, match="non-negative"):
        profile_uniformity([1.0, -0.5])
