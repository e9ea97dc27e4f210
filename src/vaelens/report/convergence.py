"""Did a sweep's runs reach their plateau? Per loss setting, the runs that meet the convergence rule of
summary.json (vaelens.training.convergence), for the report's Training section and the study document."""

from __future__ import annotations

import statistics

from vaelens.losses.families import family_order
from vaelens.report.collect import RunRecord

COLUMNS = ("dataset", "family", "convention", "runs", "converged", "median improvement", "largest improvement")


def judged_runs(records: list[RunRecord]) -> list[RunRecord]:
    """The usable runs whose summary has a convergence verdict."""
    return [record for record in records if record.usable
            and (record.summary.get("convergence") or {}).get("converged") is not None]


def convergence_rule(records: list[RunRecord]) -> str | None:
    judged = judged_runs(records)
    return judged[0].summary["convergence"]["rule"] if judged else None


def convergence_rows(records: list[RunRecord]) -> list[list]:
    """One row per data set, loss family and convention (COLUMNS): runs judged, converged, the median and
    largest relative improvement over the last 20% of steps."""
    groups: dict[tuple, list[RunRecord]] = {}
    for record in judged_runs(records):
        groups.setdefault((record.dataset, record.loss_family, record.convention), []).append(record)
    rows = []
    for (dataset, family, convention), runs in sorted(groups.items(), key=lambda item: (
            item[0][0], family_order(item[0][1]), item[0][1], item[0][2])):
        improvements = [run.summary["convergence"]["relative_improvement"] for run in runs]
        converged = sum(bool(run.summary["convergence"]["converged"]) for run in runs)
        rows.append([dataset, family, convention, len(runs), converged, f"{statistics.median(improvements):+.2%}",
                     f"{max(improvements):+.2%}"])
    return rows
