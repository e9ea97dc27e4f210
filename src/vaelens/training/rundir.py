"""The run directory: the one owner of its on-disk format, for every reader and writer.

    RUN_DIR/config.yaml        the fully resolved config (written first: it makes a folder a run)
    RUN_DIR/checkpoints/       step_<N>.safetensors + step_<N>.json (checkpoint.py's format)
    RUN_DIR/metrics.jsonl      one JSON record per logged step
    RUN_DIR/images/            reconstructions.png and samples.png of the latest checkpoint
    RUN_DIR/summary.json       status (finished / diverged / failed), evaluation, context
    RUN_DIR/analysis.json      `vaelens analyze`'s flat results, figures in RUN_DIR/analysis/
    RUN_DIR/plateau.json       the paired plateau check of a finished run (vaelens.analysis.plateau)
    RUN_DIR/tensorboard/       TensorBoard events, when train.tensorboard is on

A run's status is "new" (no such folder, or an empty one), "foreign" (a non-empty folder that is not
a vaelens run: never written to), "incomplete" (a config but no summary: killed, or training now),
or the summary's "finished", "diverged" or "failed". A resumed run restarts from its newest good
checkpoint, falling back past a corrupt newer one (which is renamed `*.corrupt`, kept for
inspection), and its metrics.jsonl is trimmed to that step (to nothing without a checkpoint), so the
log never repeats steps. A damaged line of metrics.jsonl (not valid JSON) is skipped by every reader and, when
a resume rewrites the log, moved to metrics.jsonl.corrupt (said in one line): it never costs the records after
it. A torn last line (a write cut off by a kill) is dropped without a word.

One writer at a time: `lock()` takes the folder's exclusive lock (vaelens.locks) for the life of a training run
or an analysis writing into it, and vaelens never follows a symbolic link among the paths it writes, renames
or prunes inside a run directory (`check_no_symlinks`); the run directory itself may be a link.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from vaelens import config as config_module
from vaelens.config import RunConfig
from vaelens.io import (
    atomic_write_json,
    atomic_write_text,
    is_stale_staging,
    is_stale_temporary,
    read_json,
    refuse_symlinks,
    remove_stale_temporaries,
)
from vaelens.locks import LOCK_FILE, folder_lock
from vaelens.training.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CHECKPOINT_FOLDER = "checkpoints"
IMAGE_FOLDER = "images"
ANALYSIS_FILE = "analysis.json"
ANALYSIS_FOLDER = "analysis"
PLATEAU_FILE = "plateau.json"
TENSORBOARD_FOLDER = "tensorboard"
CORRUPT_METRICS_FILE = METRICS_FILE + ".corrupt"
WRITTEN_ENTRIES = (CONFIG_FILE, METRICS_FILE, CORRUPT_METRICS_FILE, SUMMARY_FILE, CHECKPOINT_FOLDER, IMAGE_FOLDER,
                   ANALYSIS_FILE, ANALYSIS_FOLDER, PLATEAU_FILE, TENSORBOARD_FOLDER)
"""Every path vaelens writes, renames or prunes in a run directory: none of them may be a symbolic link."""
STATUSES = ("new", "foreign", "incomplete", "finished", "diverged", "failed")

logger = logging.getLogger("vaelens")


class RunExistsError(FileExistsError):
    """The output directory already holds a run and resume was not asked for."""


class NotARunError(FileExistsError):
    """A folder that holds files but is not a vaelens run: vaelens will not write into it."""


@dataclass
class GoodCheckpoint:
    """The newest checkpoint that verified, and what was skipped on the way to it."""

    step: int
    """Training step the checkpoint was written at."""
    tensors: dict
    """Its tensors (safetensors), verified against the recorded SHA-256."""
    meta: dict
    """Its JSON metadata."""
    skipped: list[str] = field(default_factory=list)
    """One line per newer checkpoint that could not be used, with the reason."""


class RunDirectory:
    """Paths, status, config, checkpoints, metrics and summary of one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.config_path = self.path / CONFIG_FILE
        self.metrics_path = self.path / METRICS_FILE
        self.summary_path = self.path / SUMMARY_FILE
        self.checkpoint_folder = self.path / CHECKPOINT_FOLDER
        self.image_folder = self.path / IMAGE_FOLDER
        self.analysis_path = self.path / ANALYSIS_FILE
        self.analysis_folder = self.path / ANALYSIS_FOLDER
        self.plateau_path = self.path / PLATEAU_FILE
        self.tensorboard_folder = self.path / TENSORBOARD_FOLDER

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    # --- what the folder is ---------------------------------------------------------------------
    @property
    def is_run(self) -> bool:
        return self.config_path.is_file()

    def _foreign_entries(self) -> list[str]:
        """Names in a folder that is not a run (temporaries of an interrupted write do not count)."""
        if not self.path.is_dir() or self.is_run:
            return []
        return sorted(entry.name for entry in self.path.iterdir()
                      if not is_stale_temporary(entry) and not is_stale_staging(entry) and entry.name != LOCK_FILE)

    def status(self) -> str:
        """One of STATUSES (see the module docstring)."""
        if not self.is_run:
            return "foreign" if self._foreign_entries() else "new"
        try:
            summary = self.read_summary()
        except ValueError:  # not JSON: not a summary a finished run writes (they are written atomically)
            summary = None
        if summary is None:
            return "incomplete"
        status = summary.get("status")
        return status if status in ("finished", "diverged", "failed") else "incomplete"

    def check_usable(self, resume: bool) -> None:
        """Raise unless a training run may be written here: refuses a foreign folder, and an existing
        run unless `resume`."""
        if self.path.exists() and not self.path.is_dir():
            raise NotARunError(f"{self.path} is a file, not a run directory; choose another --out")
        foreign = self._foreign_entries()
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise NotARunError(f"{self.path} is not empty and is not a vaelens run (it holds {shown}; no "
                               f"{CONFIG_FILE}); vaelens will not write into it. Choose a new or empty --out")
        if self.is_run and not resume:
            raise RunExistsError(f"{self.path} already holds a run; pass --resume (resume=True) to continue it, "
                                 "or choose another output directory")

    def check_no_symlinks(self) -> None:
        """Refuse (one line, naming the link) a symbolic link among the paths vaelens writes here: writes,
        renames and deletions stay inside the run directory."""
        refuse_symlinks(self.path, WRITTEN_ENTRIES, "run directory")

    def lock(self, what: str = "a training run"):
        """The run directory's exclusive lock, as a context manager (vaelens.locks.folder_lock)."""
        return folder_lock(self.path, what)

    # --- config and summary ---------------------------------------------------------------------
    def read_config_dict(self) -> dict:
        return config_module.load_yaml(self.config_path)

    def read_config(self) -> RunConfig:
        if not self.is_run:
            raise FileNotFoundError(f"{self.path} is not a vaelens run directory (no {CONFIG_FILE}); "
                                    "give the --out directory of a `vaelens train` run")
        return config_module.from_dict(self.read_config_dict())

    def check_resumable(self, config: RunConfig) -> None:
        """Raise a ValueError listing the result settings that differ from the saved config."""
        conflicts = config_module.resume_conflicts(self.read_config_dict(), config_module.to_dict(config))
        if conflicts:
            raise ValueError(f"cannot resume {self.path}: the config differs from the saved one:\n  "
                             + "\n  ".join(conflicts) + "\nstart a new run directory instead")

    def read_summary(self) -> dict | None:
        """summary.json, or None when there is none; a ValueError naming the file when it is not valid JSON."""
        return read_json(self.summary_path) if self.summary_path.is_file() else None

    def write_summary(self, summary: dict) -> None:
        atomic_write_json(self.summary_path, summary)

    # --- starting and resuming ------------------------------------------------------------------
    def start(self, config: RunConfig) -> None:
        """Create (or adopt, when resuming) the folder: clear what an interrupted write left, drop a
        stale summary (the run is in progress again) and write config.yaml."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.check_no_symlinks()
        # Called under the run's lock: a temporary left here is a dead writer's, never a live one's.
        for folder in (self.path, self.checkpoint_folder, self.image_folder):
            if folder.is_dir():
                remove_stale_temporaries(folder)
        self.summary_path.unlink(missing_ok=True)
        config_module.save_yaml(config, self.config_path)

    def checkpoint_path(self, step: int) -> Path:
        """The JSON (commit marker) of the checkpoint of `step`."""
        return self.checkpoint_folder / f"step_{step:09d}.json"

    def checkpoint_steps(self) -> list[int]:
        """Steps of the committed checkpoints, oldest first (not verified: see latest_good_checkpoint)."""
        return [int(path.stem.split("_")[1]) for path in list_checkpoints(self.checkpoint_folder)]

    def latest_good_checkpoint(self, at_most: int | None = None, set_aside: bool = False) -> GoodCheckpoint | None:
        """The newest checkpoint (at or before step `at_most`) that verifies, or None when there is none.

        A newer checkpoint that fails verification is skipped and named in `skipped`; with `set_aside`
        (a run about to resume) its files are renamed to *.corrupt so they are kept but never used."""
        skipped = []
        for path in reversed(list_checkpoints(self.checkpoint_folder)):
            step = int(path.stem.split("_")[1])
            if at_most is not None and step > at_most:
                continue
            try:
                tensors, meta = load_checkpoint(path)
            except CheckpointError as error:
                skipped.append(f"checkpoint {path.stem} is unusable ({str(error).split(';')[0]})")
                if set_aside:
                    for part in (path, path.with_suffix(".safetensors")):
                        if part.exists():
                            part.rename(part.with_name(part.name + ".corrupt"))
                continue
            return GoodCheckpoint(step, tensors, meta, skipped)
        if skipped and set_aside:
            logger.warning("%s: %s; no usable checkpoint is left, training starts over", self.path,
                           "; ".join(skipped))
        return None

    def save_checkpoint(self, step: int, modules: dict, optimizers: dict, generators: dict, context: dict) -> None:
        save_checkpoint(self.checkpoint_folder, step, modules, optimizers, generators, context)

    # --- metrics --------------------------------------------------------------------------------
    def _metrics_lines(self) -> tuple[list[dict], list[str]]:
        """The parsed records and the damaged lines of metrics.jsonl (a torn last line is neither)."""
        if not self.metrics_path.is_file():
            return [], []
        text = self.metrics_path.read_text(errors="replace")
        lines = text.split("\n")
        torn = lines.pop()  # text after the last newline: empty, or a write cut off by a kill
        records, damaged = [], []
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            elif line.strip():
                damaged.append(line)
        if torn.strip():
            try:
                records.append(json.loads(torn))  # a complete record that only lacks its newline
            except json.JSONDecodeError:
                pass
        return records, damaged

    def read_metrics(self) -> list[dict]:
        """The metrics.jsonl records; a damaged line is skipped (never the records after it), a torn last
        line (a run killed mid-write) dropped."""
        return self._metrics_lines()[0]

    def trim_metrics(self, last_step: int) -> None:
        """Keep only the records up to `last_step` (the step training resumes from; 0 empties the log); move
        damaged lines to metrics.jsonl.corrupt, with one warning."""
        if not self.metrics_path.exists():
            return
        records, damaged = self._metrics_lines()
        if damaged:
            corrupt = self.path / CORRUPT_METRICS_FILE
            previous = corrupt.read_text() if corrupt.is_file() else ""
            atomic_write_text(corrupt, previous + "".join(line + "\n" for line in damaged))
            logger.warning("%s: %d damaged line(s) of %s (not JSON) moved to %s; the other records are kept",
                           self.path, len(damaged), METRICS_FILE, CORRUPT_METRICS_FILE)
        kept = [record for record in records if record.get("step", last_step + 1) <= last_step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(record) + "\n" for record in kept))

    @contextmanager
    def metrics_log(self):
        """An append handle on metrics.jsonl whose `write(record)` adds one flushed JSON line."""
        with open(self.metrics_path, "a") as handle:
            yield MetricsLog(handle)

    # --- analysis -------------------------------------------------------------------------------
    def read_analysis(self) -> dict | None:
        """analysis.json, or None when the run was not analysed; a ValueError naming the file when corrupt."""
        return read_json(self.analysis_path) if self.analysis_path.is_file() else None

    def has_analysis(self) -> bool:
        return self.analysis_path.is_file()

    def read_plateau(self) -> dict | None:
        """plateau.json (the paired plateau check's record), or None when the run was not checked."""
        return read_json(self.plateau_path) if self.plateau_path.is_file() else None

    def write_plateau(self, record: dict) -> None:
        with self.lock("a plateau check"):
            refuse_symlinks(self.path, (PLATEAU_FILE,), "run directory")
            atomic_write_json(self.plateau_path, record)


class MetricsLog:
    """metrics.jsonl opened for appending: one flushed JSON record per call."""

    def __init__(self, handle):
        self.handle = handle

    def write(self, record: dict) -> None:
        self.handle.write(json.dumps(record) + "\n")
        self.handle.flush()

