"""results.csv: one row per run of a sweep, with its axes, the labels the report groups by, every quantity the
registry marks for it (vaelens.quantities), each distortion the analyses hold, then every other scalar key of
analysis.json under its own name (standard errors, latent_stats.*, sample sizes, flags, the `_skipped` reasons;
`analysis:seed` for the analysis' seed, since `seed` is the training's).

A pandas user reads it with `pandas.read_csv(path)`: numbers are numbers (information in nats), an empty cell is
a value the run does not have, and a text cell that would start like a spreadsheet formula is prefixed with a
single quote (vaelens.io.spreadsheet_safe), except in the columns of vaelens' own vocabulary (VOCABULARY_COLUMNS:
loss families such as +perceptual, conventions, status)."""

from __future__ import annotations

from pathlib import Path

from vaelens.io import atomic_write_csv
from vaelens.quantities import csv_quantities, distortion_keys
from vaelens.training.sweepdir import RunRecord

CSV_FIXED = ("run_id", "status", "error", "dataset", "convention", "loss_family", "beta", "seed")
VOCABULARY_COLUMNS = ("status", "convention", "loss_family", "weighting_convention", "objective.convention",
                      "objective.family")
"""Columns whose text is vaelens' own vocabulary (loss families such as +perceptual begin with "+"), written as is
so that they match claims.json; every other text cell may carry a user's string and is made spreadsheet-safe."""
ANALYSIS_PREFIX = "analysis:"
"""Marks an analysis key whose name is a fixed column's: analysis:seed is the analysis' seed, seed the training's."""


def usable_distortion_keys(records: list[RunRecord]) -> list[str]:
    """Numeric distortion keys present in at least one usable run, declared ones first."""
    return distortion_keys(record.analysis for record in records if record.usable)


def scalar_analysis_keys(records: list[RunRecord], taken: set[str]) -> list[str]:
    """Every analysis.json key holding a scalar (not a list) in at least one usable run, in the order the analyses
    list them, except those already a column of the same values (`taken`)."""
    keys: dict[str, None] = {}
    for record in records:
        if record.usable:
            keys.update((key, None) for key, value in record.analysis.items()
                        if key not in taken and not isinstance(value, (list, dict)))
    return list(keys)


def results_table(records: list[RunRecord]) -> tuple[list[str], list[list]]:
    """Header and rows of results.csv: one row per run, axes, labels, metrics (nats), distortions, other keys."""
    axis_keys = sorted({key for record in records for key in record.axes})
    distortions = usable_distortion_keys(records)
    metrics = csv_quantities()
    named = [*CSV_FIXED, *(f"axis:{key}" for key in axis_keys), *metrics, *distortions]
    others = scalar_analysis_keys(records, {*metrics, *distortions})
    rows = []
    for record in records:
        row = [record.run_id, record.status, record.error or "", record.dataset, record.convention,
               record.loss_family, record.beta, record.seed]
        row += [record.axes.get(key, "") for key in axis_keys]
        row += [record.metric(name) for name in metrics]
        row += [record.metric(key) for key in distortions]
        row += [record.analysis.get(key) for key in others]
        rows.append(["" if value is None else value for value in row])
    return [*named, *(ANALYSIS_PREFIX + key if key in CSV_FIXED else key for key in others)], rows


def write_results_csv(records: list[RunRecord], path: Path) -> Path:
    """results.csv (atomic). Information metrics are in nats; the convention column names the weighting."""
    header, rows = results_table(records)
    atomic_write_csv(Path(path), header, rows, verbatim_columns=VOCABULARY_COLUMNS)
    return Path(path)
