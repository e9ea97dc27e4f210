"""How much of the rate difference the mechanistic probe accounts for, per neural loss setting and beta.

A unit's KL to N(0, 1) is 1/2 (mu_j^2 + v_j - 1 - log v_j): the posterior variance v_j sets its precision
part, 1/2 log(1 / v_j) (vaelens.theory.probe.precision_rate), the spread of the means the rest. The probe
predicts v_j from the decoder Jacobian and the loss metric, so the predicted precision part is the rate the
loss's curvature implies given the decoder the model learned. Comparing a neural run with its pointwise
run (same data set, beta and seed; vaelens.report.pairing) in that quantity, predicted and measured, beside
their rate difference says whether the added curvature is what moves the rate (C1's mechanism).
"""

from __future__ import annotations

import statistics

from vaelens.losses.families import family_order
from vaelens.report.collect import RunRecord
from vaelens.report.pairing import paired_runs
from vaelens.theory.probe import precision_rate

RATE_ACCOUNT_COLUMNS = ("dataset", "convention", "family", "beta", "pairs",
                        "precision part, predicted (nats)", "precision part, measured (nats)", "rate (nats)")
RATE_ACCOUNT_TEXT = ("Neural run minus its pointwise run at the same beta and seed, mean +- sd over seeds, in nats: "
                     "the precision part of the rate, sum_j 1/2 log(1 / E_x sigma_j^2) over latent units, predicted "
                     "by the probe (sigma_j^2 = 1 / (1 + (2/beta) (J^T M J)_jj), the curvature of the run's own "
                     "loss) and measured from the encoder; beside them the rate's own difference, whose remainder "
                     "is the spread of the posterior means. Runs without the probe (ldm) are left out")


def _profile_rates(record: RunRecord) -> tuple[float, float] | None:
    """(predicted, measured) precision part of a run's rate from its probe profiles; None without them."""
    predicted, actual = (record.analysis.get(f"probe.{key}_profile") for key in ("predicted", "actual"))
    if not isinstance(predicted, list) or not isinstance(actual, list):
        return None
    return precision_rate(predicted), precision_rate(actual)


def _mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:+.3g} (n=1)"
    return f"{statistics.fmean(values):+.3g} +- {statistics.stdev(values):.2g}"


def rate_account_rows(records: list[RunRecord]) -> list[list]:
    """One row (RATE_ACCOUNT_COLUMNS) per data set, convention, neural family and beta with probed pairs."""
    rows = []
    for (dataset, convention, family, beta), pairs in sorted(paired_runs(records).items(), key=lambda item: (
            item[0][0], item[0][1], family_order(item[0][2]), item[0][2], item[0][3])):
        predicted, measured, rate = [], [], []
        for neural, baseline in pairs.values():
            accounts = _profile_rates(neural), _profile_rates(baseline)
            rates = neural.metric("rate"), baseline.metric("rate")
            if None in accounts or None in rates:
                continue
            predicted.append(accounts[0][0] - accounts[1][0])
            measured.append(accounts[0][1] - accounts[1][1])
            rate.append(rates[0] - rates[1])
        if rate:
            rows.append([dataset, convention, family, f"{beta:g}", len(rate), _mean_sd(predicted), _mean_sd(measured),
                         _mean_sd(rate)])
    return rows
