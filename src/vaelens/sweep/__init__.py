"""Sweeps: a grid of runs from one spec, run by a local, Ray or vectorised executor, skipping what is done."""

from vaelens.sweep.executors import EXECUTORS, RunOutcome, RunTask, is_complete, run_task
from vaelens.sweep.runner import SweepResult, run_sweep, summary_table
from vaelens.sweep.spec import SweepSpec, expand, load_spec

__all__ = ["EXECUTORS", "RunOutcome", "RunTask", "SweepResult", "SweepSpec", "expand", "is_complete",
           "load_spec", "run_sweep", "run_task", "summary_table"]
