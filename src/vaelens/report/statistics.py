"""The statistics behind every verdict: a paired effect's Student t interval and p-value over seeds, its exact
sign-flip p-value, the two one-sided tests of equivalence within a declared bound (TOST), Holm's step-down
adjustment (with the logical restriction that a difference and an equivalence hypothesis of one endpoint cannot
both be true) and Benjamini-Hochberg's, and the outcome drawn from the adjusted p-values.

p-values are two-sided for every claim, directional ones included. A directional claim has two
decisive outcomes (supported, contradicted), one per side of 0; the two-sided p at level alpha is the
pair of one-sided tests at alpha / 2 each, so one test decides both sides, and before adjustment
"p < 0.05" is exactly "the two-sided 95% t interval excludes 0".
"""

from __future__ import annotations

import math
import statistics

import numpy as np
from scipy import stats

from vaelens.claims_design import ALPHA

CONFIDENCE = 1 - ALPHA
"""Level of the raw (unadjusted) t intervals."""
VERDICTS = ("supported", "contradicted", "no effect", "inconclusive")
"""Outcomes of a row of the primary or secondary family; exploratory rows carry EXPLORATORY instead."""
EXPLORATORY = "exploratory"
"""The `verdict` of an exploratory row: raw numbers only, no decision."""
NO_SPREAD_TOLERANCE = 1e-9
"""Differences whose standard deviation is below this fraction of their largest magnitude have no spread (equal up to
rounding): the noise is not estimated, so neither is a p-value."""
SIGN_FLIP_EXACT_UP_TO = 16
"""Seed counts up to which the sign-flip p enumerates all 2^n sign patterns; beyond, 2^16 seeded random patterns."""


def _finite(values) -> list[float]:
    values = [float(value) for value in values]
    if any(not math.isfinite(value) for value in values):
        raise ValueError(f"paired differences must be finite, got {values}")
    return values


def _mean_and_standard_error(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    deviation = math.sqrt(sum((value - mean) ** 2 for value in values) / (len(values) - 1))
    return mean, deviation / math.sqrt(len(values))


def t_interval(values, confidence: float = CONFIDENCE) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high) of the Student t interval of the mean; low/high None with fewer than 2 values."""
    values = _finite(values)
    if not values:
        return None, None, None
    if len(values) < 2:
        return values[0], None, None
    mean, standard_error = _mean_and_standard_error(values)
    half_width = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * standard_error
    return mean, mean - half_width, mean + half_width


def has_spread(values) -> bool:
    """Whether paired differences vary beyond rounding (NO_SPREAD_TOLERANCE): without spread there is no estimate
    of the seed-to-seed noise, and a t statistic would be infinite (or rounding noise: [0.1] * 3 gives 1e-32)."""
    values = _finite(values)
    if len(values) < 2:
        return False
    _, standard_error = _mean_and_standard_error(values)
    scale = max(abs(value) for value in values)
    return standard_error * math.sqrt(len(values)) > NO_SPREAD_TOLERANCE * scale


def t_test(values) -> float | None:
    """Two-sided p-value of the one-sample t test of mean 0 (df = n - 1); None with fewer than 2 values or
    without spread (`has_spread`): no noise estimate, no p-value."""
    values = _finite(values)
    if not has_spread(values):
        return None
    mean, standard_error = _mean_and_standard_error(values)
    return float(2 * stats.t.sf(abs(mean / standard_error), len(values) - 1))


def equivalence_test(values, bound: float) -> float | None:
    """p-value of the two one-sided t tests (TOST) of |mean| >= `bound` against |mean| < bound: the larger of
    the p of H0 mean <= -bound and of H0 mean >= +bound (df = n - 1). Below alpha, the (1 - 2 alpha) interval lies
    inside (-bound, bound): a difference too small to matter. None without spread or with fewer than 2 values."""
    if not bound > 0:
        raise ValueError(f"an equivalence bound is a positive number, got {bound}")
    values = _finite(values)
    if not has_spread(values):
        return None
    mean, standard_error = _mean_and_standard_error(values)
    degrees = len(values) - 1
    above_lower = float(stats.t.sf((mean + bound) / standard_error, degrees))
    below_upper = float(stats.t.cdf((mean - bound) / standard_error, degrees))
    return max(above_lower, below_upper)


def _sign_patterns(count: int):
    if count <= SIGN_FLIP_EXACT_UP_TO:
        codes = np.arange(2 ** count)[:, None] >> np.arange(count)[None, :]
        return 1 - 2 * (codes & 1)
    return np.random.default_rng(0).choice((-1, 1), size=(2 ** SIGN_FLIP_EXACT_UP_TO, count))


def sign_flip_test(values) -> float | None:
    """Two-sided sign-flip (permutation) p-value of mean 0: the share of the 2^n sign patterns of the differences
    whose mean is at least as far from 0 as the observed one. Exact under symmetry of the null differences, with no
    normality assumed; its smallest value is 2 / 2^n (0.0625 with 5 seeds, 0.0078 with 8). None with fewer than 2
    values or without spread."""
    values = _finite(values)
    if not has_spread(values):
        return None
    array = np.asarray(values)
    means = np.abs(_sign_patterns(len(values)) @ array) / len(values)
    observed = abs(array.mean())
    return float(np.mean(means >= observed * (1 - 1e-12)))


def step_down_adjust(p_values: list[float], groups: list | None = None) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given, where hypotheses sharing a `groups` label cannot be
    true together (a difference and an equivalence null of one endpoint: at most one holds), so the multiplier at each
    step counts the groups still holding an unrejected hypothesis (Shaffer's restriction) instead of the hypotheses.
    Without groups every hypothesis is its own group: plain Holm."""
    for value in p_values:
        if not 0 <= value <= 1:
            raise ValueError(f"p-values lie in [0, 1], got {value}")
    groups = list(range(len(p_values))) if groups is None else list(groups)
    if len(groups) != len(p_values):
        raise ValueError(f"{len(groups)} group labels for {len(p_values)} p-values")
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        multiplier = len({groups[later] for later in order[rank:]})
        running = max(running, min(1.0, multiplier * p_values[index]))
        adjusted[index] = running
    return adjusted


