"""Curves over the beta grid: knots, the exact mean over a log-x range, the common range, matched differences."""

import math

import numpy as np
import pytest

from vaelens.report.matching import common_span, make_curve, matched_difference


def test_curve_sorts_by_x_averages_ties_and_drops_points_off_the_log_axis():
    curve = make_curve([(4.0, 1.0), (1.0, 3.0), (4.0, 2.0), (0.0, 9.0), (-1.0, 9.0), (2.0, None), (math.inf, 9.0)])
    assert curve.log_x.tolist() == pytest.approx([0.0, math.log(4.0)])
    assert curve.y.tolist() == [3.0, 1.5]
    assert make_curve([(1.0, 1.0), (1.0, 2.0)]) is None  # one distinct x: no curve
    assert make_curve([]) is None


def test_mean_over_is_exact_for_the_polyline_and_agrees_with_a_fine_grid():
    curve = make_curve([(1.0, 0.0), (math.e, 2.0), (math.e ** 3, 0.0)])  # knots at log x = 0, 1, 3
    # the tent's mean over [0.5, 2]: integral 0.5 * (1 + 2) / 2 + 1 * (2 + 1) / 2 = 2.25, over a width of 1.5
    assert curve.mean_over(0.5, 2.0) == pytest.approx(1.5)
    grid = np.linspace(0.5, 2.0, 200_001)
    assert curve.mean_over(0.5, 2.0) == pytest.approx(np.interp(grid, curve.log_x, curve.y).mean(), abs=1e-5)
    with pytest.raises(ValueError, match="span"):
        curve.mean_over(-1.0, 2.0)
    with pytest.raises(ValueError, match="span"):
        curve.mean_over(2.0, 2.0)


def test_common_span_is_the_intersection_and_none_without_width():
    first = make_curve([(1.0, 0.0), (10.0, 0.0)])
    second = make_curve([(5.0, 0.0), (20.0, 0.0)])
    low, high = common_span([first, second])
    assert (math.exp(low), math.exp(high)) == pytest.approx((5.0, 10.0))
    touching = make_curve([(10.0, 0.0), (30.0, 0.0)])
    assert common_span([first, touching]) is None
    assert common_span([]) is None


def test_points_of_one_curve_at_other_x_have_matched_difference_zero_where_it_is_linear_in_log_x():
    def metric(x):
        return 0.2 - 0.05 * math.log(x)

    baseline = make_curve([(x, metric(x)) for x in (1.0, 2.0, 4.0, 8.0)])
    moved = make_curve([(x, metric(x)) for x in (1.5, 3.0, 6.0, 12.0)])
    span = common_span([baseline, moved])
    assert matched_difference(moved, baseline, span) == pytest.approx(0.0, abs=1e-12)
    shifted = make_curve([(x, metric(x) + 0.1) for x in (1.5, 3.0, 6.0, 12.0)])
    assert matched_difference(shifted, baseline, span) == pytest.approx(0.1)
