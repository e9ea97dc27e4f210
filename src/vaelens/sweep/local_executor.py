"""The `local` sweep executor: runs on this machine, one after another or in worker processes."""

from __future__ import annotations

import copy
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import torch

from vaelens.sweep.tasks import OnOutcome, RunOutcome, RunTask, report_outcome, run_task


@dataclass
class LocalOptions:
    workers: int = 1
    """Parallel worker processes (spawned); with GPUs, runs go round-robin over them."""

    def check(self) -> None:
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")


def place_on_devices(tasks: list[RunTask], device_count: int | None = None) -> list[RunTask]:
    """Copies of `tasks` with train.device set round-robin over the CUDA devices.

    Only tasks left on 'auto' or a bare 'cuda' are placed; an explicit cpu or cuda:N is the user's
    choice. Without CUDA the tasks come back unchanged.
    """
    if device_count is None:
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


OPTIONS = LocalOptions
EXECUTOR = LocalExecutor
