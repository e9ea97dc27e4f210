"""Read a sweep directory (sweep.json + one folder per run) into flat run records, and write results.csv.

A record joins what the sweep says about a run (axes, status, error) with its resolved config,
its trainer summary and its analysis, plus the derived labels the report groups by: data set,
weighting convention, loss family, beta and seed.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from vaelens.io import atomic_write_text, read_json
from vaelens.losses.families import FAMILIES, convention_label, loss_family
from vaelens.training.rundir import RunDirectory

LOSS_FAMILIES = FAMILIES
"""Loss families in display order (vaelens.losses.families owns them)."""

METRIC_KEYS = {
    "rate": ("rate",),
    "mutual_information": ("mutual_information",),
    "active_units": ("active_units",),
    "isoscore_active": ("geometry_active.isoscore", "geometry.isoscore"),
    "participation_ratio_active": ("geometry_active.participation_ratio", "geometry.participation_ratio"),
    "isoscore": ("geometry.isoscore",),
    "effective_rank": ("geometry.effective_rank",),
    "variance_entropy": ("posterior_variance.normalized_entropy",),
    "variance_cv": ("posterior_variance.coefficient_of_variation",),
    "variance_participation_ratio": ("posterior_variance.participation_ratio",),
}
"""Report metric -> analysis.json keys to try in order. Geometry over active units falls back to all
units when a run has fewer than two active units (its analysis then skips the active view)."""

SATURATED = "saturated: I(x;z) is within 0.5 nats of log N"
"""Why no verdict is drawn from a saturated I(x; z) estimate: near log N it is a floor, not an estimate."""
BOUNDED_BY_SAMPLE = "bounded by sample: N <= d, so PR and IsoScore are capped by the sample size"
"""Why no verdict is drawn from a geometry statistic of N points in d >= N dimensions."""

DISTORTION_METRICS = {
    "distortion.mse": ("MSE per pixel", "lower"),
    "distortion.psnr": ("PSNR (dB)", "higher"),
    "distortion.ssim": ("SSIM", "higher"),
    "distortion.ms_ssim": ("MS-SSIM", "higher"),
    "distortion.feature": ("feature distance", "lower"),
}
"""Distortion keys of analysis.json with a label and which direction is better. LPIPS keys and the
run's own training perceptual distance (distortion.training_*) are picked up by prefix."""


@dataclass
class RunRecord:
    """One run of a sweep, with everything the report needs."""

    run_id: str
    """The run's id in sweep.json."""
    run_dir: Path
    """Absolute path of the run directory."""
    axes: dict
    """The sweep axes that distinguish this run (dotted key -> value)."""
    status: str
    """finished | failed | pending (from sweep.json)."""
    error: str | None
    """Why the run failed, when it did."""
    config: dict = field(default_factory=dict)
    """The run's resolved config (nested, as in config.yaml); empty when the file is missing."""
    summary: dict = field(default_factory=dict)
    """summary.json of the trainer; empty when missing."""
    analysis: dict = field(default_factory=dict)
    """analysis.json; empty when the run was not analysed."""

    def setting(self, dotted: str, default=None):
        """A config value by dotted key, e.g. 'loss.beta'."""
        value = self.config
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                return default
            value = value[part]
        return value

    @property
    def dataset(self) -> str:
        name = self.setting("data.name", "unknown")
        size = self.setting("data.image_size")
        return f"{name}-{size}" if size else str(name)

    @property
    def convention(self) -> str:
        """The weighting setting (vaelens.losses.families.convention_label): the convention, marked when the
        pixel term's sigma is learned."""
        convention = self.summary.get("weighting_convention") or self.setting("loss.convention", "unknown")
        return convention_label(convention, self.setting("loss.likelihood"))

    @property
    def beta(self) -> float | None:
        value = self.setting("loss.beta")
        return float(value) if value is not None else None

    @property
    def seed(self) -> int | None:
        return self.setting("train.seed")

    @property
    def loss_family(self) -> str:
        return loss_family(self.config)

    def metric(self, name: str) -> float | None:
        """A report metric (METRIC_KEYS) or a raw analysis key; None when absent or not finite."""
        key = self.metric_key(name)
        return None if key is None else float(self.analysis[key])

    def metric_key(self, name: str) -> str | None:
        """Which analysis.json key `metric(name)` reads (for the record in claims.json); None when none holds
        a finite number."""
        for key in METRIC_KEYS.get(name, (name,)):
            value = self.analysis.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                return key
        return None

    def estimate_limit(self, name: str) -> str | None:
        """Why `metric(name)` sits at a limit of its estimator (SATURATED, BOUNDED_BY_SAMPLE), else None.
        Read from the analysis' own flags: mutual_information_saturated, <geometry view>.bounded_by_sample
        of the view the metric was read from. Analyses older than these flags have none."""
        key = self.metric_key(name)
        if key == "mutual_information" and self.analysis.get("mutual_information_saturated") is True:
            return SATURATED
        view = (key or "").rpartition(".")[0]
        if view in ("geometry", "geometry_active") and self.analysis.get(f"{view}.bounded_by_sample") is True:
            return BOUNDED_BY_SAMPLE
        return None

    @property
    def usable(self) -> bool:
        """Finished and analysed: the only runs that enter figures and claims."""
        return self.status == "finished" and bool(self.analysis)


