"""results.csv: one row per run of a sweep, with its axes, the labels the report groups by, and every quantity
the registry marks for it (vaelens.quantities), then each distortion the analyses hold."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from vaelens.io import atomic_write_text
from vaelens.quantities import csv_quantities, distortion_keys
from vaelens.training.sweepdir import RunRecord

CSV_FIXED = ("run_id", "status", "error", "dataset", "convention", "loss_family", "beta", "seed")


def usable_distortion_keys(records: list[RunRecord]) -> list[str]:
    """Numeric distortion keys present in at least one usable run, declared ones first."""
    return distortion_keys(record.analysis for record in records if record.usable)


def results_table(records: list[RunRecord]) -> tuple[list[str], list[list]]:
    """Header and rows of results.csv: one row per run, axes, labels, metrics (nats) and distortions."""
    axis_keys = sorted({key for record in records for key in record.axes})
    distortions = usable_distortion_keys(records)
    metrics = csv_quantities()
    header = [*CSV_FIXED, *(f"axis:{key}" for key in axis_keys), *metrics, *distortions]
    rows = []
    for record in records:
        row = [record.run_id, record.status, record.error or "", record.dataset, record.convention,
               record.loss_family, record.beta, record.seed]
        row += [record.axes.get(key, "") for key in axis_keys]
        row += [record.metric(name) for name in metrics]
        row += [record.metric(key) for key in distortions]
        rows.append(["" if value is None else value for value in row])
    return header, rows


def write_results_csv(records: list[RunRecord], path: Path) -> Path:
    """results.csv (atomic). Information metrics are in nats; the convention column names the weighting."""
    header, rows = results_table(records)
    atomic_write_text(Path(path), csv_text(header, rows))
    return Path(path)


def csv_text(header: list[str], rows: list[list]) -> str:
    """A CSV file's text: the header, then the rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
