"""The t interval and t test of paired differences, Holm's adjustment and the verdict rule, against hand arithmetic."""

import math
import random

import pytest
from scipy import stats

from vaelens.report.statistics import (
    bh_adjust,
    equivalence_test,
    holm_adjust,
    sign_flip_test,
    step_down_adjust,
    t_interval,
    t_test,
    verdict,
)


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
    # no spread: no estimate of the noise, so no p-value (rounding noise included: [0.1] * 3 has sd ~1e-17)
    assert t_test([0.25, 0.25, 0.25]) is None and t_test([0.0, 0.0]) is None and t_test([0.1] * 3) is None


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


def test_an_equivalence_decided_reads_no_effect_before_a_difference():
    assert verdict(0.5, 0.01, +1, p_equivalence_adjusted=0.01) == "no effect"
    assert verdict(0.001, 0.01, 0, p_equivalence_adjusted=0.01) == "no effect"  # detected, but below the bound
    assert verdict(0.5, 0.01, +1, p_equivalence_adjusted=0.2) == "inconclusive"


def test_tost_is_the_larger_one_sided_p_and_matches_the_shifted_t_tests():
    values = [0.01, -0.02, 0.0, 0.015, 0.005]
    lower = stats.ttest_1samp([v + 0.05 for v in values], 0, alternative="greater").pvalue
    upper = stats.ttest_1samp([v - 0.05 for v in values], 0, alternative="less").pvalue
    assert equivalence_test(values, 0.05) == pytest.approx(max(lower, upper))
    # below alpha exactly when the 90% t interval lies inside (-bound, bound)
    _, low, high = t_interval(values, confidence=0.90)
    for bound in (0.01, 0.02, 0.03, 0.05):
        assert (equivalence_test(values, bound) < 0.05) == (-bound < low and high < bound)
    with pytest.raises(ValueError, match="positive"):
        equivalence_test(values, 0.0)


def test_sign_flip_p_is_exact_and_floors_at_two_over_two_to_the_n():
    assert sign_flip_test([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(2 / 32)
    assert sign_flip_test([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]) == pytest.approx(2 / 256)
    # [1, -1, 2]: |mean| 2/3; patterns with |sum| >= 2: (+,-,+), (-,+,-), (+,+,+), (-,-,-), (-,-,+), (+,+,-)
    assert sign_flip_test([1.0, -1.0, 2.0]) == pytest.approx(6 / 8)
    assert sign_flip_test([0.3]) is None and sign_flip_test([0.2, 0.2, 0.2]) is None
    # beyond the exact range: 2^16 seeded patterns, close to the exact tail
    values = [float(v) for v in random.Random(1).sample(range(-5, 30), 18)]
    assert 0 < sign_flip_test(values) < 0.01


def test_grouped_step_down_counts_endpoints_and_bh_matches_a_hand_example():
    # two endpoints, each a difference and an equivalence test; at most one null per endpoint can hold
    assert step_down_adjust([0.01, 0.02, 0.03, 0.04], [0, 0, 1, 1]) == pytest.approx([0.02, 0.04, 0.04, 0.04])
    assert step_down_adjust([0.01, 0.04, 0.03, 0.005]) == holm_adjust([0.01, 0.04, 0.03, 0.005])
    with pytest.raises(ValueError, match="group labels"):
        step_down_adjust([0.1, 0.2], [0])
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4p/rank: 0.02, 0.02, 0.04, 0.04 (each the min over later ranks)
    assert bh_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert bh_adjust([]) == []


def test_the_grouped_step_down_keeps_the_family_wise_error_with_one_true_null_per_endpoint():
    # four endpoints at effect 0 with a bound: the difference nulls are true, the equivalence nulls false
    rng = random.Random(2)
    errors = 0
    for _ in range(2000):
        p_values, groups = [], []
        for endpoint in range(4):
            values = [rng.gauss(0.0, 1.0) for _ in range(6)]
            p_values += [t_test(values), equivalence_test(values, 2.0)]
            groups += [endpoint, endpoint]
        adjusted = step_down_adjust(p_values, groups)
        errors += any(adjusted[i] < 0.05 for i in range(0, 8, 2))
    assert errors / 2000 <= 0.05 + 2 * (0.05 * 0.95 / 2000) ** 0.5, errors
