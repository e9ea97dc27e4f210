"""The verdict rule, the t-interval, the pairing of runs and the claims.json schema, on constructed runs."""

import json
import math
from pathlib import Path

import pytest
from scipy import stats

from vaelens.report.claims import (
    CLAIMS,
    baseline_convention,
    evaluate_claims,
    format_claims_table,
    paired_differences,
    t_interval,
    verdict,
    write_claims,
)
from vaelens.report.collect import RunRecord


def make_run(family: str, seed: int, beta: float, convention: str = "additive", dataset: str = "dsprites",
             status: str = "finished", **metrics) -> RunRecord:
    loss = {"beta": beta, "convention": convention, "likelihood": "bernoulli",
            "perceptual": "features:dsprites-supervised" if family in ("+perceptual", "+both") else None,
            "disc_weight": 0.5 if family in ("+adversarial", "+both") else 0.0}
    config = {"data": {"name": dataset, "image_size": 64, "subset": 128}, "model": {"name": "conv64"},
              "loss": loss, "train": {"seed": seed, "steps": 10}}
    analysis = {"rate": 10.0, "mutual_information": 4.0, "geometry_active.isoscore": 0.5,
                "geometry_active.participation_ratio": 3.0, "posterior_variance.normalized_entropy": 0.8, **metrics}
    return RunRecord(f"{family}-{convention}-{beta}-{seed}", Path("/nonexistent"), {}, status, None, config,
                     {"weighting_convention": convention}, analysis)


def test_verdict_is_decided_by_the_interval_only():
    assert verdict(0.1, 0.5, +1) == "supported"
    assert verdict(0.1, 0.5, -1) == "contradicted"
    assert verdict(-0.5, -0.1, -1) == "supported"
    assert verdict(-0.5, -0.1, +1) == "contradicted"
    assert verdict(-0.1, 0.5, +1) == "inconclusive"
    assert verdict(0.0, 0.5, +1) == "inconclusive"  # touching 0 does not exclude it
    assert verdict(None, None, +1) == "inconclusive"
    with pytest.raises(ValueError, match="direction"):
        verdict(0.1, 0.2, 0)
    with pytest.raises(ValueError, match="exceeds"):
        verdict(0.3, 0.2, 1)


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


def test_pairs_match_beta_seed_and_convex_compares_with_additive_pointwise():
    runs = [make_run("pointwise", seed, beta, rate=10.0 + seed) for seed in (0, 1) for beta in (1.0, 4.0)]
    runs += [make_run("+perceptual", seed, 1.0, "convex", rate=8.0 + 2 * seed) for seed in (0, 1)]
    runs.append(make_run("+perceptual", 2, 1.0, "convex", rate=0.0))  # no pointwise seed 2: unpaired
    pairs = paired_differences(runs, "rate")
    assert pairs == {("dsprites-64", "convex", "+perceptual", 1.0): {0: -2.0, 1: -1.0}}
    assert baseline_convention("ldm") == "ldm"


def test_unfinished_or_other_dataset_runs_are_not_paired():
    runs = [make_run("pointwise", 0, 1.0), make_run("+perceptual", 0, 1.0, status="failed"),
            make_run("+perceptual", 1, 1.0, dataset="natural"), make_run("pointwise", 1, 1.0)]
    assert paired_differences(runs, "rate") == {}


def test_claims_verdicts_follow_constructed_effects(tmp_path):
    runs = []
    for seed in range(3):
        runs.append(make_run("pointwise", seed, 2.0, rate=10.0 + seed, **{"geometry_active.isoscore": 0.5}))
        # rate clearly lower (C1 supported); isoscore clearly lower (C2 contradicted); entropy noise (C3 inconclusive)
        runs.append(make_run("+perceptual", seed, 2.0, rate=8.0 + seed + 0.01 * seed,
                             **{"geometry_active.isoscore": 0.3 + 0.001 * seed,
                                "posterior_variance.normalized_entropy": 0.8 + (-0.05, 0.06, -0.02)[seed]}))
    payload = evaluate_claims(runs)
    by_claim = {(r["claim"], r["metric"]): r for r in payload["results"] if r["beta"] == "all"}
    assert by_claim[("C1", "rate")]["verdict"] == "supported"
    assert by_claim[("C1", "rate")]["effect"] == pytest.approx(-1.99)
    assert by_claim[("C2", "isoscore_active")]["verdict"] == "contradicted"
    assert by_claim[("C3", "variance_entropy")]["verdict"] == "inconclusive"
    assert by_claim[("C1", "rate")]["metric_key"] == "rate"
    assert by_claim[("C2", "isoscore_active")]["metric_key"] == "geometry_active.isoscore"
    path = write_claims(payload, tmp_path / "claims.json")
    assert json.loads(path.read_text()) == payload
    assert "supported" in format_claims_table(payload)


def test_claims_schema_names_units_convention_and_interval():
    runs = [make_run(family, 0, beta) for family in ("pointwise", "+adversarial") for beta in (1.0, 2.0)]
    payload = evaluate_claims(runs)
    assert payload["version"] == 1 and payload["units"] == "nats" and payload["confidence"] == 0.95
    assert set(payload["claims"]) == {claim.claim_id for claim in CLAIMS}
    keys = {"claim", "metric", "metric_key", "metric_units", "dataset", "convention", "baseline_convention",
            "neural_family", "beta", "effect", "ci_low", "ci_high", "n_pairs", "seeds", "predicted_sign", "verdict"}
    assert payload["results"] and all(set(result) == keys for result in payload["results"])
    pooled = [r for r in payload["results"] if r["beta"] == "all"]
    assert len(pooled) == sum(len(claim.metrics) for claim in CLAIMS)
    # one seed: no interval, so never a verdict other than inconclusive
    assert all(r["n_pairs"] == 1 and r["ci_low"] is None and r["verdict"] == "inconclusive" for r in pooled)
    assert {r["metric_units"] for r in pooled if r["claim"] == "C1"} == {"nats"}


def test_no_pairs_gives_an_empty_table_that_says_why():
    payload = evaluate_claims([make_run("pointwise", 0, 1.0)])
    assert payload["results"] == []
    assert "no neural-loss run" in format_claims_table(payload)


def test_a_run_with_another_result_setting_is_not_a_baseline():
    # An SSIM run (or a bf16, grad-clipped or metric-weighted one) is pointwise by family but not the
    # baseline of a plain neural run: every result key outside the compared terms must match.
    neural = make_run("+perceptual", 0, 1.0, rate=7.0)
    for section, key, value in (("loss", "ssim_weight", 0.5), ("train", "bf16", True),
                                ("train", "grad_clip", 1.0), ("loss", "metric", "M.npy")):
        other = make_run("pointwise", 0, 1.0, rate=10.0)
        other.config[section][key] = value
        assert paired_differences([other, neural], "rate") == {}, key
    plain = make_run("pointwise", 0, 1.0, rate=10.0)
    assert paired_differences([plain, neural], "rate") == {("dsprites-64", "additive", "+perceptual", 1.0): {0: -3.0}}
