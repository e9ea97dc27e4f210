"""The claims engine on constructed runs: matched-beta, matched-rate and matched-distortion effects, the
overlap marking, saturation-aware verdicts, the declared families and their adjustment, and the claims.json schema."""

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
from vaelens.report.statistics import bh_adjust, step_down_adjust
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
        assert at_beta.p_value < 1e-3 and at_beta.effect > 0, at_beta
        assert abs(at_rate.effect) < 0.05 * abs(at_beta.effect), (metric, at_rate.effect, at_beta.effect)
        assert at_rate.ci_low < 0 < at_rate.ci_high and at_rate.n_pairs == 5
        # the rates both curves cover: from the pointwise run at beta 16 to the neural run at beta 0.5
        assert at_rate.overlap.units == "nats" and at_rate.overlap.variable == "rate"
        assert at_rate.overlap.low == pytest.approx(30 / 4, rel=0.02)
        assert at_rate.overlap.high == pytest.approx(30 / math.sqrt(0.5 * SHIFT), rel=0.02)
    # the endpoints (the primary family: dsprites-64 additive +perceptual): C3 decided at matched beta; C2's IsoScore
    # difference (+0.017) is detected but within its bound (0.05), so it reads no effect; and at matched rate the
    # IsoScore difference is within its bound too: no effect, a finding rather than a shrug
    c2 = rows[("C2", "matched_beta", "isoscore_active")]
    assert c2.verdict == "no effect" and c2.p_adjusted < 0.05 and "difference from 0 is detected" in c2.verdict_reason
    assert rows[("C3", "matched_beta", "variance_entropy")].verdict == "supported"
    c4 = rows[("C4", "matched_rate", "isoscore_active")]
    assert c4.test_family == "primary" and c4.verdict == "no effect" and c4.bound == 0.05, c4
    assert c4.p_adjusted >= 0.05 > c4.p_equivalence_adjusted and "within the bound" in c4.verdict_reason
    assert rows[("C4", "matched_rate", "variance_entropy")].verdict == "exploratory"
    assert rows[("C1", "matched_beta", "rate")].verdict == "supported"
    at_distortion = rows[("C1", "matched_distortion", "rate")]
    assert at_distortion.verdict == "exploratory" and at_distortion.overlap.units == "MSE per pixel"
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
    runs = [make_run("pointwise", seed, beta, rate=20.0 / beta) for seed in (0, 1, 2) for beta in (1.0, 2.0)]
    runs += [make_run("+adversarial", seed, beta, rate=2.0 / beta) for seed in (0, 1, 2) for beta in (1.0, 2.0)]
    runs += [make_run("+perceptual", seed, 1.0, rate=15.0) for seed in (0, 1, 2)]  # one beta per curve
    rows = {(r.neural_family, r.metric): r for r in evaluate_claims(runs).pooled_rows()
            if r.comparison == "matched_rate"}
    apart = rows[("+adversarial", "isoscore_active")]
    assert apart.verdict == "inconclusive" and apart.verdict_basis == "no_overlap"
    assert apart.effect is None and apart.p_value is None and apart.n_pairs == 0
    assert vars(apart.overlap) == {"variable": "rate", "units": "nats", "low": None, "high": None}
    assert apart.verdict_reason.startswith("no overlap") and "[10, 20]" in apart.verdict_reason
    single = rows[("+perceptual", "isoscore_active")]
    assert single.test_family == "primary" and single.verdict == "inconclusive"
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
    # I(x; z) is exploratory: never decided, and its note says the estimate is a floor
    assert mi.verdict == "exploratory" and mi.verdict_basis == "saturated"
    assert mi.verdict_reason == f"{SATURATED} (in 1 of 12 runs)"
    assert mi.p_value < 1e-3 and mi.effect == pytest.approx(-2.0, abs=0.01)  # the numbers stay on record
    assert "(in 1 of 12 runs)" in rows[("C1", "matched_distortion", "mutual_information", "all")].verdict_reason
    for comparison, claim in (("matched_beta", "C2"), ("matched_rate", "C4")):
        iso = rows[(claim, comparison, "isoscore_active", "all")]
        assert iso.test_family == "primary" and iso.verdict == "inconclusive"
        assert iso.verdict_basis == "bounded_by_sample" and iso.verdict_reason.startswith(BOUNDED_BY_SAMPLE)
    assert rows[("C2", "matched_beta", "isoscore_active", 1.0)].verdict == "exploratory"  # per-beta rows
    assert rows[("C1", "matched_beta", "rate", "all")].verdict == "supported"  # rate is closed form


