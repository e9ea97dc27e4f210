import json
from pathlib import Path

import pytest

import vaelens
from vaelens.sweep import run_sweep

ray = pytest.importorskip("ray", reason="the ray executor needs Ray: pip install 'vaelens[ray]'")


def test_ray_executor_on_a_local_two_cpu_instance(tiny_spec, tmp_path, monkeypatch):
    # Ray workers import vaelens themselves; from a source checkout they need its absolute path.
    source = str(Path(vaelens.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", source)
    tiny_spec["grid"] = {"train.lr": [1e-3, 1e20]}  # one run finishes, one diverges
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = run_sweep(tiny_spec, tmp_path, executor="ray", progress=False)
        assert ray.is_initialized()  # an instance the caller started is left running for them
    finally:
        ray.shutdown()
    assert [run["status"] for run in result.runs] == ["finished", "failed"]
    assert result.runs[1]["error"].startswith("TrainingDiverged")
    summary = json.loads((tmp_path / result.runs[0]["dir"] / "summary.json").read_text())
    assert summary["status"] == "finished"

