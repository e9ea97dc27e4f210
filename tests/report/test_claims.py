"""The claims engine on constructed runs: matched-beta, matched-rate and matched-distortion effects, the
overlap marking, saturation-aware verdicts, Holm over all rows, and the claims.json schema."""

import json
import math

import numpy as np
import pytest

from vaelens.io import atomic_write_json
from vaelens.report import claims_text
from vaelens.report.claim_rows import ClaimsReport
from vaelens.report.claims import CLAIMS, evaluate_claims, write_claims
from vaelens.report.claims_content import plateau_exclusion_text, seeds_cell
from vaelens.report.render_terminal import cell_text
from vaelens.report.statistics import holm_adjust
from vaelens.training.rundir import PLATEAU_FILE, RunDirectory
from vaelens.training.sweepdir import BOUNDED_BY_SAMPLE, SATURATED

BETAS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
SHIFT = 1.7
"""A neural run at beta is the pointwise run at SHIFT * beta: the same R-D curve, another point on it."""


def curve_point(beta: float, seed: int, noise: np.ndarray) -> dict:
    """Analysis values of a run at `beta` on one smooth family of curves: rate falls with beta, distortion
    rises, and every geometry metric is a curved (quadratic) function of log rate. The seed shifts the
    whole curve (what pairing on seeds removes); `noise` (4 values) is each run's own scatter."""
    rate = 30.0 * beta ** -0.5 * (1 + noise[0])
    log_rate = math.log(rate)
    return {"rate": rate, "mutual_information": 0.8 * rate, "distortion.mse": 0.002 * beta ** 0.6,
            "geometry_active.isoscore": 0.9 - 0.12 * log_rate + 0.01 * log_rate ** 2 + 0.02 * seed + noise[1],
            "geometry_active.participation_ratio": 12.0 - 2.0 * log_rate + 0.1 * seed + noise[2] * 20,
            "posterior_variance.normalized_entropy": 0.95 - 0.04 * log_rate ** 1.5 + noise[3]}


def moved_along_the_curve(make_run, seeds=range(5), family="+perceptual") -> list:
    """Pointwise runs on the curve at BETAS; neural runs that are pointwise runs at SHIFT * beta."""
    generator = np.random.default_rng(0)
    runs = []
    for seed in seeds:
        for beta in BETAS:
            runs.append(make_run("pointwise", seed, beta, **curve_point(beta, seed, generator.normal(0, 0.002, 4))))
            runs.append(make_run(family, seed, beta, **curve_point(SHIFT * beta, seed,
                                                                   generator.normal(0, 0.002, 4))))
    return runs


def pooled(payload: ClaimsReport) -> dict:
    return {(r.claim, r.comparison, r.metric): r for r in payload.pooled_rows()}


def test_a_neural_loss_that_only_moves_along_the_rd_curve_has_no_matched_rate_effect(make_run):
    rows = pooled(evaluate_claims(moved_along_the_curve(make_run)))
    for metric in ("isoscore_active", "participation_ratio_active", "variance_entropy"):
        claim = "C2" if metric != "variance_entropy" else "C3"
        at_beta, at_rate = rows[(claim, "matched_beta", metric)], rows[("C4", "matched_rate", metric)]
        # at equal beta the lower rate looks like a geometry effect; at equal rate it is gone
        assert at_beta.verdict == "supported" and at_beta.p_holm < 1e-3, at_beta
        assert at_rate.verdict == "inconclusive" and at_rate.verdict_basis == "holm", at_rate
        assert abs(at_rate.effect) < 0.05 * abs(at_beta.effect), (metric, at_rate.effect, at_beta.effect)
        assert at_rate.ci_low < 0 < at_rate.ci_high and at_rate.n_pairs == 5
        # the rates both curves cover: from the pointwise run at beta 16 to the neural run at beta 0.5
        assert at_rate.overlap.units == "nats" and at_rate.overlap.variable == "rate"
        assert at_rate.overlap.low == pytest.approx(30 / 4, rel=0.02)
        assert at_rate.overlap.high == pytest.approx(30 / math.sqrt(0.5 * SHIFT), rel=0.02)
    assert rows[("C1", "matched_beta", "rate")].verdict == "supported"
    at_distortion = rows[("C1", "matched_distortion", "rate")]
    assert at_distortion.verdict == "inconclusive" and at_distortion.overlap.units == "MSE per pixel"
    assert abs(at_distortion.effect) < 0.05 * abs(rows[("C1", "matched_beta", "rate")].effect)


