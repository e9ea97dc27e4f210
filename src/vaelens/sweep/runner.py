"""`run_sweep`: expand a spec, run what is not done yet, keep SWEEP_DIR/sweep.json current, print a summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from vaelens.io import atomic_write_text
from vaelens.locks import folder_lock
from vaelens.sweep.executors import build_executor
from vaelens.sweep.spec import SweepSpec, expand, load_spec, spec_to_dict, spec_to_yaml
from vaelens.sweep.tasks import RunOutcome, is_complete
from vaelens.training.sweepdir import IndexEntry, SweepDirectory, SweepIndex


@dataclass
class SweepResult:
    out_dir: Path
    """The sweep directory (spec.yaml, sweep.json, runs/)."""
    runs: list[IndexEntry]
    """sweep.json's runs: id, dir (relative), axes, status, error, seconds."""

    def count(self, status: str) -> int:
        return sum(run.status == status for run in self.runs)


def _previous_seconds(directory: SweepDirectory) -> dict[str, float | None]:
    """Each run's recorded seconds, from an earlier session's index (none when it is missing or unreadable:
    the sweep then times its runs anew)."""
    try:
        return {entry.run_id: entry.seconds for entry in directory.read_index().runs}
    except (OSError, ValueError):
        return {}


def summary_table(runs: list[IndexEntry]) -> str:
    """A plain-text table of the runs (id, axis values, status, seconds, error) and a done/failed/pending line."""
    axis_keys = list(dict.fromkeys(key for run in runs for key in run.axes))
    header = ["run", *axis_keys, "status", "seconds", "error"]
    rows = []
    for run in runs:
        error = (run.error or "").splitlines()
        rows.append([run.run_id, *(str(run.axes.get(key, "")) for key in axis_keys), run.status,
                     "" if run.seconds is None else f"{run.seconds:.1f}", error[0][:70] if error else ""])
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header, *rows]]
    counts = {status: sum(run.status == status for run in runs) for status in ("finished", "failed", "pending")}
    lines.append(f"done {counts['finished']}, failed {counts['failed']}, pending {counts['pending']} "
                 f"(of {len(runs)} runs)")
    return "\n".join(lines)


def run_sweep(spec, out_dir, executor: str = "local", progress: bool = True, **options) -> SweepResult:
    """Run every run of `spec` (a SweepSpec, a mapping or a YAML path) not already done into `out_dir`.

    `options` are the executor's (e.g. workers=4 for local, runs_per_gpu=2 for ray, max_models=16 for
    ensemble); they override the spec's `executors` entry, and one the executor does not take is an error.
    Finished runs are skipped, interrupted ones resumed from their last checkpoint, failed ones tried
    again; a failure is recorded in sweep.json with its error and the other runs go on.
    """
    spec = spec if isinstance(spec, SweepSpec) else load_spec(spec)
    runner = build_executor(executor, {**spec.executors.get(executor, {}), **options})
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    # One sweep process per directory: a second is refused (naming the first) instead of training every run twice.
    with folder_lock(out_dir, f"sweep {spec.name}"):
        return _run_locked(spec, runner, out_dir, executor, progress)


def _run_locked(spec: SweepSpec, runner, out_dir: Path, executor: str, progress: bool) -> SweepResult:
    atomic_write_text(out_dir / "spec.yaml", spec_to_yaml(spec))
    tasks = expand(spec, out_dir)
    directory = SweepDirectory(out_dir)
    seconds = _previous_seconds(directory)
    runs = {task.run_id: IndexEntry(task.run_id, str(task.run_dir.relative_to(out_dir)), task.axes,
                                    "finished" if is_complete(task) else "pending", None, seconds.get(task.run_id))
            for task in tasks}
    pending = [task for task in tasks if runs[task.run_id].status == "pending"]

    def write() -> None:
        directory.write_index(SweepIndex(spec_to_dict(spec), list(runs.values()), design=spec.claims or None))

    write()
    skipped = len(tasks) - len(pending)
    if progress and skipped:
        print(f"sweep {spec.name}: {skipped} of {len(tasks)} runs already done, running {len(pending)}")
    bar = tqdm(total=len(pending), desc=f"sweep {spec.name} ({executor})", unit="run", disable=not progress,
               dynamic_ncols=True)

    def record(outcome: RunOutcome) -> None:
        entry = runs[outcome.run_id]
        entry.status, entry.error, entry.seconds = outcome.status, outcome.error, outcome.seconds
        write()
        bar.update(1)

    try:
        if pending:
            runner.execute(pending, progress, on_outcome=record)
    finally:
        bar.close()
    result = SweepResult(out_dir, list(runs.values()))
    if progress:
        print(summary_table(result.runs))
        print(f"sweep directory: {out_dir}")
    return result