def test_the_primary_family_is_adjusted_alone_and_the_exploratory_rows_are_not_decided(make_run):
    payload = evaluate_claims(decisive_sweep(make_run))
    primary = payload.family_rows("primary")
    assert [(r.claim, r.comparison, r.metric) for r in primary] == [
        ("C1", "matched_beta", "rate"), ("C2", "matched_beta", "isoscore_active"),
        ("C3", "matched_beta", "variance_entropy"), ("C4", "matched_rate", "isoscore_active")]
    assert payload.design["families"]["primary"]["rows"] == 4
    # C3's entropy is the same in every run: no spread, no p-value, no decision
    c3 = primary[2]
    assert c3.p_value is None and c3.verdict_basis == "no_spread" and c3.p_adjusted is None
    # Holm over the other endpoints' difference and equivalence tests, two tests of one endpoint in one group
    tested = [r for r in primary if r.p_value is not None]
    tests = [(i, r.p_value) for i, r in enumerate(tested)] + [(i, r.p_equivalence) for i, r in enumerate(tested)]
    adjusted = step_down_adjust([p for _, p in tests], [i for i, _ in tests])
    assert [r.p_adjusted for r in tested] == pytest.approx(adjusted[:3])
    assert [r.p_equivalence_adjusted for r in tested] == pytest.approx(adjusted[3:])
    # the sign-flip p beside each t p: 3 seeds, so no lower than 2 / 2^3
    assert all(r.p_sign_flip >= 0.25 and r.p_sign_flip_adjusted >= r.p_sign_flip for r in tested)
    exploratory = [r for r in payload.results if r.test_family == "exploratory"]
    assert exploratory and all(r.verdict == "exploratory" and r.p_adjusted is None for r in exploratory)
    assert all(not r.pooled for r in payload.results if r.claim == "C2" and r.test_family == "exploratory"
               and r.metric == "isoscore_active" and r.comparison == "matched_beta")  # only the per-beta rows
    # a raw interval that excludes 0 is not enough: C3's entropy differences are small against their spread
    runs = decisive_sweep(make_run)
    for run, offset in zip(runs[1::2], (0.01, -0.004, 0.03, 0.008, 0.02, 0.0)):
        run.analysis["posterior_variance.normalized_entropy"] += offset + 0.02
    entropy = {r.beta: r for r in evaluate_claims(runs).results if r.metric == "variance_entropy"
               and r.comparison == "matched_beta"}
    assert entropy["all"].ci_low > 0 and entropy["all"].p_value < 0.05  # raw: decisive
    assert entropy["all"].p_adjusted >= 0.05 and entropy["all"].verdict == "inconclusive"
    assert entropy["all"].verdict_reason.startswith("Holm-adjusted p = ")


def test_the_secondary_family_is_every_other_setting_under_benjamini_hochberg(make_run):
    runs = decisive_sweep(make_run)
    runs += [make_run("+adversarial", r.seed, r.beta, **r.analysis) for r in runs if r.loss_family == "+perceptual"]
    payload = evaluate_claims(runs)
    secondary = payload.family_rows("secondary")
    assert {r.neural_family for r in secondary} == {"+adversarial"} and len(secondary) == 4
    tested = [r for r in secondary if r.p_value is not None]
    adjusted = bh_adjust([r.p_value for r in tested] + [r.p_equivalence for r in tested])
    assert len(tested) == 3 and [r.p_adjusted for r in tested] == pytest.approx(adjusted[:3])
    assert all(r.p_sign_flip_adjusted is None for r in secondary)
    assert all(r.verdict_reason.startswith("BH-adjusted p") for r in secondary if r.verdict_basis == "adjusted")
    # the primary family is the same whatever else the sweep holds
    alone = evaluate_claims(decisive_sweep(make_run)).family_rows("primary")
    alone = {(r.claim, r.metric): r.p_adjusted for r in alone}
    assert {(r.claim, r.metric): r.p_adjusted for r in payload.family_rows("primary")} == alone


