"""Pooling that keeps seeds: a missing run imputed from the additive seed + beta model, the betas pooled recorded, and
curve rows that drop the seeds missing the window instead of shrinking it for all."""

import math

import numpy as np
import pytest

from vaelens.report.claims import evaluate_claims
from vaelens.report.matching import make_curve
from vaelens.report.pooling import curve_window, pool_over_betas
from vaelens.report.statistics import t_test


def test_complete_cells_pool_to_each_seeds_mean_and_a_missing_cell_is_the_additive_fit():
    seed_level, beta_offset = {0: 1.0, 1: 2.0, 2: 4.0}, {1.0: 0.0, 2.0: 0.5, 4.0: -1.0}
    cells = {beta: {seed: level + offset for seed, level in seed_level.items()} for beta, offset in beta_offset.items()}
    complete = pool_over_betas(cells)
    assert complete.imputed == [] and complete.betas == [1.0, 2.0, 4.0]
    assert complete.per_seed == pytest.approx({seed: level - 1 / 6 for seed, level in seed_level.items()})
    del cells[4.0][2]  # seed 2's run at beta 4 is missing: the model fills it exactly (no noise)
    filled = pool_over_betas(cells)
    assert filled.imputed == [[2, 4.0]] and filled.per_seed == pytest.approx(complete.per_seed)


def test_a_beta_with_one_seed_is_not_pooled_and_a_seed_with_too_few_betas_is_dropped_and_listed():
    cells = {1.0: {0: 1.0, 1: 1.2, 2: 0.9}, 2.0: {0: 1.1, 1: 1.3}, 4.0: {0: 0.7}, 8.0: {0: 0.5, 1: 0.6}}
    pooled = pool_over_betas(cells)
    assert pooled.betas == [1.0, 2.0, 8.0]  # beta 4 has one seed: its offset cannot be estimated
    assert sorted(pooled.per_seed) == [0, 1]
    assert pooled.dropped == [{"seed": 2, "reason": "runs at 1 of the 3 pooled betas (fewer than 2)"}]


def test_imputation_keeps_the_null_rejection_rate_of_the_pooled_row():
    # null differences (seed levels of mean 0, beta offsets, noise), one cell missing per replication at random
    rng = np.random.default_rng(0)
    betas, rejections, replications = (0.5, 2.0, 8.0, 32.0), 0, 1000
    for _ in range(replications):
        level, offset = rng.normal(0, 0.3, 5), rng.normal(0, 1, 4)
        cells = {beta: {seed: level[seed] + offset[j] - offset.mean() + rng.normal(0, 0.5) for seed in range(5)}
                 for j, beta in enumerate(betas)}
        del cells[betas[rng.integers(4)]][int(rng.integers(5))]
        pooled = pool_over_betas(cells)
        assert len(pooled.per_seed) == 5 and len(pooled.imputed) == 1
        rejections += t_test(list(pooled.per_seed.values())) < 0.05
    # nominal 5%: 1000 replications put 95% of rates in about [3.6%, 6.4%]; imputation shrinks the imputed seed's
    # scatter a little, which may lift the rate slightly, never far
    assert 0.03 <= rejections / replications <= 0.075, rejections


def _pair(low, high):
    """Neural and pointwise curves through rates low..high (4 knots)."""
    points = [(x, 0.5) for x in np.geomspace(low, high, 4)]
    return make_curve(points), make_curve(points)


def test_a_declared_window_keeps_the_seeds_that_cover_it_and_lists_the_others():
    curves = {0: _pair(5, 60), 1: _pair(8, 50), 2: _pair(15, 30), 3: _pair(6, 70)}
    window = curve_window(curves, (10.0, 40.0))
    assert window.declared and window.span == pytest.approx((math.log(10), math.log(40)))
    assert window.seeds == [0, 1, 3] and [item["seed"] for item in window.dropped] == [2]
    assert "[15, 30]" in window.dropped[0]["reason"]


def test_without_a_window_one_seed_cannot_blank_the_row():
    curves = {0: _pair(5, 60), 1: _pair(8, 50), 2: _pair(70, 90), 3: _pair(6, 70)}
    window = curve_window(curves, None)
    assert window.seeds == [0, 1, 3] and [item["seed"] for item in window.dropped] == [2]
    assert window.span == pytest.approx((math.log(8), math.log(50)))


def test_a_curve_row_keeps_four_seeds_when_a_fifth_misses_the_window(make_run):
    runs = []
    for seed in range(5):
        scale = 10.0 if seed == 4 else 1.0  # seed 4's curves sit at ten times the others' rates
        for beta in (1.0, 2.0, 4.0, 8.0):
            runs.append(make_run("pointwise", seed, beta, rate=scale * 40 / beta))
            runs.append(make_run("+perceptual", seed, beta, rate=scale * 30 / beta,
                                 **{"geometry_active.isoscore": 0.4 + 0.01 * seed}))
    row = next(r for r in evaluate_claims(runs).pooled_rows() if r.claim == "C4" and r.metric == "isoscore_active")
    assert row.n_pairs == 4 and row.seeds == [0, 1, 2, 3] and row.verdict_basis == "adjusted"
    assert [item["seed"] for item in row.seeds_dropped] == [4]
    assert row.overlap.low == pytest.approx(5.0) and row.overlap.high == pytest.approx(30.0)