def test_a_geometry_change_at_equal_rate_is_a_supported_c4_either_way(make_run):
    runs = moved_along_the_curve(make_run)
    for run in runs:
        if run.loss_family != "pointwise":
            run.analysis["geometry_active.isoscore"] -= 0.05  # a lower IsoScore at every rate
    rows = pooled(evaluate_claims(runs))
    c4 = rows[("C4", "matched_rate", "isoscore_active")]
    assert c4.verdict == "supported" and c4.effect == pytest.approx(-0.05, abs=0.005)
    assert c4.predicted_sign == "non-zero"


def test_curves_that_share_no_rate_range_or_have_one_beta_give_no_matched_effect(make_run):
    runs = [make_run("pointwise", seed, beta, rate=20.0 / beta) for seed in (0, 1) for beta in (1.0, 2.0)]
    runs += [make_run("+adversarial", seed, beta, rate=2.0 / beta) for seed in (0, 1) for beta in (1.0, 2.0)]
    runs += [make_run("+perceptual", seed, 1.0, rate=15.0) for seed in (0, 1)]  # one beta per curve
    rows = {(r.neural_family, r.metric): r for r in evaluate_claims(runs).pooled_rows()
            if r.comparison == "matched_rate"}
    apart = rows[("+adversarial", "isoscore_active")]
    assert apart.verdict == "inconclusive" and apart.verdict_basis == "no_overlap"
    assert apart.effect is None and apart.p_value is None and apart.n_pairs == 0
    assert vars(apart.overlap) == {"variable": "rate", "units": "nats", "low": None, "high": None}
    assert apart.verdict_reason.startswith("no overlap") and "[10, 20]" in apart.verdict_reason
    single = rows[("+perceptual", "variance_entropy")]
    assert single.verdict_basis == "too_few_betas" and single.verdict_reason.startswith("fewer than 2 betas")


def decisive_sweep(make_run, **extra) -> list:
    """Three seeds, two betas; the neural runs have clearly lower rate and MI and higher IsoScore and PR."""
    runs = []
    for seed in range(3):
        for beta in (1.0, 4.0):
            spread = 0.01 * seed
            runs.append(make_run("pointwise", seed, beta, rate=10.0 / beta + seed, mutual_information=4.0 + seed,
                                 **{"distortion.mse": 0.01 * beta}))
            runs.append(make_run("+perceptual", seed, beta, rate=6.0 / beta + seed + spread,
                                 mutual_information=2.0 + seed + spread,
                                 **{"distortion.mse": 0.012 * beta},
                                 **{"geometry_active.isoscore": 0.7 + spread,
                                    "geometry_active.participation_ratio": 4.0 + spread}, **extra))
    return runs


def test_no_verdict_is_drawn_from_a_saturated_or_sample_bounded_estimate(make_run):
    runs = decisive_sweep(make_run)
    runs[1].analysis["mutual_information_saturated"] = True  # the +perceptual run of seed 0 at beta 1
    runs[3].analysis["geometry_active.bounded_by_sample"] = True  # its run at beta 4
    results = evaluate_claims(runs).results
    rows = {(r.claim, r.comparison, r.metric, r.beta): r for r in results}
    mi = rows[("C1", "matched_beta", "mutual_information", "all")]
    assert mi.verdict == "inconclusive" and mi.verdict_basis == "saturated"
    assert mi.verdict_reason == f"{SATURATED} (in 1 of 12 runs)"
    assert mi.p_value < 1e-3 and mi.effect == pytest.approx(-2.0, abs=0.01)  # the numbers stay on record
    assert rows[("C1", "matched_beta", "mutual_information", 4.0)].verdict == "supported"  # not that run
    assert rows[("C1", "matched_distortion", "mutual_information", "all")].verdict_basis == "saturated"
    for comparison, claim in (("matched_beta", "C2"), ("matched_rate", "C4")):
        iso = rows[(claim, comparison, "isoscore_active", "all")]
        assert iso.verdict_basis == "bounded_by_sample" and iso.verdict_reason.startswith(BOUNDED_BY_SAMPLE)
    assert rows[("C2", "matched_beta", "isoscore_active", 1.0)].verdict == "supported"
    assert rows[("C1", "matched_beta", "rate", "all")].verdict == "supported"  # rate is closed form


