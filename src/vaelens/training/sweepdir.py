"""The sweep directory: the one owner of its index (sweep.json) and of its runs read back as typed records.

    SWEEP_DIR/sweep.json     the index: the spec, one entry per run (id, dir, axes, status, error, seconds) and
                             the claims policy (whether runs still improving are left out of the claims)
    SWEEP_DIR/spec.yaml      the spec as it was run (vaelens.sweep)
    SWEEP_DIR/runs/<id>/     one run directory per run (vaelens.training.rundir owns its format)
    SWEEP_DIR/results.csv, claims.json, report.html    the report (vaelens.report)

A study directory (vaelens.study) is a sweep directory whose index lists the runs of its sub-sweeps, with
paths relative to it. Every reader goes through `SweepDirectory`: `load()` reads the index and each run's
config, summary, analysis and plateau check once, into `RunRecord`s that carry everything the report needs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from vaelens import config as config_module
from vaelens.config import RunConfig
from vaelens.io import atomic_write_json, read_json
from vaelens.losses.families import convention_label, loss_family
from vaelens.quantities import key_holding, value_of
from vaelens.training.rundir import RunDirectory

INDEX_FILE = "sweep.json"
UNITS = {"seconds": "wall-clock seconds of the last session that ran it"}
SATURATED = "saturated: I(x;z) is within 0.5 nats of log N"
"""Why no verdict is drawn from a saturated I(x; z) estimate: near log N it is a floor, not an estimate."""
BOUNDED_BY_SAMPLE = "bounded by sample: N <= d, so PR and IsoScore are capped by the sample size"
"""Why no verdict is drawn from a geometry statistic of N points in d >= N dimensions."""


@dataclass
class IndexEntry:
    """One run as the index lists it."""

    run_id: str
    """Its id: the config hash (a study prefixes the sub-sweep's name, e.g. natural/<hash>)."""
    dir: str
    """Its run directory, relative to the sweep directory."""
    axes: dict = field(default_factory=dict)
    """The grid and zip values (dotted key -> value) that define it within the sweep."""
    status: str = "pending"
    """finished | failed | pending."""
    error: str | None = None
    """Why it failed, when it did."""
    seconds: float | None = None
    """Wall time of the last session that trained and analysed it (None: never timed)."""

    def to_json(self) -> dict:
        return {"id": self.run_id, "dir": self.dir, "axes": self.axes, "status": self.status, "error": self.error,
                "seconds": self.seconds}


@dataclass
class SweepIndex:
    """What sweep.json holds."""

    spec: dict
    """The spec the runs came from (a study: {"study": data set -> spec})."""
    runs: list[IndexEntry]
    """Every run, in sweep order."""
    leave_out_still_improving: bool = True
    """Whether the claims leave out runs the paired plateau check found still improving (a demonstration too
    short to reach the plateau keeps them, and its claims say they are a smoke test)."""
    design: dict | None = None
    """The claims' design the sweep declared (vaelens.claims_design, as JSON); None: the default design."""

    def to_json(self) -> dict:
        return {"spec": self.spec, "runs": [entry.to_json() for entry in self.runs], "units": UNITS,
                "claims": {"leave_out_still_improving": self.leave_out_still_improving, "design": self.design}}


@dataclass
class RunRecord:
    """One run of a sweep, with everything the report needs, read once."""

    run_id: str
    """The run's id in the index."""
    run_dir: Path
    """Absolute path of the run directory."""
    axes: dict
    """The sweep axes that distinguish this run (dotted key -> value)."""
    status: str
    """finished | failed | pending (from the index)."""
    error: str | None = None
    """Why the run failed, when it did."""
    config: RunConfig | None = None
    """The run's resolved config; None when the run has none yet."""
    summary: dict = field(default_factory=dict)
    """summary.json of the trainer; empty when missing."""
    analysis: dict = field(default_factory=dict)
    """analysis.json; empty when the run was not analysed."""
    plateau: dict | None = None
    """plateau.json, the paired plateau check's record; None when the run was not checked."""
    seconds: float | None = None
    """Wall time the index records for it."""

    def setting(self, dotted: str, default=None):
        """A config value by dotted key, e.g. 'loss.beta'."""
        value = self.config
        for part in dotted.split("."):
            if value is None or not hasattr(value, part):
                return default
            value = getattr(value, part)
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
        return loss_family(self.config) if self.config is not None else "pointwise"

    def metric(self, name: str) -> float | None:
        """A quantity (vaelens.quantities) or a raw analysis key; None when absent or not finite."""
        return value_of(self.analysis, name)

    def metric_key(self, name: str) -> str | None:
        """Which analysis.json key `metric(name)` reads (for the record in claims.json)."""
        return key_holding(self.analysis, name)

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

    @property
    def still_improving(self) -> bool:
        """The paired plateau check found the run still improving (its plateau.json says converged false)."""
        return bool(self.plateau) and self.plateau.get("converged") is False

    @functools.cached_property
    def log(self) -> list[dict]:
        """metrics.jsonl's records (read when first asked for)."""
        return RunDirectory(self.run_dir).read_metrics()


@dataclass
class Sweep:
    """A sweep directory read back: its index and its runs."""

    path: Path
    """The sweep directory."""
    index: SweepIndex
    """sweep.json."""
    runs: list[RunRecord]
    """One record per index entry, in index order."""

    @property
    def usable(self) -> list[RunRecord]:
        return [run for run in self.runs if run.usable]


class SweepDirectory:
    """The index and the runs of one sweep (or study) directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.index_path = self.path / INDEX_FILE

    def exists(self) -> bool:
        return self.index_path.is_file()

    def read_index(self) -> SweepIndex:
        """sweep.json, checked: a missing file or a malformed entry is an error naming it."""
        if not self.exists():
            raise FileNotFoundError(f"{self.path} is not a sweep directory (no {INDEX_FILE}); give the --out "
                                    "directory of `vaelens sweep` or `vaelens reproduce`")
        index = read_json(self.index_path)
        runs = index.get("runs") if isinstance(index, dict) else None
        if not isinstance(runs, list):
            raise ValueError(f"{self.index_path} has no 'runs' list; was it written by `vaelens sweep`?")
        entries = []
        for position, entry in enumerate(runs):
            missing = [key for key in ("id", "dir", "status") if not isinstance(entry, dict) or key not in entry]
            if missing:
                raise ValueError(f"{self.index_path}: run #{position} lacks {', '.join(missing)}")
            entries.append(IndexEntry(str(entry["id"]), str(entry["dir"]), dict(entry.get("axes") or {}),
                                      str(entry["status"]), entry.get("error"), entry.get("seconds")))
        claims = index.get("claims") or {}
        return SweepIndex(index.get("spec") or {}, entries, bool(claims.get("leave_out_still_improving", True)),
                          claims.get("design"))

    def write_index(self, index: SweepIndex) -> None:
        atomic_write_json(self.index_path, index.to_json())

    def run_directory(self, entry: IndexEntry) -> RunDirectory:
        return RunDirectory(self.path / entry.dir)

    def load(self) -> Sweep:
        """The index and every run it lists, each with its config, summary, analysis and plateau check."""
        index = self.read_index()
        return Sweep(self.path, index, [self._record(entry) for entry in index.runs])

    def _record(self, entry: IndexEntry) -> RunRecord:
        directory = self.run_directory(entry)
        config = None
        if directory.is_run:
            try:
                config = config_module.from_dict(directory.read_config_dict())
            except config_module.ConfigError as error:
                raise config_module.ConfigError(f"{directory.config_path}: {error}") from error
        return RunRecord(entry.run_id, directory.path, entry.axes, entry.status, entry.error, config,
                         directory.read_summary() or {}, directory.read_analysis() or {}, directory.read_plateau(),
                         entry.seconds)
