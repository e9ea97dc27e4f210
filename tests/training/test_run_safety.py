"""A run directory under hostile conditions: a damaged metrics line costs nothing after it, no symbolic link
inside a run is followed, two writers of one run cannot both proceed, and a damaged checkpoint JSON is a
corrupt checkpoint (fallback, one line), not a traceback."""

from __future__ import annotations

import json
import logging

import pytest

from vaelens import train
from vaelens.io import UnsafePath
from vaelens.locks import FolderLocked
from vaelens.training import RunDirectory
from vaelens.training.checkpoint import CheckpointError, load_checkpoint


def _steps(run_dir) -> list[int]:
    return [record["step"] for record in RunDirectory(run_dir).read_metrics()]


@pytest.fixture
def interrupted_run(tiny_config, tmp_path, interrupt_at):
    """A run killed after 5 of 6 steps (checkpoints at 2 and 4, metrics of steps 1-5)."""
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config, tmp_path / "run", hooks=interrupt_at(5))
    return tmp_path / "run"


def test_a_damaged_metrics_line_costs_nothing_after_it(tiny_config, interrupted_run, caplog):
    metrics = interrupted_run / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    lines[1] = '{"step": 2, "loss": garbage'
    metrics.write_text("\n".join(lines) + "\n")
    assert _steps(interrupted_run) == [1, 3, 4, 5], "readers (the report too) skip the line, not what follows"
    with caplog.at_level(logging.WARNING, logger="vaelens"):
        train(tiny_config, interrupted_run, resume=True)
    assert _steps(interrupted_run) == [1, 3, 4, 5, 6]
    assert (interrupted_run / "metrics.jsonl.corrupt").read_text() == '{"step": 2, "loss": garbage\n'
    assert "1 damaged line(s) of metrics.jsonl (not JSON) moved to metrics.jsonl.corrupt" in caplog.text
    summary = json.loads((interrupted_run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["convergence"] is not None


@pytest.mark.parametrize("entry", ["metrics.jsonl", "images", "checkpoints"])
def test_a_symlink_inside_a_run_is_refused_and_nothing_outside_changes(tiny_config, interrupted_run, tmp_path,
                                                                        entry):
    outside = tmp_path / "outside"
    path = interrupted_run / entry
    if entry == "metrics.jsonl":
        path.unlink()
        path.symlink_to(outside / "metrics.jsonl")  # dangling: a resume would create the file outside
    else:
        outside.mkdir()
        for item in path.iterdir():
            item.rename(outside / item.name)
        path.rmdir()
        path.symlink_to(outside, target_is_directory=True)
    before = sorted((item.name, item.stat().st_mtime_ns) for item in outside.iterdir()) if outside.exists() else []
    with pytest.raises(UnsafePath, match=f"{entry} is a symbolic link"):
        train(tiny_config, interrupted_run, resume=True)
    after = sorted((item.name, item.stat().st_mtime_ns) for item in outside.iterdir()) if outside.exists() else []
    assert after == before, "nothing outside the run was written, renamed or deleted"


def test_a_symlinked_analysis_folder_is_refused(finished_run, tmp_path):
    from vaelens.analysis.run import write_analysis

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kl_per_unit.png").write_bytes(b"a user's file")
    (finished_run.run_dir / "analysis").symlink_to(outside, target_is_directory=True)
    try:
        with pytest.raises(UnsafePath, match="analysis is a symbolic link"):
            write_analysis({"rate_per_unit": [0.1, 0.2]}, finished_run.run_dir)
    finally:
        (finished_run.run_dir / "analysis").unlink()
    assert (outside / "kl_per_unit.png").read_bytes() == b"a user's file"
    assert not (finished_run.run_dir / "analysis.json").exists()


def test_a_second_writer_of_a_run_is_refused_and_the_first_keeps_its_temporaries(tiny_config, interrupted_run,
                                                                                 held_elsewhere):
    holder = held_elsewhere(interrupted_run)
    live_temporary = interrupted_run / ".metrics.jsonl.0123456789ab.tmp"  # the holder's write in progress
    live_temporary.write_text("{}")
    with pytest.raises(FolderLocked, match=f"process {holder.pid} on host"):
        train(tiny_config, interrupted_run, resume=True)
    assert live_temporary.exists(), "a live writer's temporary is never cleaned up"


def test_two_new_runs_into_one_folder_cannot_both_proceed(tiny_config, tmp_path, held_elsewhere):
    held_elsewhere(tmp_path / "run")  # the first `train --out run`, started a moment earlier
    with pytest.raises(FolderLocked, match="is in use"):
        train(tiny_config, tmp_path / "run")
    assert sorted(item.name for item in (tmp_path / "run").iterdir()) == [".vaelens.lock"]


@pytest.mark.parametrize("damage", ["no sha256", "a JSON list"])
def test_a_damaged_checkpoint_json_is_a_corrupt_checkpoint(tiny_config, interrupted_run, caplog, damage):
    newest = interrupted_run / "checkpoints" / "step_000000004.json"
    meta = json.loads(newest.read_text())
    newest.write_text(json.dumps([meta]) if damage == "a JSON list" else json.dumps(
        {key: value for key, value in meta.items() if key != "sha256"}))
    with pytest.raises(CheckpointError, match="step_000000004.json"):
        load_checkpoint(newest)
    with caplog.at_level(logging.WARNING, logger="vaelens"):
        resumed = train(tiny_config, interrupted_run, resume=True)
    assert resumed.summary["resumed_from"] == 2 and "step_000000004 is unusable" in caplog.text
