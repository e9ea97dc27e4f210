"""The `local` sweep executor: runs on this machine, one after another or in worker processes."""

from __future__ import annotations

import copy
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
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


PR_SET_PDEATHSIG = 1
"""Linux prctl option: the signal a process receives when its parent dies."""


def die_with_parent(parent_pid: int, poll_seconds: float = 1.0) -> None:
    """Make this worker process end when the sweep that started it ends, however it ends (kill -9 included):
    an orphaned worker would go on training, take queued runs and then wait forever on a dead pipe.

    On Linux the kernel sends SIGKILL on the parent's death (prctl PR_SET_PDEATHSIG); everywhere, and for a
    parent that died before prctl took effect, a watchdog thread exits once the parent pid has changed. A run
    killed this way is incomplete and resumes from its last checkpoint on the sweep's rerun."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass  # no prctl in this libc: the watchdog below still ends the worker
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="vaelens-parent-watchdog", daemon=True).start()


def _start_worker(threads: int, parent_pid: int) -> None:
    die_with_parent(parent_pid)
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
                                 initializer=_start_worker, initargs=(threads, os.getpid())) as pool:
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
