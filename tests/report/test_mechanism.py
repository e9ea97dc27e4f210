"""vaelens.report.mechanism: how much of a neural setting's rate difference the probe accounts for."""

import math

from vaelens.report.mechanism import RATE_ACCOUNT_COLUMNS, rate_account_rows


def _profiles(predicted, actual):
    return {"probe.predicted_profile": list(predicted), "probe.actual_profile": list(actual)}


def test_the_precision_parts_and_the_rate_are_differenced_pair_by_pair(make_run):
    e = math.exp
    runs = [
        make_run("pointwise", 0, 2.0, rate=10.0, **_profiles([1.0, 1.0], [e(-2), 1.0])),
        make_run("pointwise", 1, 2.0, rate=11.0, **_profiles([1.0, 1.0], [e(-2), 1.0])),
        # seed 0: predicted 0 -> 2 nats, measured 1 -> 2, rate +3; seed 1: predicted 0 -> 4, measured 1 -> 3, rate +5
        make_run("+perceptual", 0, 2.0, rate=13.0, **_profiles([e(-2), e(-2)], [e(-4), 1.0])),
        make_run("+perceptual", 1, 2.0, rate=16.0, **_profiles([e(-4), e(-4)], [e(-4), e(-2)])),
        # without the probe (as ldm runs are): left out
        make_run("+perceptual", 0, 8.0, rate=9.0), make_run("pointwise", 0, 8.0, rate=8.0),
    ]
    rows = rate_account_rows(runs)
    assert len(rows) == 1
    row = dict(zip(RATE_ACCOUNT_COLUMNS, rows[0]))
    assert (row["dataset"], row["convention"], row["family"], row["beta"], row["pairs"]) == (
        "dsprites-64", "additive", "+perceptual", "2", 2)
    sd = f"{math.sqrt(2):.2g}"  # the sample sd of two values 2 apart
    assert row["precision part, predicted (nats)"] == f"+3 +- {sd}"
    assert row["precision part, measured (nats)"] == f"+1.5 +- {math.sqrt(0.5):.2g}"
    assert row["rate (nats)"] == f"+4 +- {sd}"


def test_no_probed_pair_gives_no_row(make_run):
    assert rate_account_rows([make_run("pointwise", 0, 2.0), make_run("+perceptual", 0, 2.0)]) == []


def test_a_single_pair_says_so(make_run):
    runs = [make_run("pointwise", 0, 2.0, **_profiles([1.0], [1.0])),
            make_run("+perceptual", 0, 2.0, rate=12.0, **_profiles([math.exp(-2)], [math.exp(-2)]))]
    row = dict(zip(RATE_ACCOUNT_COLUMNS, rate_account_rows(runs)[0]))
    assert row["precision part, predicted (nats)"] == "+1 (n=1)" and row["rate (nats)"] == "+2 (n=1)"
