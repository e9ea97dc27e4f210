"""Tests for vaelens.metrics.disentangle: exact values on factor grids, ideal vs random codes, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from vaelens.metrics.disentangle import (
    DisentanglementResult,
    dci,
    dci_from_importance,
    factorvae_score,
    histogram_discretize,
    mutual_information_gap,
    sap_score,
)

SIZES = (3, 4, 5)
SCALES = np.array([0.5, -2.0, 1.0])
FAST_GBT = {"n_estimators": 10}


def _grid(sizes=SIZES, repeats=5) -> np.ndarray:
    """Every factor combination `repeats` times: factors are exactly independent and uniform."""
    return np.tile(np.array(list(itertools.product(*[range(s) for s in sizes]))), (repeats, 1))


def _sample_factors(n, seed, sizes=SIZES):
    return np.random.default_rng(seed).integers(0, sizes, size=(n, len(sizes)))


def _affine_codes(factors, seed, noise=0.05):
    """A noisy affine copy of the factors plus one pure-noise code."""
    rng = np.random.default_rng(seed)
    copy = factors * SCALES[: factors.shape[1]] + 1.0 + noise * rng.standard_normal(factors.shape)
    return np.concatenate([copy, rng.standard_normal((len(factors), 1))], axis=1)


def _random_codes(n, seed, d=4):
    return np.random.default_rng(seed).standard_normal((n, d))


def _lookup_represent(affine: bool, sizes=SIZES, seed=7):
    """A deterministic `represent`: each factor combination has fixed codes, like a rendered data set."""
    table = np.random.default_rng(seed).standard_normal((int(np.prod(sizes)), len(sizes) + 1))

    def represent(factors: torch.Tensor) -> torch.Tensor:
        assert factors.dtype == torch.int64 and factors.shape[1] == len(sizes)
        rows = factors.numpy()
        noise = table[np.ravel_multi_index(rows.T, sizes)]
        if not affine:
            return torch.from_numpy(noise)
        codes = rows * SCALES + 0.05 * noise[:, :-1]
        return torch.from_numpy(np.concatenate([codes, noise[:, -1:]], axis=1))

    return represent


def test_histogram_discretize_equal_width_bins():
    codes = np.array([[0.0], [0.1], [0.5], [0.95], [1.0]])
    assert histogram_discretize(codes, num_bins=10)[:, 0].tolist() == [1, 2, 6, 10, 10]


def test_mig_exact_on_factor_grid():
    factors = _grid()
    result = mutual_information_gap(factors.astype(float), factors)
    assert math.isclose(result.score, 1.0, abs_tol=1e-12)
    np.testing.assert_allclose(result.details["factor_entropy"], np.log(SIZES))
    np.testing.assert_allclose(np.diag(result.details["mutual_information"]), np.log(SIZES))
    # A factor captured by two codes has zero gap; a factor captured by none has zero gap too.
    duplicated = np.stack([factors[:, 0], factors[:, 0], factors[:, 1]], axis=1).astype(float)
    assert math.isclose(mutual_information_gap(duplicated, factors).score, 1.0 / 3.0, abs_tol=1e-12)


def test_mig_affine_codes_near_one_random_codes_near_zero():
    factors = _sample_factors(2000, seed=0)
    assert mutual_information_gap(_affine_codes(factors, seed=1), factors).score > 0.95
    assert mutual_information_gap(_random_codes(2000, seed=1), factors).score < 0.03


def test_mig_accepts_torch_and_matches_numpy():
    factors = _sample_factors(300, seed=0)
    codes = _affine_codes(factors, seed=1)
    from_numpy = mutual_information_gap(codes, factors)
    from_torch = mutual_information_gap(torch.from_numpy(codes).float(), torch.from_numpy(factors))
    assert isinstance(from_torch, DisentanglementResult)
    assert math.isclose(float(from_numpy), float(from_torch), rel_tol=1e-6)
    assert from_numpy.scores == {"mig": from_numpy.score}


def test_factorvae_exact_codes_score_one():
    def exact(factors):
        return factors.double()

    result = factorvae_score(exact, SIZES, num_train=50, num_eval=30, num_variance_estimate=500)
    assert result.score == 1.0 and result.scores["factorvae_train_accuracy"] == 1.0
    assert result.details["votes_train"].sum() == 50 and result.details["votes_eval"].sum() == 30


def test_factorvae_affine_near_one_random_near_chance():
    kwargs = {"num_train": 200, "num_eval": 150, "num_variance_estimate": 1000}
    good = factorvae_score(_lookup_represent(affine=True), SIZES, **kwargs)
    assert good.score > 0.95 and good.scores["factorvae_num_active_dims"] == 4
    # Fresh noise for every image: the codes carry nothing about the factors (a lookup table
    # would not do here: it is a random but injective function of the factors).
    generator = torch.Generator().manual_seed(0)
    random = factorvae_score(
        lambda factors: torch.randn(len(factors), 4, generator=generator, dtype=torch.float64), SIZES, **kwargs
    )
    assert random.score < 0.45  # chance is 1/3 for three factors


def test_factorvae_seeded_and_independent_of_chunking():
    represent = _lookup_represent(affine=False)
    kwargs = {"num_train": 60, "num_eval": 40, "num_variance_estimate": 300}
    first = factorvae_score(represent, SIZES, seed=3, **kwargs)
    again = factorvae_score(represent, SIZES, seed=3, images_per_call=100, **kwargs)
    other = factorvae_score(represent, SIZES, seed=4, **kwargs)
    assert first.scores == again.scores
    np.testing.assert_array_equal(first.details["votes_train"], again.details["votes_train"])
    assert not np.array_equal(first.details["votes_train"], other.details["votes_train"])


def test_factorvae_all_dims_pruned_scores_zero():
    result = factorvae_score(lambda f: 0.001 * f.double(), SIZES, num_train=10, num_eval=10, num_variance_estimate=200)
    assert result.score == 0.0 and result.scores["factorvae_num_active_dims"] == 0


@pytest.mark.parametrize(
    "sizes, represent, message",
    [
        ((3, 1), lambda f: f.double(), "at least 2 values"),
        ((2.5, 3), lambda f: f.double(), "integers"),
        (SIZES, lambda f: f.double()[:, :1].repeat(2, 1), "represent must map"),
        (SIZES, lambda f: torch.full((len(f), 2), float("nan")), "NaN"),
    ],
)
def test_factorvae_bad_inputs(sizes, represent, message):
    with pytest.raises(ValueError, match=message):
        factorvae_score(represent, sizes, num_train=5, num_eval=5, num_variance_estimate=100)


def test_dci_from_importance_closed_forms():
    assert dci_from_importance(np.eye(3)) == pytest.approx((1.0, 1.0), abs=1e-9)
    assert dci_from_importance(np.ones((3, 3))) == pytest.approx((0.0, 0.0), abs=1e-9)
    # Both codes serve factor 0 only: each code is pure (D = 1), factor 0 is split over two codes (C = 0).
    assert dci_from_importance(np.array([[1.0, 0.0], [1.0, 0.0]])) == pytest.approx((1.0, 0.0), abs=1e-9)
    with pytest.raises(ValueError, match="non-negative"):
        dci_from_importance(-np.eye(2))


def test_dci_affine_near_one_random_low():
    train, test = _sample_factors(400, seed=0), _sample_factors(300, seed=1)
    good = dci(_affine_codes(train, 2), train, _affine_codes(test, 3), test, gbt_params=FAST_GBT)
    assert good.scores["dci_disentanglement"] > 0.9 and good.scores["dci_completeness"] > 0.9
    assert good.scores["dci_informativeness_test"] > 0.95
    random = dci(_random_codes(400, 2), train, _random_codes(300, 3), test, gbt_params=FAST_GBT)
    assert random.scores["dci_disentanglement"] < 0.3 and random.scores["dci_completeness"] < 0.3
    chance = np.mean(1.0 / np.array(SIZES))
    assert random.scores["dci_informativeness_test"] < chance + 0.1


def test_dci_default_trees_seeded_and_subsampled():
    train, test = _sample_factors(200, seed=0, sizes=(2, 2)), _sample_factors(100, seed=1, sizes=(2, 2))
    codes_train, codes_test = _random_codes(200, 2, d=3), _random_codes(100, 3, d=3)
    first = dci(codes_train, train, codes_test, test, seed=5)
    assert first.scores == dci(codes_train, train, codes_test, test, seed=5).scores
    assert first.details["importance_matrix"].shape == (3, 2)
    fast = dci(codes_train, train, codes_test, test, max_train_samples=50, gbt_params=FAST_GBT)
    assert 0.0 <= fast.score <= 1.0


def test_sap_continuous_exact_on_grid():
    factors = _grid(sizes=(3, 4))
    result = sap_score(factors.astype(float), factors, factors.astype(float), factors, continuous=True)
    assert math.isclose(result.score, 1.0, abs_tol=1e-12)
    np.testing.assert_allclose(result.details["score_matrix"], np.eye(2), atol=1e-12)


def test_sap_discrete_binary_factors_reach_one_minus_chance():
    train, test = _sample_factors(400, seed=0, sizes=(2, 2, 2)), _sample_factors(400, seed=1, sizes=(2, 2, 2))
    good = sap_score(_affine_codes(train, 2), train, _affine_codes(test, 3), test)
    assert np.all(np.diag(good.details["score_matrix"]) > 0.97)
    assert 0.38 < good.score < 0.6  # best code ~1.0, next best ~chance 0.5
    random = sap_score(_random_codes(400, 2), train, _random_codes(400, 3), test)
    assert random.score < 0.1
    assert sap_score(_random_codes(400, 2), train, _random_codes(400, 3), test).scores == random.scores


@pytest.mark.parametrize(
    "codes, factors, message",
    [
        (np.zeros((100, 3)), np.zeros((90, 2), dtype=int), "same number of rows"),
        (np.zeros((100, 3)), np.full((100, 2), 0.5), "integer class indices"),
        (np.full((100, 3), np.nan), np.zeros((100, 2), dtype=int), "NaN"),
        (np.zeros((100, 3)), np.zeros((100, 2), dtype=int), "single value"),
        (np.zeros((100, 1)), _sample_factors(100, 0), "at least 2 columns"),
        (np.zeros(100), _sample_factors(100, 0), "2-D"),
    ],
)
def test_bad_inputs_raise_clear_errors(codes, factors, message):
    for metric in (
        lambda: mutual_information_gap(codes, factors),
        lambda: sap_score(codes, factors, codes, factors),
        lambda: dci(codes, factors, codes, factors, gbt_params=FAST_GBT),
    ):
        with pytest.raises(ValueError, match=message):
            metric()


def test_train_test_column_mismatch():
    factors = _sample_factors(50, 0)
    with pytest.raises(ValueError, match="same numbers of code and factor columns"):
        sap_score(_random_codes(50, 0, d=3), factors, _random_codes(50, 1, d=4), factors)