def test_claims_schema_names_comparison_units_convention_interval_and_p_values(make_run, tmp_path):
    runs = [make_run(family, 0, beta) for family in ("pointwise", "+adversarial") for beta in (1.0, 2.0)]
    payload = evaluate_claims(runs)
    assert payload.version == 4 and payload.units == "nats" and payload.confidence == 0.95
    assert payload.alpha == 0.05 and set(payload.comparisons) == {"matched_beta", "matched_rate",
                                                                         "matched_distortion"}
    assert {"families", "p_values", "alpha", "tests"} <= set(payload.multiplicity)
    assert list(payload.to_json())[:2] == ["version", "design"]  # declared before the data, so recorded first
    assert set(payload.design["families"]) == {"primary", "secondary", "exploratory"}
    assert set(payload.claims) == {claim.claim_id for claim in CLAIMS} == {"C1", "C2", "C3", "C4"}
    keys = {"claim", "comparison", "metric", "metric_key", "metric_units", "dataset", "convention",
            "baseline_convention", "neural_family", "beta", "effect", "ci_low", "ci_high", "p_value", "p_adjusted",
            "n_pairs", "seeds", "overlap", "predicted_sign", "verdict", "verdict_basis", "verdict_reason",
            "seeds_not_on_plateau", "test_family", "sd", "p_sign_flip", "p_sign_flip_adjusted", "bound",
            "p_equivalence", "p_equivalence_adjusted", "betas_pooled", "imputed", "seeds_dropped"}
    assert payload.results and all(set(result.to_json()) == keys for result in payload.results)
    rows = payload.pooled_rows()
    assert len(rows) == sum(len(claim.metrics) * len(claim.comparisons) for claim in CLAIMS)
    # one seed: no interval and no p-value, so never a decision
    assert all(r.n_pairs <= 1 and r.p_adjusted is None and r.verdict in ("inconclusive", "exploratory") for r in rows)
    assert {r.verdict_basis for r in rows if r.comparison == "matched_beta" and r.test_family != "exploratory"} == {
        "too_few_seeds"}
    assert {r.metric_units for r in rows if r.claim == "C1"} == {"nats"}
    assert all(r.overlap is None for r in rows if r.comparison == "matched_beta")
    assert payload.multiplicity["tests"] == 0
    written = json.loads(write_claims(payload, tmp_path / "claims.json").read_text())
    assert written == payload.to_json() and ClaimsReport.from_json(written) == payload


def test_terminal_table_shows_the_decided_families_with_adjusted_p(make_run):
    table = claims_text(evaluate_claims(decisive_sweep(make_run)))
    header = table.splitlines()[0].split()
    assert header[:9] == ["family", "claim", "metric", "comparison", "dataset", "convention", "neural", "effect", "95%"]
    assert "p_adj" in header and "p_equiv_adj" in header and "C4" in table and "matched_rate" in table
    assert "supported" in table and "mutual_information" not in table  # exploratory rows stay in claims.json
    assert table.splitlines()[-1].startswith("primary family: Holm over 4 endpoints in dsprites-64 additive "
                                             "+perceptual")


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
    # the pooled row keeps seed 2: its missing run at beta 4 is filled from the additive seed + beta model
    assert pooled_rate.seeds == [0, 1, 2] and pooled_rate.imputed == [[2, 4.0]]
    assert pooled_rate.betas_pooled == [1.0, 4.0]
    assert cell_text(seeds_cell(pooled_rate)) == "3 (seed 2 at beta 4 imputed)"
    assert cell_text(seeds_cell(rate_at_4)) == "2 (seed 2 left out)"
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