def test_verdicts_read_holm_adjusted_p_values_over_every_row(make_run):
    payload = evaluate_claims(decisive_sweep(make_run))
    results = payload.results
    tested = [r for r in results if r.p_value is not None]
    # 5 metrics x (pooled + 2 betas) at matched beta, 2 at matched distortion, 3 at matched rate
    assert payload.multiplicity["tests"] == len(tested) == 5 * 3 + 2 + 3
    assert payload.multiplicity["method"] == "Holm step-down"
    assert [r.p_holm for r in tested] == pytest.approx(holm_adjust([r.p_value for r in tested]))
    # a raw interval that excludes 0 is not enough: C3's entropy differences are small against their spread
    for row in results:
        raw_excludes_zero = row.ci_low is not None and (row.ci_low > 0 or row.ci_high < 0)
        if row.verdict != "inconclusive":
            assert row.p_holm < 0.05 and raw_excludes_zero, row
    runs = decisive_sweep(make_run)
    for run, offset in zip(runs[1::2], (0.01, -0.004, 0.03, 0.008, 0.02, 0.0)):
        run.analysis["posterior_variance.normalized_entropy"] += offset + 0.02
    entropy = {r.beta: r for r in evaluate_claims(runs).results if r.metric == "variance_entropy"
               and r.comparison == "matched_beta"}
    assert entropy["all"].ci_low > 0 and entropy["all"].p_value < 0.05  # raw: decisive
    assert entropy["all"].p_holm >= 0.05 and entropy["all"].verdict == "inconclusive"
    assert entropy["all"].verdict_reason.startswith("Holm-adjusted p = ")


def test_claims_schema_names_comparison_units_convention_interval_and_p_values(make_run, tmp_path):
    runs = [make_run(family, 0, beta) for family in ("pointwise", "+adversarial") for beta in (1.0, 2.0)]
    payload = evaluate_claims(runs)
    assert payload.version == 3 and payload.units == "nats" and payload.confidence == 0.95
    assert payload.alpha == 0.05 and set(payload.comparisons) == {"matched_beta", "matched_rate",
                                                                         "matched_distortion"}
    assert {"method", "alpha", "family", "p_value", "adjustment", "tests"} <= set(payload.multiplicity)
    assert set(payload.claims) == {claim.claim_id for claim in CLAIMS} == {"C1", "C2", "C3", "C4"}
    keys = {"claim", "comparison", "metric", "metric_key", "metric_units", "dataset", "convention",
            "baseline_convention", "neural_family", "beta", "effect", "ci_low", "ci_high", "p_value", "p_holm",
            "n_pairs", "seeds", "overlap", "predicted_sign", "verdict", "verdict_basis", "verdict_reason",
            "seeds_not_on_plateau"}
    assert payload.results and all(set(result.to_json()) == keys for result in payload.results)
    rows = payload.pooled_rows()
    assert len(rows) == sum(len(claim.metrics) * len(claim.comparisons) for claim in CLAIMS)
    # one seed: no interval and no p-value, so never a verdict other than inconclusive
    assert all(r.n_pairs <= 1 and r.p_holm is None and r.verdict == "inconclusive" for r in rows)
    assert {r.verdict_basis for r in rows if r.comparison == "matched_beta"} == {"single_seed"}
    assert {r.metric_units for r in rows if r.claim == "C1"} == {"nats"}
    assert all(r.overlap is None for r in rows if r.comparison == "matched_beta")
    assert payload.multiplicity["tests"] == 0
    written = json.loads(write_claims(payload, tmp_path / "claims.json").read_text())
    assert written == payload.to_json() and ClaimsReport.from_json(written) == payload


def test_terminal_table_shows_raw_interval_and_holm_p(make_run):
    table = claims_text(evaluate_claims(decisive_sweep(make_run)))
    header = table.splitlines()[0].split()
    assert header[:8] == ["claim", "comparison", "metric", "dataset", "convention", "family", "effect", "95%"]
    assert "p_holm" in header and "C4" in table and "matched_rate" in table and "supported" in table
    assert "Holm step-down-adjusted p over all" in table.splitlines()[-1]


