"""The t interval and t test of paired differences, Holm's adjustment and the verdict rule, against hand arithmetic."""

import math
import random

import pytest
from scipy import stats

from vaelens.report.statistics import holm_adjust, t_interval, t_test, verdict


def test_t_interval_matches_scipy_and_needs_two_values():
    values = [1.0, 2.0, 4.0, 3.5]
    mean, low, high = t_interval(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=sum(values) / 4, scale=stats.sem(values))
    assert mean == pytest.approx(2.625)
    assert (low, high) == pytest.approx(expected)
    assert t_interval([1.5]) == (1.5, None, None)
    assert t_interval([]) == (None, None, None)
    with pytest.raises(ValueError, match="finite"):
        t_interval([1.0, math.nan])


def test_t_test_matches_closed_forms_of_the_t_distribution():
    # df = 2: the two-sided tail is exactly 1 - |t| / sqrt(2 + t^2). [1, 3, 5]: mean 3, sd 2, t = 3 * sqrt(3) / 2.
    t = 3 * math.sqrt(3) / 2
    assert t_test([1.0, 3.0, 5.0]) == pytest.approx(1 - t / math.sqrt(2 + t * t))
    assert t_test([-1.0, -3.0, -5.0]) == pytest.approx(1 - t / math.sqrt(2 + t * t))  # two-sided
    # df = 1 is the Cauchy distribution: [0, 2] has t = 1 / (sqrt(2) / sqrt(2)) = 1, p = 2 (1/2 - atan(1) / pi) = 1/2
    assert t_test([0.0, 2.0]) == pytest.approx(0.5)
    assert t_test([0.7]) is None
    assert t_test([0.25, 0.25, 0.25]) == 0.0 and t_test([0.0, 0.0]) == 1.0  # no spread: the limits of t


def test_raw_p_below_alpha_exactly_when_the_interval_excludes_zero():
    generator = random.Random(3)
    for _ in range(300):
        values = [generator.gauss(0.4, 1.0) for _ in range(generator.randint(2, 6))]
        _, low, high = t_interval(values)
        assert (t_test(values) < 0.05) == (low > 0 or high < 0), values


def test_holm_matches_a_hand_computed_example():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04, raised to 0.06: step-down
    # adjusted values never decrease along the sorted order)
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm_adjust([0.02]) == [0.02]  # one test: nothing to adjust
    assert holm_adjust([]) == []
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm_adjust([0.1, 1.2])


def test_holm_rejects_no_more_than_unadjusted_and_no_less_than_bonferroni():
    generator = random.Random(5)
    for _ in range(50):
        p_values = [generator.random() ** 3 for _ in range(generator.randint(1, 12))]
        adjusted = holm_adjust(p_values)
        for raw, holm in zip(p_values, adjusted):
            assert raw <= holm <= min(1.0, raw * len(p_values)) + 1e-12


def test_directional_verdicts_read_the_adjusted_p_and_the_sign():
    assert verdict(0.01, 0.3, +1) == "supported"
    assert verdict(0.01, -0.3, +1) == "contradicted"
    assert verdict(0.01, -0.3, -1) == "supported"
    assert verdict(0.01, 0.3, -1) == "contradicted"
    assert verdict(0.05, 0.3, +1) == "inconclusive"  # p must be below alpha
    assert verdict(None, 0.3, +1) == "inconclusive"
    with pytest.raises(ValueError, match="direction"):
        verdict(0.01, 0.3, 2)


def test_a_two_sided_claim_is_supported_on_either_side_and_never_contradicted():
    assert verdict(0.001, 0.3, 0) == "supported"
    assert verdict(0.001, -0.3, 0) == "supported"
    assert verdict(0.5, 0.01, 0) == "inconclusive"
