import json

import numpy as np
import pytest

from vaelens.sweep import expand, load_spec, run_sweep, run_task
from vaelens.sweep.executors import EXECUTORS, build_executor
from vaelens.sweep.local_executor import LocalExecutor, LocalOptions, place_on_devices
from vaelens.training import train


def _one_task(tiny_spec, tmp_path, **overrides):
    tiny_spec["grid"] = {"loss.beta": [1.0]}
    tiny_spec["overrides"].update(overrides)
    return expand(load_spec(tiny_spec), tmp_path)[0]


def test_run_task_trains_then_skips_a_finished_run(tiny_spec, tmp_path):
    task = _one_task(tiny_spec, tmp_path)
    outcome = run_task(task)
    assert (outcome.run_id, outcome.status, outcome.error) == (task.run_id, "finished", None)
    summary = task.run_dir / "summary.json"
    written = summary.stat().st_mtime_ns
    again = run_task(task)
    assert again.status == "finished" and again.seconds == 0.0
    assert summary.stat().st_mtime_ns == written


def test_run_task_resumes_an_interrupted_run(tiny_spec, tmp_path):
    task = _one_task(tiny_spec, tmp_path, **{"train.steps": 4, "train.checkpoint_every": 2})
    train(task.config, task.run_dir)
    # Make it look killed after step 2: the step-2 checkpoint is there, the final one and the summary are not.
    for path in (task.run_dir / "checkpoints").glob("step_*4.*"):
        path.unlink()
    (task.run_dir / "summary.json").unlink()
    assert run_task(task).status == "finished"
    summary = json.loads((task.run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["resumed_from"] == 2


def test_run_killed_before_its_first_checkpoint_starts_over(tiny_spec, tmp_path):
    task = _one_task(tiny_spec, tmp_path)
    train(task.config, task.run_dir)
    (task.run_dir / "summary.json").unlink()
    for path in (task.run_dir / "checkpoints").iterdir():
        path.unlink()
    assert run_task(task).status == "finished"
    steps = [json.loads(line)["step"] for line in (task.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]  # the stale log of the killed attempt is not appended to


def test_a_failing_run_is_recorded_and_the_others_finish(tiny_spec, tmp_path, capsys):
    nan_images = np.random.default_rng(0).random((16, 64, 64)).astype(np.float32)
    nan_images[3, 5, 5] = np.nan
    np.savez(tmp_path / "nan.npz", images=nan_images)
    tiny_spec["grid"] = {}
    tiny_spec["zip"] = [{"data.name": ["dsprites", "npz", "dsprites"],
                         "data.path": [None, str(tmp_path / "nan.npz"), None],
                         "train.lr": [1e-3, 1e-3, 1e20]}]  # fine, NaN data, diverging
    result = run_sweep(tiny_spec, tmp_path / "sweep")
    assert [run.status for run in result.runs] == ["finished", "failed", "failed"]
    assert "NaN" in result.runs[1].error and result.runs[1].error.startswith("ValueError")
    assert result.runs[2].error.startswith("TrainingDiverged")
    recorded = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert recorded["runs"] == [run.to_json() for run in result.runs]
    assert recorded["runs"][0]["dir"] == f"runs/{recorded['runs'][0]['id']}"
    assert "done 1, failed 2, pending 0" in capsys.readouterr().out
    assert (tmp_path / "sweep" / "spec.yaml").is_file()


def test_rerunning_a_sweep_skips_finished_runs_and_retries_failed_ones(tiny_spec, tmp_path):
    tiny_spec["grid"] = {"train.lr": [1e-3, 1e20]}
    first = run_sweep(tiny_spec, tmp_path, progress=False)
    assert [run.status for run in first.runs] == ["finished", "failed"]
    finished = tmp_path / first.runs[0].dir / "summary.json"
    written = finished.stat().st_mtime_ns
    second = run_sweep(tiny_spec, tmp_path, progress=False)
    assert [run.status for run in second.runs] == ["finished", "failed"]
    assert finished.stat().st_mtime_ns == written
    assert second.runs[0].seconds == first.runs[0].seconds  # kept from the session that ran it


@pytest.mark.slow  # spawns worker processes, each importing torch
def test_process_pool_runs_every_task(tiny_spec, tmp_path):
    result = run_sweep(tiny_spec, tmp_path, workers=2, progress=False)
    assert [run.status for run in result.runs] == ["finished", "finished"]
    for run in result.runs:
        assert json.loads((tmp_path / run.dir / "summary.json").read_text())["status"] == "finished"


def test_runs_are_placed_round_robin_over_gpus(tiny_spec, tmp_path):
    tiny_spec["overrides"]["train.device"] = "auto"
    tiny_spec["grid"] = {"train.seed": [0, 1, 2]}
    tasks = expand(load_spec(tiny_spec), tmp_path)
    tasks[1].config.train.device = "cpu"  # an explicit device is kept
    placed = place_on_devices(tasks, device_count=2)
    assert [t.config.train.device for t in placed] == ["cuda:0", "cpu", "cuda:1"]
    assert [t.config.train.device for t in tasks] == ["auto", "cpu", "auto"]  # the originals are untouched
    assert place_on_devices(tasks, device_count=0) == tasks


def test_executor_registry_and_bad_arguments(tiny_spec, tmp_path):
    assert set(EXECUTORS) == {"local", "ray", "ensemble"} and isinstance(build_executor("local"), LocalExecutor)
    with pytest.raises(ValueError, match="unknown executor 'slurm'"):
        run_sweep(tiny_spec, tmp_path, executor="slurm")
    with pytest.raises(ValueError, match="--workers must be at least 1"):
        LocalExecutor(LocalOptions(workers=0))
    # An option the executor does not take is an error naming it, never silently dropped.
    with pytest.raises(ValueError, match="the local executor takes no option runs_per_gpu; its options are: workers"):
        run_sweep(tiny_spec, tmp_path, executor="local", runs_per_gpu=2)
    assert not (tmp_path / "sweep.json").exists()


def test_a_trained_run_missing_its_analysis_is_analysed_without_retraining(tiny_spec, tmp_path):
    task = _one_task(tiny_spec, tmp_path, **{"data.subset": 256})
    assert run_task(task).status == "finished" and not (task.run_dir / "analysis.json").exists()
    written = (task.run_dir / "summary.json").stat().st_mtime_ns
    task.analysis.enabled, task.analysis.images = True, 16
    outcome = run_task(task)
    assert outcome.status == "finished", outcome.error
    assert (task.run_dir / "summary.json").stat().st_mtime_ns == written
    analysis = json.loads((task.run_dir / "analysis.json").read_text())
    assert analysis["units"] == "nats" and analysis["num_images"] == 16
