"""The mechanistic probe in the report: its statistics per loss setting, and how much of the rate difference it
accounts for, per neural loss setting and beta.

A unit's KL to N(0, 1) is 1/2 (mu_j^2 + v_j - 1 - log v_j): the posterior variance v_j sets its precision
part, 1/2 log(1 / v_j) (vaelens.theory.probe.precision_rate), the spread of the means the rest. The probe
predicts v_j from the decoder Jacobian and the loss metric, so the predicted precision part is the rate the
loss's curvature implies given the decoder the model learned. Comparing a neural run with its pointwise
run (same data set, beta and seed; vaelens.report.pairing) in that quantity, predicted and measured, beside
their rate difference says whether the added curvature is what moves the rate (C1's mechanism).
"""

from __future__ import annotations

from vaelens.losses.families import family_order
from vaelens.report.model import Table
from vaelens.report.pairing import paired_runs
from vaelens.report.statistics import mean_and_sd
from vaelens.theory.probe import precision_rate
from vaelens.training.sweepdir import RunRecord

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
    mean, sd = mean_and_sd(values)
    return f"{mean:+.3g} (n=1)" if sd is None else f"{mean:+.3g} +- {sd:.2g}"


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


PROBE_STATISTICS = ("pearson_log", "spearman_log", "profile_pearson_log", "median_log_ratio", "curvature_spread",
                    "curvature_cv")
"""probe.* numbers of analysis.json in the probe table."""
PROBE_COLUMNS = ("dataset", "family", "convention", "runs", *PROBE_STATISTICS)
PROBE_TEXT = ("Probe statistics per loss setting, mean +- sd over its runs (all betas and seeds); correlations of log "
              "predicted with log actual posterior variance (over image-unit pairs; profile: over units), median "
              "log(actual / predicted), and the spread (normalised entropy, 1 = even) and coefficient of variation of "
              "the curvature profile.")


def probe_runs(records: list[RunRecord]) -> list[RunRecord]:
    """Usable runs whose analysis holds the mechanistic probe's profiles."""
    return [record for record in records
            if record.usable and isinstance(record.analysis.get("probe.actual_profile"), list)]


def _mean_sd_text(runs: list[RunRecord], key: str) -> str:
    values = [value for value in (run.metric(key) for run in runs) if value is not None]
    if not values:
        return "n/a"
    mean, sd = mean_and_sd(values)
    return f"{mean:.3g} (n=1)" if sd is None else f"{mean:.3g} +- {sd:.2g} (n={len(values)})"


def probe_rows(probed: list[RunRecord]) -> list[list]:
    """Per data set, loss family and convention (PROBE_COLUMNS): the probe statistics, mean +- sd over runs."""
    groups: dict[tuple, list[RunRecord]] = {}
    for record in probed:
        groups.setdefault((record.dataset, record.loss_family, record.convention), []).append(record)
    rows = []
    for (dataset, family, convention), runs in sorted(groups.items(), key=lambda item: (
            item[0][0], family_order(item[0][1]), item[0][1], item[0][2])):
        rows.append([dataset, family, convention, len(runs), *(_mean_sd_text(runs, f"probe.{name}")
                                                               for name in PROBE_STATISTICS)])
    return rows


def probe_table(records: list[RunRecord]) -> Table | None:
    rows = probe_rows(probe_runs(records))
    return Table(list(PROBE_COLUMNS), rows, intro=PROBE_TEXT) if rows else None


def rate_account_table(records: list[RunRecord]) -> Table | None:
    rows = rate_account_rows(records)
    return Table(list(RATE_ACCOUNT_COLUMNS), rows, intro=f"{RATE_ACCOUNT_TEXT}.") if rows else None
