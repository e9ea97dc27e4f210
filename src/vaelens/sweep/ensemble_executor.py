"""The `ensemble` sweep executor: runs that differ only in beta and seed train together as one vmapped ensemble.

Tasks are grouped by `ensemble_key` (everything but loss.beta and train.seed) and each group is
trained by `train_ensemble` in chunks of at most `max_models`. Finished runs are skipped; interrupted
ones resume from their newest common checkpoint. Tasks whose objective the ensemble cannot vectorise
(perceptual, adversarial, structural terms) go to the single-run path (`run_task`), one by one. After
training, each run is analysed as every sweep path analyses it. Errors become failed outcomes for the
runs they concern; execute never raises.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from vaelens.config import ensemble_key
from vaelens.sweep.tasks import OnOutcome, RunOutcome, RunTask, analyse_finished, error_text, report_outcome, run_task
from vaelens.training.ensemble import train_ensemble, unsupported_reason
from vaelens.training.rundir import RunDirectory


@dataclass
class EnsembleOptions:
    max_models: int = 64
    """Most members trained together in one ensemble (larger groups are split into chunks)."""

    def check(self) -> None:
        if self.max_models < 1:
            raise ValueError(f"max_models must be at least 1, got {self.max_models}")


class EnsembleExecutor:
    """Train a sweep's runs as vectorised ensembles on one device; see the module docstring."""

    def __init__(self, options: EnsembleOptions | None = None):
        self.options = options or EnsembleOptions()
        self.options.check()

    def chunks(self, tasks: list[RunTask]) -> list[list[RunTask]]:
        """Groups of tasks trained together (a single unsupported task is a group of its own)."""
        singles, groups = [], {}
        for task in tasks:
            if unsupported_reason(task.config) is not None:
                singles.append([task])
            else:
                groups.setdefault(ensemble_key(task.config), []).append(task)
        size = self.options.max_models
        chunks = [group[start:start + size] for group in groups.values() for start in range(0, len(group), size)]
        return singles + chunks

    def execute(self, tasks: list[RunTask], progress: bool = True,
                on_outcome: OnOutcome | None = None) -> list[RunOutcome]:
        """Train (or skip) every task and return one outcome per task, in the order given. An ensemble's
        training time is shared equally among its members; a skipped run's seconds are its analysis time."""
        by_id: dict[str, RunOutcome] = {}
        pending = []
        for task in tasks:
            if RunDirectory(task.run_dir).status() == "finished":
                report_outcome(self._analyse(task, 0.0), by_id, on_outcome)
            else:
                pending.append(task)
        for chunk in self.chunks(pending):
            if len(chunk) == 1 and unsupported_reason(chunk[0].config) is not None:
                report_outcome(run_task(chunk[0], progress), by_id, on_outcome)
                continue
            for outcome in self._train(chunk, progress):
                report_outcome(outcome, by_id, on_outcome)
        return [by_id[task.run_id] for task in tasks]

    def _train(self, chunk: list[RunTask], progress: bool) -> list[RunOutcome]:
        """Train one ensemble and analyse the members that finished."""
        started = time.perf_counter()
        try:
            results = train_ensemble([t.config for t in chunk], [t.run_dir for t in chunk], resume=True,
                                     progress=progress)
        except Exception as error:  # noqa: BLE001 - a failed group is recorded, the sweep goes on
            seconds = time.perf_counter() - started
            return [RunOutcome(t.run_id, "failed", error_text(error), seconds) for t in chunk]
        seconds = (time.perf_counter() - started) / len(chunk)
        return [self._analyse(task, seconds) if result.summary.get("status") == "finished"
                else RunOutcome(task.run_id, "failed", result.summary.get("error", "run did not finish"), seconds)
                for task, result in zip(chunk, results)]

    @staticmethod
    def _analyse(task: RunTask, seconds: float) -> RunOutcome:
        """The finished task's analysis (when it wants one and lacks it); a failure fails only this run."""
        started = time.perf_counter()
        try:
            analyse_finished(task)
        except Exception as error:  # noqa: BLE001 - recorded per run
            return RunOutcome(task.run_id, "failed", f"analysis failed: {error_text(error)}",
                              seconds + time.perf_counter() - started)
        return RunOutcome(task.run_id, "finished", None, seconds + time.perf_counter() - started)


OPTIONS = EnsembleOptions
EXECUTOR = EnsembleExecutor
