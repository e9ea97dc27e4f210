"""The defects a decisive design must not have, each pinned: no verdict from fewer than 3 seeds or from differences
without spread, no pair that compares two views of a metric, one isotropy statistic in the primary family, an effect
inside its bound read as no effect, and the declared design carried from the sweep index to claims.json."""

import dataclasses
import json

import pytest

from vaelens.claims_design import DEFAULT_DESIGN, ClaimsDesign, Setting
from vaelens.report.claims import evaluate_claims
from vaelens.report.claims_content import seeds_cell
from vaelens.report.render_terminal import cell_text


def _rows(runs, **options):
    return {(r.claim, r.comparison, r.metric): r for r in evaluate_claims(runs, **options).pooled_rows()}


def _sweep(make_run, seeds=range(5), betas=(1.0, 4.0), iso_effect=(0.1, 0.12, 0.09, 0.11, 0.1), rate_effect=-1.0):
    runs = []
    for seed in seeds:
        for beta in betas:
            runs.append(make_run("pointwise", seed, beta, rate=10.0 / beta + seed))
            runs.append(make_run("+perceptual", seed, beta, rate=10.0 / beta + seed + rate_effect + 0.1 * seed,
                                 **{"geometry_active.isoscore": 0.5 + iso_effect[seed % len(iso_effect)]}))
    return runs


def test_two_seeds_never_decide_even_with_a_tiny_p(make_run):
    rows = _rows(_sweep(make_run, seeds=(0, 1)))
    rate = rows[("C1", "matched_beta", "rate")]
    assert rate.n_pairs == 2 and rate.p_value is not None and rate.p_value < 0.1
    assert rate.verdict == "inconclusive" and rate.verdict_basis == "too_few_seeds" and rate.p_adjusted is None
    assert "at least 3" in rate.verdict_reason


def test_differences_without_spread_are_no_evidence(make_run):
    # every seed's IsoScore difference is exactly 0.1 (up to rounding): the noise is not estimated
    rows = _rows(_sweep(make_run, iso_effect=(0.1,)))
    iso = rows[("C2", "matched_beta", "isoscore_active")]
    assert iso.effect == pytest.approx(0.1) and iso.p_value is None and iso.p_sign_flip is None
    assert iso.verdict == "inconclusive" and iso.verdict_basis == "no_spread"


def test_a_pair_that_mixes_the_active_unit_and_all_unit_views_is_withheld(make_run):
    runs = _sweep(make_run)
    collapsed = next(r for r in runs if r.loss_family == "+perceptual" and r.seed == 3 and r.beta == 4.0)
    del collapsed.analysis["geometry_active.isoscore"]  # fewer than 2 active units: only the all-unit view
    collapsed.analysis["geometry.isoscore"] = 0.95
    rows = {(r.claim, r.comparison, r.metric, r.beta): r for r in evaluate_claims(runs).results}
    per_beta = rows[("C2", "matched_beta", "isoscore_active", 4.0)]
    assert per_beta.seeds == [0, 1, 2, 4] and per_beta.seeds_dropped[0]["seed"] == 3
    assert "geometry_active.isoscore" in per_beta.seeds_dropped[0]["reason"]
    pooled = rows[("C2", "matched_beta", "isoscore_active", "all")]
    assert pooled.metric_key == "geometry_active.isoscore"  # never " | geometry.isoscore"
    assert pooled.imputed == [[3, 4.0]] and cell_text(seeds_cell(pooled)) == "5 (seed 3 at beta 4 imputed)"
    curve = rows[("C4", "matched_rate", "isoscore_active", "all")]
    assert 3 not in curve.seeds and curve.seeds_dropped[0]["seed"] == 3


def test_one_isotropy_statistic_decides_and_the_participation_ratio_is_exploratory(make_run):
    rows = _rows(_sweep(make_run))
    assert rows[("C2", "matched_beta", "isoscore_active")].test_family == "primary"
    assert rows[("C2", "matched_beta", "participation_ratio_active")].test_family == "exploratory"
    assert rows[("C4", "matched_rate", "participation_ratio_active")].verdict == "exploratory"


def test_an_effect_inside_its_bound_reads_no_effect_and_outside_it_stays_inconclusive(make_run):
    small = _rows(_sweep(make_run, rate_effect=0.0, iso_effect=(0.004, -0.006, 0.002, 0.001, -0.003)))
    iso = small[("C2", "matched_beta", "isoscore_active")]
    assert iso.verdict == "no effect" and iso.bound == 0.05 and iso.p_equivalence_adjusted < 0.05
    noisy = _rows(_sweep(make_run, rate_effect=0.0, iso_effect=(0.2, -0.15, 0.05, -0.1, 0.02)))
    assert noisy[("C2", "matched_beta", "isoscore_active")].verdict == "inconclusive"
    # without a declared bound, a null result is never "no effect"
    unbounded = ClaimsDesign(endpoints=tuple(dataclasses.replace(e, bound=None) for e in DEFAULT_DESIGN.endpoints))
    row = _rows(_sweep(make_run, rate_effect=0.0, iso_effect=(0.004, -0.006, 0.002, 0.001, -0.003)),
                design=unbounded)[("C2", "matched_beta", "isoscore_active")]
    assert row.verdict == "inconclusive" and row.p_equivalence is None and "no bound is declared" in row.verdict_reason


def test_a_declared_primary_setting_is_used_as_declared(make_run):
    runs = _sweep(make_run) + [make_run("+adversarial", r.seed, r.beta, **r.analysis) for r in _sweep(make_run)
                               if r.loss_family == "+perceptual"]
    design = ClaimsDesign(primary_setting=Setting("dsprites-64", "additive", "+adversarial"), declared_by="a test")
    payload = evaluate_claims(runs, design=design)
    assert {r.neural_family for r in payload.family_rows("primary")} == {"+adversarial"}
    assert {r.neural_family for r in payload.family_rows("secondary")} == {"+perceptual"}
    assert payload.design["primary_setting_chosen_by"] == "declared" and payload.design["declared_by"] == "a test"
    default = evaluate_claims(runs)
    assert default.design["primary_setting"]["neural_family"] == "+perceptual"
    assert default.design["primary_setting_chosen_by"].startswith("the first data set with additive +perceptual")


def test_a_design_names_its_unknown_keys_and_refuses_nonsense():
    with pytest.raises(ValueError, match=r"unknown claims design key\(s\) \['primary'\]; valid: .*primary_setting"):
        ClaimsDesign.from_json({"primary": {}})
    with pytest.raises(ValueError, match="one endpoint per claim"):
        ClaimsDesign.from_json({"endpoints": [vars(DEFAULT_DESIGN.endpoints[0])] * 2})
    with pytest.raises(ValueError, match="rate window"):
        ClaimsDesign.from_json({"rate_windows": {"natural-32": [50, 20]}})
    round_trip = json.loads(json.dumps(DEFAULT_DESIGN.to_json()))
    assert ClaimsDesign.from_json(round_trip) == DEFAULT_DESIGN and ClaimsDesign.from_json(None) is DEFAULT_DESIGN


def test_the_design_claims_json_records_reads_back_as_the_design(make_run):
    design = ClaimsDesign(primary_setting=Setting("dsprites-64"), rate_windows={"dsprites-64": (2.0, 9.0)},
                          declared_by="a test")
    record = evaluate_claims(_sweep(make_run), design=design).to_json()["design"]
    assert {"families", "primary_setting_chosen_by"} <= set(record)
    assert ClaimsDesign.from_json(json.loads(json.dumps(record))) == design
