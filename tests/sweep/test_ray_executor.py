import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import vaelens
from vaelens.sweep import expand, load_spec, run_sweep
from vaelens.training.checkpoint import list_checkpoints

ray = pytest.importorskip("ray", reason="the ray executor needs Ray: pip install 'vaelens[ray]'")
pytestmark = pytest.mark.slow  # starts a real Ray instance and kills a worker


def _kill_process_writing(path: Path, once, timeout: float = 120.0) -> int | None:
    """SIGKILL the process that holds `path` open (a Ray worker training a run) once `once()` is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not once():
            time.sleep(0.02)
            continue
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or entry.name == str(os.getpid()):
                continue
            try:
                if any(os.readlink(fd) == str(path) for fd in (entry / "fd").iterdir()):
                    os.kill(int(entry.name), signal.SIGKILL)
                    return int(entry.name)
            except OSError:
                continue
        time.sleep(0.02)
    return None


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the Ray worker to kill through /proc (Linux)")
def test_ray_executor_on_a_local_two_cpu_instance(tiny_spec, tmp_path, monkeypatch):
    # Ray workers import vaelens themselves; from a source checkout they need its absolute path.
    monkeypatch.setenv("PYTHONPATH", str(Path(vaelens.__file__).resolve().parents[1]))
    tiny_spec["grid"] = {}
    tiny_spec["zip"] = [{"train.steps": [200, 3], "train.lr": [1e-3, 1e20],  # a run to kill, a diverging run
                         "train.checkpoint_every": [20, 1000]}]
    long_run = expand(load_spec(tiny_spec), tmp_path)[0].run_dir
    killed = []
    # The worker training the long run is killed after its first checkpoint: Ray must retry the
    # run, and the retry resumes it from that checkpoint.
    def checkpointed():
        return (long_run / "checkpoints").is_dir() and bool(list_checkpoints(long_run / "checkpoints"))

    killer = threading.Thread(target=lambda: killed.append(
        _kill_process_writing(long_run / "metrics.jsonl", once=checkpointed)))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        killer.start()
        result = run_sweep(tiny_spec, tmp_path, executor="ray", progress=False)
        assert ray.is_initialized()  # an instance the caller started is left running for them
    finally:
        killer.join()
        ray.shutdown()
    assert killed[0] is not None, "no Ray worker was seen training the long run"
    assert [run.status for run in result.runs] == ["finished", "failed"], result.runs
    assert result.runs[1].error.startswith("TrainingDiverged")
    summary = json.loads((long_run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"] == 200 and summary["resumed_from"] >= 20
