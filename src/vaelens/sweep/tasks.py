"""What a sweep hands its executors (RunTask), what they hand back (RunOutcome), and the one function that
runs a task: train (resume, or skip when finished), then analyse."""

from __future__ import annotations

import copy
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from vaelens.analysis.options import AnalysisOptions
from vaelens.analysis.saved_run import analyze_run
from vaelens.config import RunConfig
from vaelens.training import train
from vaelens.training.rundir import RunDirectory


@dataclass
class RunTask:
    run_id: str
    """config_hash of the resolved config: equal configs share a run directory."""
    config: RunConfig
    """The fully resolved config of this run (train.device may be re-placed by an executor)."""
    axes: dict
    """The grid/zip values (dotted key -> value) that define this run within the sweep."""
    run_dir: Path
    """SWEEP_DIR/runs/<run_id>."""
    analysis: AnalysisOptions = field(default_factory=AnalysisOptions)
    """Whether and how the run is analysed after training (RUN_DIR/analysis.json)."""


@dataclass
class RunOutcome:
    run_id: str
    """The task's run_id."""
    status: str
    """'finished' or 'failed'."""
    error: str | None
    """What went wrong (None when finished)."""
    seconds: float
    """Wall time spent on the run in this session (0 for a run found complete)."""


OnOutcome = Callable[[RunOutcome], None]
"""Told of each outcome as soon as it is known (the sweep rewrites sweep.json then)."""


class Executor(Protocol):
    """Runs tasks; never raises for a failing run (the failure is an outcome and the other runs go on)."""

    def execute(self, tasks: list[RunTask], progress: bool = True,
                on_outcome: OnOutcome | None = None) -> list[RunOutcome]:
        """One outcome per task, in the order given."""


def report_outcome(outcome: RunOutcome, by_id: dict[str, RunOutcome], on_outcome: OnOutcome | None) -> None:
    """Keep `outcome` by run id and tell `on_outcome` of it."""
    by_id[outcome.run_id] = outcome
    if on_outcome:
        on_outcome(outcome)


def is_complete(task: RunTask) -> bool:
    """Trained to the end and, when the sweep analyses, analysed."""
    directory = RunDirectory(task.run_dir)
    return directory.status() == "finished" and (not task.analysis.enabled or directory.has_analysis())


def error_text(error: BaseException) -> str:
    """How a failure reads in sweep.json: type and message (and the traceback with VAELENS_DEBUG=1)."""
    message = f"{type(error).__name__}: {error}"
    if os.environ.get("VAELENS_DEBUG"):
        message += "\n" + "".join(traceback.format_exception(error))
    return message


def analyse_finished(task: RunTask, progress: bool = False) -> None:
    """analysis.json for a finished task that wants one and lacks it (the one analysis path of sweeps)."""
    if task.analysis.enabled and not RunDirectory(task.run_dir).has_analysis():
        analyze_run(task.run_dir, task.analysis, device=task.config.train.device, progress=progress)


def run_task(task: RunTask, progress: bool = False) -> RunOutcome:
    """Train (resuming an interrupted run, skipping a finished one) and analyse one task; never raises."""
    started = time.perf_counter()
    if is_complete(task):
        return RunOutcome(task.run_id, "finished", None, 0.0)
    config = copy.deepcopy(task.config)
    config.train.progress = progress
    try:
        directory = RunDirectory(task.run_dir)
        if directory.status() != "finished":
            train(config, task.run_dir, resume=directory.is_run)
        analyse_finished(task, progress)
    except Exception as error:  # noqa: BLE001 - a sweep records any failure and goes on
        return RunOutcome(task.run_id, "failed", error_text(error), time.perf_counter() - started)
    return RunOutcome(task.run_id, "finished", None, time.perf_counter() - started)
