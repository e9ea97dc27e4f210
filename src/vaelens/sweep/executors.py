"""The executors that run a sweep's tasks, registered by name.

An executor is one module that defines `OPTIONS`, a dataclass of its options (a docstring per field: the
command line's --help), and `EXECUTOR`, the class built from them, whose `execute(tasks, progress,
on_outcome)` runs the tasks (vaelens.sweep.tasks.Executor); adding one is that module and one line in
EXECUTORS. `build_executor(name, options)` checks the option names against OPTIONS, so an option an executor
does not take (say --runs-per-gpu with the local executor) is an error naming it and the valid ones, never
silently dropped. The command line derives --executor's choices and every executor's flags from here.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the tasks module imports torch; the registry must stay light for the command line's help
    from vaelens.sweep.tasks import Executor


@dataclass(frozen=True)
class ExecutorEntry:
    """Where an executor lives and what it does."""

    module: str
    """The module defining OPTIONS and EXECUTOR (imported when the executor is used)."""
    summary: str
    """One line for --executor's help."""


EXECUTORS = {
    "local": ExecutorEntry("vaelens.sweep.local_executor", "this machine: one run after another, or worker processes"),
    "ray": ExecutorEntry("vaelens.sweep.ray_executor", "Ray tasks on a local Ray or a cluster (pip install "
                                                       "'vaelens[ray]')"),
    "ensemble": ExecutorEntry("vaelens.sweep.ensemble_executor", "same-architecture runs trained together on one "
                                                                 "device"),
}
"""Executor name -> its entry."""


def executor_module(name: str) -> ModuleType:
    """The module of executor `name`; an unknown name is an error naming the registered ones."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor '{name}'; choose one of: {', '.join(EXECUTORS)}")
    return importlib.import_module(EXECUTORS[name].module)


def options_class(name: str) -> type:
    """The options dataclass of executor `name`."""
    return executor_module(name).OPTIONS


def executor_options(name: str, options: dict | None = None):
    """The options dataclass of executor `name` filled from `options`; an unknown name or option is an error
    naming the valid ones."""
    options_type = options_class(name)
    valid = [item.name for item in dataclasses.fields(options_type)]
    unknown = sorted(set(options or {}) - set(valid))
    if unknown:
        raise ValueError(f"the {name} executor takes no option {', '.join(unknown)}; its options are: "
                         f"{', '.join(valid)}")
    filled = options_type(**(options or {}))
    filled.check()
    return filled


def build_executor(name: str, options: dict | None = None) -> Executor:
    """Executor `name` built with its checked options."""
    return executor_module(name).EXECUTOR(executor_options(name, options))
