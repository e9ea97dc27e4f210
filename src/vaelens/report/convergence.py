"""Did a sweep's runs reach their plateau? Per loss setting, the runs that meet the convergence rule
(vaelens.training.convergence), for the report's Training section and the study document.

Each run's figure is recomputed from its metrics.jsonl where the log is there, so runs trained before the
figure gained its standard error (or its interval means) are judged by the same code as new ones; a run
without its log falls back to the figure in its summary.json. Beside it, the paired plateau check
(vaelens.analysis.plateau) where the runs have its plateau.json: the objective at two checkpoints on the
same images and noise, free of the logged figure's batch scatter."""

from __future__ import annotations

import statistics

from vaelens.analysis.plateau import RULE as PLATEAU_RULE
from vaelens.losses.families import family_order
from vaelens.losses.objective import objective_constant
from vaelens.report.model import Paragraph, Table
from vaelens.training.convergence import NO_ORIGIN, RULE, convergence
from vaelens.training.sweepdir import RunRecord

COLUMNS = ("dataset", "family", "convention", "runs", "converged", "median improvement", "median standard error",
           "largest improvement", "median improvement (nats/image)")


def run_convergence(record: RunRecord) -> dict:
    """The convergence figure of one run: from its log (metrics.jsonl records) where it has one, measured from
    the objective's origin (its parameter-free constant, from the run's config and image shape); else
    summary.json's."""
    steps = record.setting("train.steps")
    shape = (record.summary.get("data") or {}).get("image_shape")
    if steps and shape and record.config is not None and record.log:
        origin = objective_constant(record.config.loss, tuple(shape))
        return convergence(record.log, int(steps), origin=origin)
    return record.summary.get("convergence") or {}


def convergence_rows(records: list[RunRecord]) -> list[list]:
    """One row per data set, loss family and convention (COLUMNS) over the usable runs with a verdict:
    runs, converged runs, the median improvement over the last 20% of steps and its median standard
    error, the largest improvement."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        if record.usable:
            figure = run_convergence(record)
            if figure.get("converged") is not None:
                groups.setdefault((record.dataset, record.loss_family, record.convention), []).append(figure)
    rows = []
    for (dataset, family, convention), figures in sorted(groups.items(), key=lambda item: (
            item[0][0], family_order(item[0][1]), item[0][1], item[0][2])):
        improvements = [figure["relative_improvement"] for figure in figures]
        nats = [figure["improvement_nats"] for figure in figures if figure.get("improvement_nats") is not None]
        # A learned scale leaves the objective without an origin: its relative figures are on the raw value.
        no_origin = any("origin" in figure and figure["origin"] is None for figure in figures)
        errors = [figure["standard_error"] for figure in figures if figure.get("standard_error") is not None]
        rows.append([dataset, family, convention, len(figures), sum(bool(f["converged"]) for f in figures),
                     f"{statistics.median(improvements):+.2%}",
                     f"{statistics.median(errors):.2%}" if errors else "n/a", f"{max(improvements):+.2%}",
                     (f"{statistics.median(nats):+.1f}" if nats else "n/a") + (" (no origin)" if no_origin else "")])
    return rows


def convergence_text(rows: list[list]) -> str:
    """One sentence: the rule and how many runs meet it."""
    return (f"Convergence: {RULE}. {sum(row[4] for row in rows)} of {sum(row[3] for row in rows)} runs converged; "
            "the standard error of each improvement comes from the scatter of the logged values in its two windows. "
            f"Rows marked (no origin): {NO_ORIGIN}")


PLATEAU_COLUMNS = ("dataset", "family", "convention", "runs checked", "on the plateau", "median improvement",
                   "median standard error", "largest improvement", "stretch judged")


def plateau_rows(records: list[RunRecord]) -> list[list]:
    """The paired plateau check (vaelens.analysis.plateau, each run's plateau.json) per data set, loss family
    and convention (PLATEAU_COLUMNS); runs without the record are left out."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        check = record.plateau if record.usable else None
        if check and check.get("converged") is not None:
            groups.setdefault((record.dataset, record.loss_family, record.convention), []).append(check)
    rows = []
    for (dataset, family, convention), checks in sorted(groups.items(), key=lambda item: (
            item[0][0], family_order(item[0][1]), item[0][1], item[0][2])):
        improvements = [check["relative_improvement"] for check in checks]
        stretches = sorted({f"{check['stretch']:.0%}" for check in checks})
        no_origin = any(check.get("origin", 0.0) is None for check in checks)
        rows.append([dataset, family, convention, len(checks), sum(bool(check["converged"]) for check in checks),
                     f"{statistics.median(improvements):+.2%}" + (" (no origin)" if no_origin else ""),
                     f"{statistics.median(check['standard_error'] for check in checks):.2%}",
                     f"{max(improvements):+.2%}", ", ".join(stretches)])
    return rows


def plateau_text(rows: list[list]) -> str:
    """One sentence: the paired check's rule and how many runs meet it."""
    return (f"Paired plateau check: {PLATEAU_RULE}. {sum(row[4] for row in rows)} of {sum(row[3] for row in rows)} "
            "runs are on the plateau; each standard error is over the images, the posterior noise being shared "
            "between the two checkpoints. A stretch above 20% judges more steps than the rule's last 20%: "
            "a stricter test. The adversarial term is left out (its discriminator moves between the checkpoints)")


NO_CONVERGENCE = "no run has a convergence figure (a log with records near 80% and 100% of its steps)"
NO_PLATEAU_CHECK = "No run has a paired plateau check: run `vaelens plateau STUDY_DIR`."


def convergence_table(records: list[RunRecord]) -> Table | Paragraph:
    """Per loss setting, the runs that meet the logged convergence rule; a note when no run has a figure."""
    rows = convergence_rows(records)
    if not rows:
        return Paragraph(NO_CONVERGENCE, role="note")
    return Table(list(COLUMNS), rows, intro=f"{convergence_text(rows)}.")


def plateau_table(records: list[RunRecord]) -> Table | None:
    """Per loss setting, the paired plateau check of the runs that have one; None when no run was checked."""
    rows = plateau_rows(records)
    return Table(list(PLATEAU_COLUMNS), rows, intro=f"{plateau_text(rows)}.") if rows else None
