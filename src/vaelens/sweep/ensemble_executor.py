"""The `ensemble` sweep executor: runs that differ only in beta and seed train together as one vmapped ensemble.

Tasks are grouped by `ensemble_key` (everything but loss.beta and train.seed) and each group is
trained by `train_ensemble` in chunks of at most `max_models`. Finished runs (summary.json status
"finished") are skipped; interrupted ones resume from their newest common checkpoint. Tasks whose
objective the ensemble cannot vectorise (perceptual, adversarial, structural terms) fall back to the
single-run trainer, one by one. After training, each run is analysed (analysis.json) unless the task
has `analyze = False`. Errors become failed outcomes for the runs they concern; execute never raises.
"""

from __future__ import annotations

import copy
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from vaelens.io import read_json
from vaelens.training.ensemble import ensemble_key, train_ensemble, unsupported_reason


def _is_finished(run_dir: Path) -> bool:
    try:
        return read_json(Path(run_dir) / "summary.json").get("status") == "finished"
    except (FileNotFoundError, ValueError):
        return False


def _error_text(error: BaseException) -> str:
    last = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(error).__name__}: {error}{where}"


class EnsembleExecutor:
    """Train a sweep's runs as vectorised ensembles on one device; see the module docstring."""

    name = "ensemble"

    def __init__(self, max_models: int = 64):
        if max_models < 1:
            raise ValueError(f"max_models must be at least 1, got {max_models}")
        self.max_models = int(max_models)

    def execute(self, tasks: Sequence, progress: bool = True, make_outcome: Callable | None = None,
                on_outcome: Callable | None = None) -> list:
        """Train (or skip) every task and return one outcome per task, in the order given.

        `make_outcome(run_id=, status=, error=, seconds=)` builds each outcome; by default it is
        vaelens.sweep.executors.RunOutcome; `on_outcome(outcome)`, if given, hears of each one as soon
        as it is known (the sweep rewrites sweep.json then). An ensemble's training time is shared
        equally among its members; a skipped run's seconds are its analysis time only."""
        if make_outcome is None:
            from vaelens.sweep.executors import RunOutcome

            make_outcome = RunOutcome
        outcomes: dict[str, object] = {}
        pending, groups = [], {}
        for task in tasks:
            if _is_finished(task.run_dir):
                outcomes[task.run_id] = self._analyse([task], 0.0, make_outcome)[0]
                if on_outcome is not None:
                    on_outcome(outcomes[task.run_id])
            elif unsupported_reason(task.config) is not None:
                pending.append([task])
            else:
                groups.setdefault(ensemble_key(task.config), []).append(task)
        for group in groups.values():
            pending += [group[start:start + self.max_models] for start in range(0, len(group), self.max_models)]
        for chunk in pending:
            for outcome, task in zip(self._train(chunk, progress, make_outcome), chunk):
                outcomes[task.run_id] = outcome
                if on_outcome is not None:
                    on_outcome(outcome)
        return [outcomes[task.run_id] for task in tasks]

    def _train(self, chunk: list, progress: bool, make_outcome: Callable) -> list:
        """Train one chunk (an ensemble, or a single unsupported run) and analyse what finished."""
        started = time.perf_counter()
        try:
            if len(chunk) == 1 and unsupported_reason(chunk[0].config) is not None:
                from vaelens.training import train

                config = copy.deepcopy(chunk[0].config)
                config.train.progress = config.train.progress and progress
                results = [train(config, chunk[0].run_dir, resume=True)]
            else:
                results = train_ensemble([t.config for t in chunk], [t.run_dir for t in chunk], resume=True,
                                         progress=progress)
        except Exception as error:  # noqa: BLE001 - a failed group is recorded, the sweep goes on
            seconds = time.perf_counter() - started
            return [make_outcome(run_id=t.run_id, status="failed", error=_error_text(error), seconds=seconds)
                    for t in chunk]
        seconds = (time.perf_counter() - started) / len(chunk)
        outcomes = []
        for task, result in zip(chunk, results):
            if result.summary.get("status") != "finished":
                outcomes.append(make_outcome(run_id=task.run_id, status="failed",
                                             error=result.summary.get("error", "run did not finish"), seconds=seconds))
            else:
                outcomes += self._analyse([task], seconds, make_outcome)
        return outcomes

    def _analyse(self, tasks: list, seconds: float, make_outcome: Callable) -> list:
        """analysis.json for each finished task that wants one (and lacks it); failures become failed outcomes."""
        outcomes = []
        for task in tasks:
            started = time.perf_counter()
            try:
                if getattr(task, "analyze", True) and not (Path(task.run_dir) / "analysis.json").is_file():
                    from vaelens.analysis import analyze_target

                    analyze_target(task.run_dir, max_images=getattr(task, "analysis_images", 5000),
                                   quick=getattr(task, "analysis_quick", False), progress=False,
                                   device=task.config.train.device)
            except Exception as error:  # noqa: BLE001 - recorded per run
                outcomes.append(make_outcome(run_id=task.run_id, status="failed",
                                             error=f"analysis failed: {_error_text(error)}",
                                             seconds=seconds + time.perf_counter() - started))
                continue
            outcomes.append(make_outcome(run_id=task.run_id, status="finished", error=None,
                                         seconds=seconds + time.perf_counter() - started))
        return outcomes
