"""The statistics behind every verdict: a paired effect's Student t interval and p-value over seeds,
Holm's step-down adjustment over all rows of a report, and the verdict drawn from the adjusted p-value.

p-values are two-sided for every claim, directional ones included. A directional claim has two
decisive outcomes (supported, contradicted), one per side of 0; the two-sided p at level alpha is the
pair of one-sided tests at alpha / 2 each, so one test decides both sides, and before adjustment
"p < 0.05" is exactly "the two-sided 95% t interval excludes 0".
"""

from __future__ import annotations

import math
import statistics

from scipy import stats

ALPHA = 0.05
"""Family-wise error rate the Holm adjustment controls, over all rows of one report."""
CONFIDENCE = 1 - ALPHA
"""Level of the raw (unadjusted) t intervals."""
VERDICTS = ("supported", "contradicted", "inconclusive")


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


def t_test(values) -> float | None:
    """Two-sided p-value of the one-sample t test of mean 0 (df = n - 1); None with fewer than 2 values.

    Differences without spread (standard error 0) give p = 0 for a non-zero mean and 1 for a zero one,
    the limits of the t statistic."""
    values = _finite(values)
    if len(values) < 2:
        return None
    mean, standard_error = _mean_and_standard_error(values)
    if standard_error == 0:
        return 1.0 if mean == 0 else 0.0
    return float(2 * stats.t.sf(abs(mean / standard_error), len(values) - 1))


def holm_adjust(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    With the m p-values sorted ascending, p_(1) <= ... <= p_(m), the adjusted value of the i-th is
    max over j <= i of min(1, (m - j + 1) p_(j)); rejecting where it is below alpha controls the
    family-wise error rate at alpha under any dependence between the tests."""
    for value in p_values:
        if not 0 <= value <= 1:
            raise ValueError(f"p-values lie in [0, 1], got {value}")
    count = len(p_values)
    adjusted = [0.0] * count
    running = 0.0
    for rank, index in enumerate(sorted(range(count), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (count - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def verdict(p_adjusted: float | None, effect: float | None, direction: int, alpha: float = ALPHA) -> str:
    """The verdict of a row from its Holm-adjusted p-value and the sign of its effect.

    direction -1 or +1: the claim predicts that sign; `supported` when p_adjusted < alpha on that side,
    `contradicted` when p_adjusted < alpha on the other. direction 0: the claim predicts a non-zero
    effect of either sign; `supported` when p_adjusted < alpha, never `contradicted` (no equivalence
    margin is declared, and a wide-enough interval around 0 is absence of evidence, not evidence of
    absence). Otherwise, or without a p-value, `inconclusive`."""
    if direction not in (-1, 0, 1):
        raise ValueError(f"direction must be -1, 0 or +1, got {direction}")
    if p_adjusted is None or effect is None or p_adjusted >= alpha or effect == 0:
        return "inconclusive"
    if direction == 0 or (effect > 0) == (direction > 0):
        return "supported"
    return "contradicted"


def mean_and_sd(values) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof = 1, the spread a t interval uses) of `values`; the deviation is
    None for a single value. Every table and figure of the report that shows a spread over runs uses this."""
    values = [float(value) for value in values]
    if not values:
        raise ValueError("mean_and_sd needs at least one value")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)
