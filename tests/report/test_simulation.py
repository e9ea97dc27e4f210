"""The claims engine validated on simulated studies with a known answer (vaelens.report.simulation): the family-wise
error of the primary family under the null, the coverage of a pure move along the rate-distortion curve, a known
geometry effect recovered and decided, an effect inside its bound read as no effect, and a missing run that keeps its
seed. docs/claims.md quotes these figures at more replications (benchmarks/simulate_claims.py)."""

import numpy as np
import pytest

from vaelens.report.claims import evaluate_claims
from vaelens.report.simulation import Truth, simulated_runs


def _primary(truth: Truth, replications: int, seeds=range(5), rng_seed: int = 1) -> list[dict]:
    """Per replication, the primary family's rows by claim."""
    rng = np.random.default_rng(rng_seed)
    studies = (evaluate_claims(simulated_runs(truth, seeds=seeds, rng=rng)) for _ in range(replications))
    return [{row.claim: row for row in study.family_rows("primary")} for study in studies]


def test_under_the_null_the_primary_family_errs_at_most_alpha():
    studies = _primary(Truth(), 200)
    false = np.mean([any(row.verdict in ("supported", "contradicted") for row in study.values()) for study in studies])
    # 200 replications: the family-wise error's standard error at 5% is 1.5%
    assert false <= 0.05 + 2 * 0.015, false
    assert all(len(study) == 4 for study in studies)


def test_a_pure_move_along_the_curve_has_no_matched_rate_effect_and_its_interval_covers_zero():
    studies = _primary(Truth(shift=2.0), 80)
    c4 = [study["C4"] for study in studies]
    coverage = np.mean([row.ci_low <= 0 <= row.ci_high for row in c4])
    assert 0.9 <= coverage <= 1.0, coverage
    assert abs(np.mean([row.effect for row in c4])) < 0.005  # the smooth curve's chord bias is small
    assert np.mean([row.verdict in ("supported", "contradicted") for row in c4]) <= 0.1
    assert np.mean([row.verdict == "no effect" for row in c4]) >= 0.4  # equivalence needs more seeds than 5
    # at matched beta the same move looks like a C2 effect: what matched rate is there to remove
    assert np.mean([study["C2"].effect for study in studies]) > 0.01
    assert np.mean([study["C2"].p_value < 0.05 for study in studies]) > 0.8


def test_a_step_like_metric_has_a_chord_bias_at_matched_rate():
    c4 = [study["C4"] for study in _primary(Truth(shift=2.0, step_at=8.0, noise=0.01), 60)]
    bias = float(np.mean([row.effect for row in c4]))
    # a step at 8 nats between knots is smeared over a chord, differently for the two shifted grids
    assert 0.005 < abs(bias) < 0.15, bias


@pytest.mark.parametrize("seeds", [8])
def test_a_known_geometry_effect_at_equal_rate_is_recovered_and_decided(seeds):
    c4 = [study["C4"] for study in _primary(Truth(geometry_effect=-0.1), 40, seeds=range(seeds))]
    assert np.mean([row.effect for row in c4]) == pytest.approx(-0.1, abs=0.01)
    assert np.mean([row.verdict == "supported" for row in c4]) >= 0.8


def test_an_effect_inside_the_bound_reads_no_effect():
    c4 = [study["C4"] for study in _primary(Truth(geometry_effect=0.01), 30, seeds=range(16))]
    assert np.mean([row.verdict == "no effect" for row in c4]) >= 0.8
    assert not any(row.verdict == "contradicted" for row in c4)


def test_a_missing_run_keeps_its_seed_in_the_pooled_row():
    runs = simulated_runs(Truth(rate_effect=-2.0))
    missing = next(run for run in runs if run.loss_family == "pointwise" and run.seed == 2 and run.beta == 8.0)
    payload = evaluate_claims([run for run in runs if run is not missing])
    rate = next(row for row in payload.family_rows("primary") if row.claim == "C1")
    assert rate.n_pairs == 5 and rate.imputed == [[2, 8.0]] and rate.betas_pooled == [0.5, 2.0, 8.0, 32.0]
    assert rate.verdict == "supported"