def bh_adjust(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order given: with m p-values sorted ascending, the
    i-th is min over j >= i of min(1, m p_(j) / j). Deciding at q < alpha keeps the expected share of false decisions
    among all decisions at most alpha (independent or positively dependent tests)."""
    for value in p_values:
        if not 0 <= value <= 1:
            raise ValueError(f"p-values lie in [0, 1], got {value}")
    count = len(p_values)
    order = sorted(range(count), key=lambda i: p_values[i])
    adjusted = [0.0] * count
    running = 1.0
    for rank in range(count - 1, -1, -1):
        index = order[rank]
        running = min(running, count * p_values[index] / (rank + 1))
        adjusted[index] = min(1.0, running)
    return adjusted


def holm_adjust(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    With the m p-values sorted ascending, p_(1) <= ... <= p_(m), the adjusted value of the i-th is
    max over j <= i of min(1, (m - j + 1) p_(j)); rejecting where it is below alpha controls the
    family-wise error rate at alpha under any dependence between the tests."""
    return step_down_adjust(p_values)


def verdict(p_adjusted: float | None, effect: float | None, direction: int, alpha: float = ALPHA,
            p_equivalence_adjusted: float | None = None) -> str:
    """The outcome of a row from its adjusted difference p-value, the sign of its effect and, where a bound is
    declared, its adjusted equivalence (TOST) p-value.

    An equivalence decided (p_equivalence_adjusted < alpha): `no effect`, the effect lies within the declared bound
    (even where a difference from 0 is decided too: the bound says what size matters). Otherwise a difference decided
    (p_adjusted < alpha): direction -1 or +1, the claim predicts that sign, `supported` on that side and
    `contradicted` on the other; direction 0 (a non-zero effect of either sign) `supported` either way. Otherwise, or
    without p-values, `inconclusive`: a wide interval around 0 is absence of evidence, which only an equivalence test
    against a declared bound can turn into evidence of absence."""
    if direction not in (-1, 0, 1):
        raise ValueError(f"direction must be -1, 0 or +1, got {direction}")
    if p_equivalence_adjusted is not None and p_equivalence_adjusted < alpha:
        return "no effect"
    if p_adjusted is not None and effect is not None and p_adjusted < alpha and effect != 0:
        if direction == 0 or (effect > 0) == (direction > 0):
            return "supported"
        return "contradicted"
    return "inconclusive"


def mean_and_sd(values) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof = 1, the spread a t interval uses) of `values`; the deviation is
    None for a single value. Every table and figure of the report that shows a spread over runs uses this."""
    values = [float(value) for value in values]
    if not values:
        raise ValueError("mean_and_sd needs at least one value")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)
