"""Effects at matched rate or matched distortion (docs/science.md, "How a claim is tested"): compare two families
along their curves over the beta grid instead of at equal beta.

For one seed, a family's runs over the beta grid trace a curve y(x), e.g. IsoScore against rate. It is
taken as piecewise linear in log x through the runs sorted by x (the curve is monotone in beta; runs at
the same x are averaged). The matched effect of a seed is the mean of y_neural(x) - y_pointwise(x)
over the x range every compared curve covers, uniform in log x:

    effect = 1 / (log b - log a) * integral_{log a}^{log b} (y_neural - y_pointwise) d log x

Both interpolants are piecewise linear, so the trapezoid rule on the union of their knots in [a, b]
gives this integral exactly (the limit of averaging over an ever finer grid). A neural run that is a
pointwise run at another beta lies on the pointwise curve, so its matched effect is 0 up to the
interpolation error of the chords between knots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Curve:
    """y against log x through one family's runs of one seed, knots sorted by x."""

    log_x: np.ndarray
    """Strictly increasing knots, log x."""
    y: np.ndarray
    """The metric at each knot."""

    @property
    def span(self) -> tuple[float, float]:
        """(lowest, highest) log x covered."""
        return float(self.log_x[0]), float(self.log_x[-1])

    def mean_over(self, low: float, high: float) -> float:
        """Mean of the interpolant over [low, high] in log x (inside the span), exact for a polyline."""
        if not self.log_x[0] <= low < high <= self.log_x[-1]:
            raise ValueError(f"[{low}, {high}] is not a range inside the curve's span {self.span}")
        inner = self.log_x[(self.log_x > low) & (self.log_x < high)]
        knots = np.concatenate(([low], inner, [high]))
        values = np.interp(knots, self.log_x, self.y)
        return float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(knots)) / (high - low))


def make_curve(points) -> Curve | None:
    """The curve through (x, y) points with x > 0 (one run per beta); None with fewer than 2 distinct x.

    Points whose x is not positive and finite (a run that lost all rate, say) cannot sit on a log axis
    and are left out; runs at exactly the same x are averaged so the knots increase strictly."""
    by_x: dict[float, list[float]] = {}
    for x, y in points:
        if x is not None and y is not None and math.isfinite(x) and x > 0 and math.isfinite(y):
            by_x.setdefault(math.log(x), []).append(float(y))
    if len(by_x) < 2:
        return None
    log_x = np.array(sorted(by_x))
    return Curve(log_x, np.array([sum(by_x[value]) / len(by_x[value]) for value in log_x]))


def common_span(curves: list[Curve]) -> tuple[float, float] | None:
    """The log x range every curve covers; None when they share no range of positive width."""
    if not curves:
        return None
    low = max(curve.span[0] for curve in curves)
    high = min(curve.span[1] for curve in curves)
    return (low, high) if low < high else None


def matched_difference(neural: Curve, baseline: Curve, span: tuple[float, float]) -> float:
    """Mean of neural(x) - baseline(x) over `span` (log x), uniform in log x."""
    return neural.mean_over(*span) - baseline.mean_over(*span)
