"""What a scheduler or a crash does to a run: SIGTERM ends it as Ctrl-C does (one line, how to resume; the next
run resumes), and a sweep killed with kill -9 takes its worker processes with it (none goes on training, none
hangs), after which the rerun finds every run finished or resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TINY = ["--preset", "dsprites-bvae", "data.subset=128", "model.channels=8", "model.hidden_dim=32",
        "model.latent_dim=4", "train.batch_size=16", "train.checkpoint_every=5", "train.log_every=5",
        "train.device=cpu"]


def _vaelens(*arguments, **options) -> subprocess.Popen:
    environment = {**os.environ, "VAELENS_CACHE": options.pop("cache"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", "import sys; from vaelens.cli import main; sys.exit(main())",
                             *arguments], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)


def _wait_for(condition, seconds: float = 120.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process is None or process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_ends_a_run_as_an_interrupt_and_the_next_run_resumes(tmp_path):
    out = tmp_path / "run"
    cache = str(tmp_path / "cache")
    process = _vaelens("train", *TINY, "train.steps=100000", "train.progress=false", "--out", str(out), cache=cache)
    _wait_for(lambda: any((out / "checkpoints").glob("step_*.json")) if (out / "checkpoints").is_dir() else False,
              process=process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vaelens train: terminated (SIGTERM)"), err
    assert "rerun it with --resume" in lines[0]
    steps = sorted(int(path.stem.split("_")[1]) for path in (out / "checkpoints").glob("step_*.json"))
    resumed = _vaelens("train", *TINY, f"train.steps={steps[-1] + 5}", "train.progress=false", "--out", str(out),
                       "--resume", cache=cache)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert json.loads((out / "summary.json").read_text())["resumed_from"] == steps[-1]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_a_sweep_takes_its_workers_with_it(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps({"name": "orphans", "preset": "dsprites-bvae", "overrides": TINY[2:] + [
        "train.steps=400", "train.progress=false"], "grid": {"loss.beta": [1, 2, 3]}, "analyze": False}))
    out, cache = tmp_path / "sweep", str(tmp_path / "cache")
    sweep = _vaelens("sweep", str(spec), "--out", str(out), "--workers", "2", "--no-progress", cache=cache)
    _wait_for(lambda: len(list(out.glob("runs/*/checkpoints/step_*.json"))) >= 2, process=sweep)
    children = Path(f"/proc/{sweep.pid}/task/{sweep.pid}/children").read_text().split()
    workers = [int(pid) for pid in children if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]
    assert len(workers) == 2, children
    os.kill(sweep.pid, signal.SIGKILL)
    sweep.wait()
    _wait_for(lambda: not any(_alive(int(pid)) for pid in children), seconds=15)  # workers and resource tracker
    progress = {path.parent.parent.name: len(list(path.parent.glob("step_*.json")))
                for path in out.glob("runs/*/checkpoints/step_*.json")}
    time.sleep(1.5)
    assert {path.parent.parent.name: len(list(path.parent.glob("step_*.json")))
            for path in out.glob("runs/*/checkpoints/step_*.json")} == progress, "no orphan trains on"
    statuses = {}
    for run in out.glob("runs/*"):
        summary = run / "summary.json"
        statuses[run.name] = json.loads(summary.read_text())["status"] if summary.exists() else "incomplete"
    assert set(statuses.values()) <= {"finished", "incomplete"}, statuses
    rerun = _vaelens("sweep", str(spec), "--out", str(out), "--workers", "2", "--no-progress", cache=cache)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    index = json.loads((out / "sweep.json").read_text())
    assert [entry["status"] for entry in index["runs"]] == ["finished"] * 3