def load_sweep(sweep_dir: str | Path) -> list[RunRecord]:
    """Every run listed in SWEEP_DIR/sweep.json, with its config, summary and analysis where present."""
    sweep_dir = Path(sweep_dir).expanduser()
    index_path = sweep_dir / "sweep.json"
    if not index_path.is_file():
        raise FileNotFoundError(f"{sweep_dir} is not a sweep directory (no sweep.json); "
                                "give the --out directory of `vaelens sweep` or `vaelens reproduce`")
    index = read_json(index_path)
    runs = index.get("runs")
    if not isinstance(runs, list):
        raise ValueError(f"{index_path} has no 'runs' list; was it written by `vaelens sweep`?")
    records = []
    for position, entry in enumerate(runs):
        missing = [key for key in ("id", "dir", "status") if key not in entry]
        if missing:
            raise ValueError(f"{index_path}: run #{position} lacks {', '.join(missing)}")
        directory = RunDirectory(sweep_dir / entry["dir"])
        records.append(RunRecord(
            run_id=str(entry["id"]), run_dir=directory.path, axes=dict(entry.get("axes") or {}),
            status=str(entry["status"]), error=entry.get("error"),
            config=directory.read_config_dict() if directory.is_run else {},
            summary=directory.read_summary() or {}, analysis=directory.read_analysis() or {}))
    return records


NOT_DISTORTIONS = ("distortion.mse_sum", "distortion.num_images", "distortion.seed")
"""distortion.* keys that are not a distortion metric: a per-image sum duplicating mse, and what was scored."""


def distortion_keys(records: list[RunRecord]) -> list[str]:
    """Numeric distortion keys present in at least one usable run, known ones first."""
    present = {key for record in records if record.usable for key, value in record.analysis.items()
               if key.startswith("distortion.") and isinstance(value, (int, float)) and key not in NOT_DISTORTIONS}
    known = [key for key in DISTORTION_METRICS if key in present]
    return known + sorted(present - set(known))


def distortion_label(key: str) -> tuple[str, str]:
    """(label, better direction) of a distortion key; LPIPS and perceptual distances are 'lower'."""
    if key in DISTORTION_METRICS:
        return DISTORTION_METRICS[key]
    name = key.removeprefix("distortion.")
    prefix, separator, source = name.partition(":")
    if separator and "/" in source:  # a feature network given as a file: its name is enough for a label
        name = f"{prefix}:{Path(source).name}"
    return name, "lower"


CSV_FIXED = ("run_id", "status", "error", "dataset", "convention", "loss_family", "beta", "seed")
CSV_METRICS = ("rate", "mutual_information", "active_units", "isoscore", "isoscore_active",
               "participation_ratio_active", "effective_rank", "variance_entropy", "variance_cv",
               "variance_participation_ratio")


def results_table(records: list[RunRecord]) -> tuple[list[str], list[list]]:
    """Header and rows of results.csv: one row per run, axes, labels, metrics (nats) and distortions."""
    axis_keys = sorted({key for record in records for key in record.axes})
    distortions = distortion_keys(records)
    header = [*CSV_FIXED, *(f"axis:{key}" for key in axis_keys), *CSV_METRICS, *distortions]
    rows = []
    for record in records:
        row = [record.run_id, record.status, record.error or "", record.dataset, record.convention,
               record.loss_family, record.beta, record.seed]
        row += [record.axes.get(key, "") for key in axis_keys]
        row += [record.metric(name) for name in CSV_METRICS]
        row += [record.metric(key) for key in distortions]
        rows.append(["" if value is None else value for value in row])
    return header, rows


def write_results_csv(records: list[RunRecord], path: Path) -> Path:
    """results.csv (atomic). Information metrics are in nats; the convention column names the weighting."""
    header, rows = results_table(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(Path(path), buffer.getvalue())
    return Path(path)
