"""Sweeps: a grid of runs from one spec, run by a local, Ray or vectorised executor, skipping what is done."""

from vaelens.sweep.executors import EXECUTORS, build_executor, executor_options
from vaelens.sweep.runner import SweepResult, run_sweep, summary_table
from vaelens.sweep.spec import SweepSpec, expand, load_spec
from vaelens.sweep.tasks import Executor, RunOutcome, RunTask, is_complete, run_task

__all__ = ["EXECUTORS", "Executor", "RunOutcome", "RunTask", "SweepResult", "SweepSpec", "build_executor",
           "executor_options", "expand", "is_complete", "load_spec", "run_sweep", "run_task", "summary_table"]
