"""Run one sweep task (train, then analyse) and the executors that run many: local and Ray.

Every executor has `execute(tasks, progress, on_outcome=None) -> list[RunOutcome]` and never raises
for a failing run: the failure is an outcome with its error, and the other runs go on.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vaelens.config import RunConfig


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
    analyze: bool = True
    """Analyse the run after training (RUN_DIR/analysis.json)."""
    analysis_images: int = 2000
    """Images the analysis encodes."""
    analysis_quick: bool = True
    """Smaller disentanglement estimates in the analysis."""


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


def _read_status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "summary.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def is_complete(task: RunTask) -> bool:
    """Trained to the end and, when the sweep analyses, analysed."""
    if _read_status(task.run_dir) != "finished":
        return False
    return not task.analyze or (task.run_dir / "analysis.json").is_file()


def _has_checkpoint(run_dir: Path) -> bool:
    from vaelens.training.checkpoint import list_checkpoints

    folder = run_dir / "checkpoints"
    return folder.is_dir() and bool(list_checkpoints(folder))


def _train(config: RunConfig, run_dir: Path) -> None:
    from vaelens.training import train

    if _read_status(run_dir) == "finished":
        return
    if (run_dir / "config.yaml").exists() and not _has_checkpoint(run_dir):
        # Killed before its first checkpoint: nothing to resume, and a fresh start must not
        # append to the old metrics.jsonl.
        shutil.rmtree(run_dir)
    train(config, run_dir, resume=_has_checkpoint(run_dir))


def run_task(task: RunTask, progress: bool = False) -> RunOutcome:
    """Train (resuming an interrupted run, skipping a finished one) and analyse one task; never raises."""
    started = time.perf_counter()
    if is_complete(task):
        return RunOutcome(task.run_id, "finished", None, 0.0)
    config = copy.deepcopy(task.config)
    config.train.progress = progress
    try:
        _train(config, Path(task.run_dir))
        if task.analyze:
            from vaelens.analysis import analyze_target

            analyze_target(task.run_dir, max_images=task.analysis_images, quick=task.analysis_quick,
                           device=config.train.device, progress=progress)
    except Exception as error:  # noqa: BLE001 - a sweep records any failure and goes on
        message = f"{type(error).__name__}: {error}"
        if os.environ.get("VAELENS_DEBUG"):
            message += "\n" + traceback.format_exc()
        return RunOutcome(task.run_id, "failed", message, time.perf_counter() - started)
    return RunOutcome(task.run_id, "finished", None, time.perf_counter() - started)


def place_on_devices(tasks: list[RunTask], device_count: int | None = None) -> list[RunTask]:
    """Copies of `tasks` with train.device set round-robin over the CUDA devices.

    Only tasks left on 'auto' or a bare 'cuda' are placed; an explicit cpu or cuda:N is the user's
    choice. Without CUDA the tasks come back unchanged.
    """
    if device_count is None:
        import torch

        device_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device_count == 0:
        return list(tasks)
    placed, slot = [], 0
    for task in tasks:
        if task.config.train.device in ("auto", "cuda"):
            task = copy.deepcopy(task)
            task.config.train.device = f"cuda:{slot % device_count}"
            slot += 1
        placed.append(task)
    return placed


def _limit_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class LocalExecutor:
    """Runs on this machine: one after another, or `workers` processes (spawned) sharing the cores.

    With CUDA, runs go round-robin over the GPUs, so workers > GPUs puts several runs on each GPU.
    """

    def __init__(self, workers: int = 1, **_ignored):
        if workers < 1:
            raise ValueError(f"--workers must be at least 1, got {workers}")
        self.workers = workers

    def execute(self, tasks: list[RunTask], progress: bool = True,
                on_outcome: OnOutcome | None = None) -> list[RunOutcome]:
        tasks = place_on_devices(tasks)
        if self.workers == 1 or len(tasks) <= 1:
            outcomes = []
            for task in tasks:
                outcomes.append(run_task(task, progress=progress))
                if on_outcome:
                    on_outcome(outcomes[-1])
            return outcomes
        return self._execute_pool(tasks, on_outcome)

    def _execute_pool(self, tasks: list[RunTask], on_outcome: OnOutcome | None) -> list[RunOutcome]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        workers = min(self.workers, len(tasks))
        threads = max(1, (os.cpu_count() or 1) // workers)
        by_id: dict[str, RunOutcome] = {}
        # spawn: a forked child would inherit torch's thread pools and any CUDA state of the parent.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_limit_torch_threads, initargs=(threads,)) as pool:
            futures = {pool.submit(run_task, task, False): task for task in tasks}
            for future in as_completed(futures):
                task = futures[future]
                try:
                    outcome = future.result()
                except Exception as error:  # noqa: BLE001 - e.g. a worker killed by the OS
                    outcome = RunOutcome(task.run_id, "failed",
                                         f"worker process died: {type(error).__name__}: {error}", 0.0)
                by_id[task.run_id] = outcome
                if on_outcome:
                    on_outcome(outcome)
        return [by_id[task.run_id] for task in tasks]


class RayExecutor:
    """Each run a Ray task: on a local Ray instance, or on the cluster at `address`.

    With GPUs in the cluster a run asks for 1 / runs_per_gpu of one, so that many share a GPU; a
    run whose worker dies (node lost, OOM-killed) is retried up to `max_retries` times, resuming
    from its last checkpoint. On a multi-node cluster the sweep directory must be on a file system
    every node sees at the same path, since each run writes its own directory.
    """

    def __init__(self, address: str | None = None, runs_per_gpu: int = 1, max_retries: int = 2,
                 num_cpus: int | None = None, **_ignored):
        if runs_per_gpu < 1:
            raise ValueError(f"runs_per_gpu must be at least 1, got {runs_per_gpu}")
        self.address, self.runs_per_gpu, self.max_retries, self.num_cpus = address, runs_per_gpu, max_retries, num_cpus

    @staticmethod
    def _import_ray():
        try:
            import ray
        except ImportError as error:
            raise RuntimeError("the ray executor needs Ray: pip install 'vaelens[ray]' "
                               "(or use --executor local)") from error
        return ray

    def _init(self, ray, progress: bool) -> None:
        if self.address is None:
            ray.init(address="local", num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=progress)
            return
        try:
            ray.init(address=self.address, log_to_driver=progress)
        except ConnectionError as error:
            raise RuntimeError(f"cannot reach the Ray cluster at --address {self.address} ({error}); give the "
                               "address that `ray start --head` printed, or 'auto' on a cluster node") from error

    def execute(self, tasks: list[RunTask], progress: bool = True,
                on_outcome: OnOutcome | None = None) -> list[RunOutcome]:
        ray = self._import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            self._init(ray, progress)
        try:
            gpus = ray.cluster_resources().get("GPU", 0)
            remote = ray.remote(num_cpus=1, num_gpus=(1 / self.runs_per_gpu) if gpus else 0,
                                max_retries=self.max_retries)(_ray_run_task)
            pending = {remote.remote(task, bool(gpus)): task for task in tasks}
            by_id: dict[str, RunOutcome] = {}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                task = pending.pop(done[0])
                try:
                    outcome = ray.get(done[0])
                except Exception as error:  # noqa: BLE001 - retries exhausted or the task was lost
                    outcome = RunOutcome(task.run_id, "failed",
                                         f"ray task failed after {self.max_retries} retries: "
                                         f"{type(error).__name__}: {error}", 0.0)
                by_id[task.run_id] = outcome
                if on_outcome:
                    on_outcome(outcome)
            return [by_id[task.run_id] for task in tasks]
        finally:
            if started_here:
                ray.shutdown()


def _ray_run_task(task: RunTask, on_gpu: bool) -> RunOutcome:
    if task.config.train.device in ("auto", "cuda"):
        # Ray exposes only the GPU it granted this task (CUDA_VISIBLE_DEVICES), as cuda:0.
        task = copy.deepcopy(task)
        task.config.train.device = "cuda" if on_gpu else "cpu"
    return run_task(task, progress=False)


class _LazyRegistry(Mapping):
    """Executor name -> class, importing a class only when asked for (the ensemble one needs torch.func)."""

    def __init__(self, entries: dict[str, str]):
        self._entries = entries

    def __getitem__(self, name: str):
        import importlib

        if name not in self._entries:
            raise ValueError(f"unknown executor '{name}'; choose one of: {', '.join(self._entries)}")
        module, _, attribute = self._entries[name].partition(":")
        return getattr(importlib.import_module(module), attribute)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


EXECUTORS = _LazyRegistry({
    "local": "vaelens.sweep.executors:LocalExecutor",
    "ray": "vaelens.sweep.executors:RayExecutor",
    "ensemble": "vaelens.sweep.ensemble_executor:EnsembleExecutor",
})
