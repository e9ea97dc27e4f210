"""Sweeps: a grid of runs from one spec, run by a local, Ray or vectorised executor, skipping what is done.

Names are imported lazily from their modules, so the command line can read the executor registry
(vaelens.sweep.executors) without importing torch.
"""

from __future__ import annotations

from vaelens.lazy import exported_names, lazy_getattr

_MODULES = {
    "vaelens.sweep.executors": ("EXECUTORS", "build_executor", "executor_options"),
    "vaelens.sweep.runner": ("SweepResult", "run_sweep", "summary_table"),
    "vaelens.sweep.spec": ("SweepSpec", "expand", "load_spec"),
    "vaelens.sweep.tasks": ("Executor", "RunOutcome", "RunTask", "is_complete", "run_task"),
}
__all__ = exported_names(_MODULES)


__getattr__ = lazy_getattr(__name__, _MODULES)
