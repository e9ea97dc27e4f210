"""A new executor is one module (OPTIONS and EXECUTOR) and one registry line: the command line offers it with its
own options, sweeps run through it, and it refuses options it does not take."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml

from vaelens.cli import main
from vaelens.sweep import executors
from vaelens.sweep.executors import ExecutorEntry
from vaelens.sweep.runner import run_sweep

REVERSED = textwrap.dedent('''
    """A toy executor: runs a sweep's tasks one after another, last first."""

    from dataclasses import dataclass

    from vaelens.sweep.tasks import report_outcome, run_task


    @dataclass
    class ReversedOptions:
        skip_last: int = 0
        """Tasks at the end of the sweep left for another session."""

        def check(self) -> None:
            if self.skip_last < 0:
                raise ValueError(f"--skip-last must be at least 0, got {self.skip_last}")


    class ReversedExecutor:
        order = []

        def __init__(self, options):
            self.options = options

        def execute(self, tasks, progress=True, on_outcome=None):
            by_id = {}
            chosen = tasks[:len(tasks) - self.options.skip_last]
            for task in reversed(chosen):
                ReversedExecutor.order.append(task.run_id)
                report_outcome(run_task(task), by_id, on_outcome)
            return [by_id[task.run_id] for task in chosen]


    OPTIONS = ReversedOptions
    EXECUTOR = ReversedExecutor
''')


@pytest.fixture
def reversed_executor(tmp_path, monkeypatch):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "reversed_executor.py").write_text(REVERSED)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    monkeypatch.setitem(executors.EXECUTORS, "reversed", ExecutorEntry("reversed_executor", "last task first"))
    return executors.executor_module("reversed").EXECUTOR


def test_a_new_executor_runs_a_sweep_from_the_command_line(reversed_executor, tiny_spec, tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec))
    out = tmp_path / "sweep"
    assert main(["sweep", str(spec), "--out", str(out), "--executor", "reversed", "--skip-last", "1",
                 "--no-progress"]) == 0
    index = json.loads((out / "sweep.json").read_text())
    assert [run["status"] for run in index["runs"]] == ["finished", "pending"]
    assert reversed_executor.order == [index["runs"][0]["id"]]
    result = run_sweep(tiny_spec, out, executor="reversed", progress=False)
    assert [run.status for run in result.runs] == ["finished", "finished"]


def test_a_new_executor_refuses_options_it_does_not_take(reversed_executor, tiny_spec, tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec))
    assert main(["sweep", str(spec), "--out", str(tmp_path / "s"), "--executor", "reversed", "--workers", "2"]) == 2
    assert "the reversed executor takes no option workers; its options are: skip_last" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--skip-last must be at least 0"):
        run_sweep(tiny_spec, tmp_path / "t", executor="reversed", skip_last=-1, progress=False)
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert ("reversed executor: --skip-last SKIP_LAST reversed: Tasks at the end of the sweep left for another "
            "session (default 0)") in help_text
    assert "reversed: last task first" in help_text