def test_no_pairs_gives_an_empty_table_that_says_why(make_run):
    payload = evaluate_claims([make_run("pointwise", 0, 1.0)])
    assert payload.results == []
    assert "no neural-loss run" in claims_text(payload)


def _with_plateau(run, tmp_path, converged: bool, figure: float):
    """`run` with a run folder holding the plateau.json the paired check would write."""
    run.run_dir = tmp_path / run.run_id
    atomic_write_json(run.run_dir / PLATEAU_FILE, {"converged": converged, "relative_improvement": figure,
                                                  "from_step": 8, "to_step": 10})
    run.plateau = RunDirectory(run.run_dir).read_plateau()  # what the sweep directory's reader gives a record
    return run


def test_runs_still_improving_leave_the_claims_and_every_row_says_which_seeds_it_lost(make_run, tmp_path):
    runs = decisive_sweep(make_run)
    still = next(r for r in runs if r.loss_family == "pointwise" and r.seed == 2 and r.beta == 4.0)
    on_plateau = next(r for r in runs if r.loss_family == "+perceptual" and r.seed == 1 and r.beta == 1.0)
    _with_plateau(still, tmp_path, False, 0.031)
    _with_plateau(on_plateau, tmp_path, True, 0.004)
    payload = evaluate_claims(runs)
    # the same numbers as a sweep without the run still improving; the run on the plateau stays
    without = evaluate_claims([r for r in runs if r is not still])
    def numbers(result):
        return [{k: v for k, v in row.to_json().items() if k != "seeds_not_on_plateau"} for row in result.results]

    assert numbers(payload) == numbers(without)
    assert [vars(run) for run in payload.plateau.runs_left_out] == [
        {"run": still.run_id, "dataset": "dsprites-64", "convention": "additive", "neural_family": "pointwise",
         "beta": 4.0, "seed": 2, "relative_improvement": 0.031, "stretch": [8, 10]}]
    rows = {(r.claim, r.comparison, r.metric, r.beta): r for r in payload.results}
    rate_at_4, rate_at_1 = rows[("C1", "matched_beta", "rate", 4.0)], rows[("C1", "matched_beta", "rate", 1.0)]
    assert rate_at_4.n_pairs == 2 and rate_at_4.seeds == [0, 1] and rate_at_4.seeds_not_on_plateau == [2]
    assert rate_at_1.n_pairs == 3 and rate_at_1.seeds_not_on_plateau == []
    pooled_rate = rows[("C1", "matched_beta", "rate", "all")]
    assert pooled_rate.seeds == [0, 1] and cell_text(seeds_cell(pooled_rate)) == "2 (seed 2 left out)"
    text = plateau_exclusion_text(payload)
    assert text.startswith("1 run still improving") and "pointwise: beta 4 seed 2 (3.10%)" in text
    assert plateau_exclusion_text(without).startswith("Every run the claims use is on the plateau")


def test_a_sweep_may_keep_the_runs_still_improving_and_then_says_the_verdicts_are_a_smoke_test(make_run, tmp_path):
    runs = decisive_sweep(make_run)
    every = [_with_plateau(run, tmp_path, False, 0.2) for run in runs]
    kept = evaluate_claims(every, leave_out_still_improving=False)
    assert kept.results == evaluate_claims(decisive_sweep(make_run)).results  # every run takes part
    assert kept.plateau.runs_left_out == [] and len(kept.plateau.runs_still_improving) == len(runs)
    assert plateau_exclusion_text(kept).startswith(f"{len(runs)} runs still improving by the paired plateau check, "
                                                   "none left out") and "smoke test" in plateau_exclusion_text(kept)
    assert "smoke test" in claims_text(kept)
    # left out, nothing is left to compare, and the terminal says why rather than blaming the sweep's layout
    none = evaluate_claims(every)
    assert none.pooled_rows() == [] and len(none.plateau.runs_left_out) == len(runs)
    assert claims_text(none).startswith(f"no claim could be tested. {len(runs)} runs still improving")
    assert claims_text(evaluate_claims([])).startswith("no claim could be tested: the sweep has no")
