"""The executors that run a sweep's tasks (local processes, Ray, vectorised ensembles) and their options.

Each executor takes one options dataclass; `build_executor(name, options)` checks the option names
against it, so an option an executor does not take (say --runs-per-gpu with the local executor) is
an error naming it and the valid ones, never silently dropped.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import os
from dataclasses import dataclass

from vaelens.sweep.tasks import Executor, OnOutcome, RunOutcome, RunTask, report_outcome, run_task


@dataclass
class LocalOptions:
    workers: int = 1
    """Parallel worker processes (spawned); with GPUs, runs go round-robin over them."""

    def check(self) -> None:
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")


@dataclass
class RayOptions:
    address: str | None = None
    """Ray cluster address ('auto' on a cluster node); None starts a local Ray instance."""
    runs_per_gpu: int = 1
    """Runs sharing one GPU (each asks for 1 / runs_per_gpu of one)."""
    max_retries: int = 2
    """Times a run whose worker died is retried (it resumes from its last checkpoint)."""
    num_cpus: int | None = None
    """CPUs of a local Ray instance (None: all)."""

    def check(self) -> None:
        if self.runs_per_gpu < 1:
            raise ValueError(f"runs_per_gpu must be at least 1, got {self.runs_per_gpu}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be at least 0, got {self.max_retries}")


@dataclass
class EnsembleOptions:
    max_models: int = 64
    """Most members trained together in one ensemble (larger groups are split into chunks)."""

    def check(self) -> None:
        if self.max_models < 1:
            raise ValueError(f"max_models must be at least 1, got {self.max_models}")


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

    def __init__(self, options: LocalOptions | None = None):
        self.options = options or LocalOptions()
        self.options.check()

    def execute(self, tasks: list[RunTask], progress: bool = True,
                on_outcome: OnOutcome | None = None) -> list[RunOutcome]:
        tasks = place_on_devices(tasks)
        by_id: dict[str, RunOutcome] = {}
        if self.options.workers == 1 or len(tasks) <= 1:
            for task in tasks:
                report_outcome(run_task(task, progress=progress), by_id, on_outcome)
        else:
            self._execute_pool(tasks, by_id, on_outcome)
        return [by_id[task.run_id] for task in tasks]

    def _execute_pool(self, tasks: list[RunTask], by_id: dict, on_outcome: OnOutcome | None) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        workers = min(self.options.workers, len(tasks))
        threads = max(1, (os.cpu_count() or 1) // workers)
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
                report_outcome(outcome, by_id, on_outcome)


EXECUTORS = {
    "local": ("vaelens.sweep.executors:LocalExecutor", LocalOptions),
    "ray": ("vaelens.sweep.ray_executor:RayExecutor", RayOptions),
    "ensemble": ("vaelens.sweep.ensemble_executor:EnsembleExecutor", EnsembleOptions),
}
"""Executor name -> (where its class lives, imported only when chosen; its options dataclass)."""


def executor_options(name: str, options: dict | None = None):
    """The options dataclass of executor `name` filled from `options`; an unknown name or option is an error
    naming the valid ones."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor '{name}'; choose one of: {', '.join(EXECUTORS)}")
    options_class = EXECUTORS[name][1]
    valid = [item.name for item in dataclasses.fields(options_class)]
    unknown = sorted(set(options or {}) - set(valid))
    if unknown:
        raise ValueError(f"the {name} executor takes no option {', '.join(unknown)}; its options are: "
                         f"{', '.join(valid)}")
    filled = options_class(**(options or {}))
    filled.check()
    return filled


def build_executor(name: str, options: dict | None = None) -> Executor:
    """Executor `name` built with its checked options."""
    filled = executor_options(name, options)
    module, _, attribute = EXECUTORS[name][0].partition(":")
    return getattr(importlib.import_module(module), attribute)(filled)
