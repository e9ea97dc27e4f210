"""Geometry statistics on clouds with known covariance spectra."""

from __future__ import annotations

import math

import pytest
import torch

from vaelens.metrics.geometry import (
    condition_number,
    covariance_spectrum,
    effective_rank,
    geometry_summary,
    isoscore,
    participation_ratio,
    partition_isotropy,
    sample_bounds,
)

F64 = torch.float64


def cloud_with_spectrum(eigenvalues: list[float], num_points: int = 200, seed: int = 0) -> torch.Tensor:
    """Points whose sample covariance has exactly these eigenvalues, in a random orientation."""
    generator = torch.Generator().manual_seed(seed)
    raw = torch.randn(num_points, len(eigenvalues), generator=generator, dtype=F64)
    orthonormal, _ = torch.linalg.qr(raw - raw.mean(dim=0))
    rotation, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=generator, dtype=F64))
    scales = torch.tensor(eigenvalues, dtype=F64).mul(num_points - 1).sqrt()
    return (orthonormal * scales) @ rotation.T + 5.0


def test_covariance_spectrum_recovers_constructed_eigenvalues():
    spectrum = covariance_spectrum(cloud_with_spectrum([0.5, 4.0, 1.0, 2.0]))
    assert spectrum == pytest.approx([4.0, 2.0, 1.0, 0.5], rel=1e-10)


def test_statistics_of_known_spectra():
    eigenvalues = [4.0, 2.0, 1.0, 1.0]
    points = cloud_with_spectrum(eigenvalues)
    expected_pr = sum(eigenvalues) ** 2 / sum(value**2 for value in eigenvalues)
    assert participation_ratio(points) == pytest.approx(expected_pr, rel=1e-10)
    assert isoscore(points) == pytest.approx((expected_pr - 1) / 3, rel=1e-10)
    weights = [value / 8 for value in eigenvalues]
    assert effective_rank(points) == pytest.approx(math.exp(-sum(w * math.log(w) for w in weights)), rel=1e-10)
    assert condition_number(points) == pytest.approx(4.0, rel=1e-10)


@pytest.mark.parametrize("equal", [1, 2, 5])
def test_k_equal_eigenvalues_give_effective_rank_and_pr_k(equal):
    points = cloud_with_spectrum([3.0] * equal + [0.0] * (6 - equal))
    assert effective_rank(points) == pytest.approx(equal, rel=1e-6)
    assert participation_ratio(points) == pytest.approx(equal, rel=1e-10)
    assert isoscore(points) == pytest.approx((equal - 1) / 5, abs=1e-10)
    assert condition_number(points) == (1.0 if equal == 6 else math.inf)


def test_isotropic_gaussian_cloud_scores_near_one():
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(20000, 4, generator=generator, dtype=F64)
    assert isoscore(points) == pytest.approx(1.0, abs=0.01)
    assert effective_rank(points) == pytest.approx(4.0, abs=0.02)
    assert condition_number(points) < 1.15
    assert partition_isotropy(points) == pytest.approx(1.0, abs=0.05)


def test_anisotropic_and_offset_clouds_score_lower():
    generator = torch.Generator().manual_seed(1)
    points = torch.randn(20000, 4, generator=generator, dtype=F64)
    stretched = points * torch.tensor([3.0, 1.0, 1.0, 0.2], dtype=F64)
    assert isoscore(stretched) < 0.5
    assert partition_isotropy(stretched) < 0.1
    offset = points + torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=F64)
    assert partition_isotropy(offset) < 0.5
    assert partition_isotropy(offset, center=True) == pytest.approx(1.0, abs=0.05)


def test_partition_isotropy_matches_direct_definition():
    generator = torch.Generator().manual_seed(2)
    points = torch.randn(50, 3, generator=generator, dtype=F64) * torch.tensor([1.0, 0.5, 0.3], dtype=F64)
    _, eigenvectors = torch.linalg.eigh(points.T @ points)
    partitions = [float(torch.exp(points @ (sign * eigenvectors[:, i])).sum()) for i in range(3) for sign in (1, -1)]
    assert partition_isotropy(points) == pytest.approx(min(partitions) / max(partitions), rel=1e-10)


def test_geometry_summary_agrees_with_individual_functions():
    points = cloud_with_spectrum([2.0, 1.0, 0.5])
    summary = geometry_summary(points)
    assert summary["covariance_spectrum"] == pytest.approx(covariance_spectrum(points))
    for name, function in [("participation_ratio", participation_ratio), ("isoscore", isoscore),
                           ("effective_rank", effective_rank), ("condition_number", condition_number),
                           ("partition_isotropy", partition_isotropy)]:
        assert summary[name] == pytest.approx(function(points)), name
    assert geometry_summary(cloud_with_spectrum([1.0, 0.0]))["condition_number"] is None
    assert geometry_summary(cloud_with_spectrum([1.0]))["isoscore"] is None


def test_bad_points_raise_clear_errors():
    with pytest.raises(ValueError, match="NaN/Inf"):
        participation_ratio(torch.tensor([[0.0, float("nan")], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        covariance_spectrum(torch.zeros(10))
    with pytest.raises(ValueError, match="at least 2 rows"):
        effective_rank(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="at least 2 columns"):
        isoscore(torch.randn(10, 1))
    with pytest.raises(ValueError, match="zero variance"):
        condition_number(torch.ones(10, 3))


def test_a_simplex_of_n_points_in_more_dimensions_reaches_the_sample_bound_exactly():
    # N basis vectors of R^d (d >= N) centred: N - 1 equal non-zero eigenvalues, the most isotropic
    # cloud N points can make, so PR and IsoScore equal their bounds N - 1 and (N - 2) / (d - 1).
    num_points, dimensions = 5, 8
    summary = geometry_summary(torch.eye(dimensions, dtype=F64)[:num_points])
    assert summary["bounded_by_sample"] is True
    assert summary["participation_ratio"] == pytest.approx(summary["participation_ratio_bound"]) == 4
    assert summary["isoscore"] == pytest.approx(summary["isoscore_bound"]) == pytest.approx(3 / 7)


def test_an_isotropic_gaussian_sample_with_fewer_points_than_dimensions_is_capped_by_the_sample():
    generator = torch.Generator().manual_seed(0)
    few = geometry_summary(torch.randn(10, 400, generator=generator, dtype=F64))
    # The population is perfectly isotropic (IsoScore 1), the sample cannot show it: its IsoScore is
    # near (N - 2) / (d - 1) = 0.02, and never above it.
    assert few["bounded_by_sample"] is True and few["isoscore_bound"] == pytest.approx(8 / 399)
    assert 0.9 * few["isoscore_bound"] < few["isoscore"] <= few["isoscore_bound"] + 1e-12
    assert 0.9 * 9 < few["participation_ratio"] <= few["participation_ratio_bound"] + 1e-9
    many = geometry_summary(torch.randn(2000, 10, generator=generator, dtype=F64))
    assert many["bounded_by_sample"] is False and "isoscore_bound" not in many
    assert many["isoscore"] > 0.95


def test_sample_bounds_apply_from_n_equal_to_d_down():
    assert sample_bounds(11, 10) == {"bounded_by_sample": False}
    assert sample_bounds(10, 10) == {"bounded_by_sample": True, "participation_ratio_bound": 9.0,
                                     "isoscore_bound": 8 / 9}
    assert sample_bounds(2, 6)["isoscore_bound"] == 0.0
