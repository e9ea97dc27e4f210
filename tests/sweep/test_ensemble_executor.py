"""The ensemble sweep executor on real sweep tasks: grouping, skipping, falling back, failing per run."""

import copy
import json

import pytest

from vaelens.analysis.options import AnalysisOptions
from vaelens.config import resolve
from vaelens.sweep import RunTask, load_spec, run_sweep
from vaelens.sweep.ensemble_executor import EnsembleExecutor, EnsembleOptions

ANALYSIS = AnalysisOptions(images=16, distortion_images=8, disentanglement=False)


@pytest.fixture
def base_config(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))
    return resolve("dsprites-bvae", None, [
        "data.subset=128", "model.name=mlp", "model.hidden_dim=32", "model.latent_dim=4", "train.steps=4",
        "train.batch_size=16", "train.checkpoint_every=2", "train.log_every=2", "train.eval_images=16",
        "train.progress=false", "train.device=cpu",
    ])


def _task(base, tmp_path, run_id, analysis=ANALYSIS, **values) -> RunTask:
    config = copy.deepcopy(base)
    for key, value in values.items():
        section, name = key.split("__")
        setattr(getattr(config, section), name, value)
    return RunTask(run_id=run_id, config=config, axes=values, run_dir=tmp_path / "runs" / run_id,
                   analysis=copy.deepcopy(analysis))


def _analysed(tasks) -> list[str]:
    return sorted(task.run_id for task in tasks if (task.run_dir / "analysis.json").is_file())


def test_groups_train_skip_fall_back_and_fail_per_run(base_config, tmp_path):
    tasks = [
        _task(base_config, tmp_path, "beta1", loss__beta=1.0, train__seed=0),
        _task(base_config, tmp_path, "beta4", loss__beta=4.0, train__seed=1),
        # 1e39 is a valid beta that overflows float32: this member's loss is inf from step 0.
        _task(base_config, tmp_path, "broken", loss__beta=1e39, train__seed=2),
        _task(base_config, tmp_path, "ssim", AnalysisOptions(enabled=False), loss__beta=1.0, loss__ssim_weight=0.5),
        _task(base_config, tmp_path, "faster", loss__beta=1.0, train__lr=1e-3),
    ]
    outcomes = EnsembleExecutor(EnsembleOptions(max_models=2)).execute(tasks, progress=False)
    assert [o.run_id for o in outcomes] == [t.run_id for t in tasks]
    status = {o.run_id: o.status for o in outcomes}
    assert status == {"beta1": "finished", "beta4": "finished", "broken": "failed", "ssim": "finished",
                      "faster": "finished"}
    broken = outcomes[2]
    assert "diverged at step 0" in broken.error and broken.seconds > 0
    summaries = {t.run_id: json.loads((t.run_dir / "summary.json").read_text()) for t in tasks}
    # beta1/beta4/broken share a key: one ensemble (chunked by max_models=2); ssim needs the single trainer.
    assert summaries["beta1"]["ensemble"]["models"] == 2 and summaries["broken"]["status"] == "diverged"
    assert "ensemble" not in summaries["ssim"] and summaries["ssim"]["objective"]["ssim_weight"] == 0.5
    assert summaries["faster"]["ensemble"]["models"] == 1
    assert _analysed(tasks) == ["beta1", "beta4", "faster"]

    # Rerunning skips every finished run (no training, no second analysis) and retries only the failed one.
    stamps = {t.run_id: (t.run_dir / "summary.json").stat().st_mtime_ns for t in tasks}
    analysed = {t.run_id: (t.run_dir / "analysis.json").stat().st_mtime_ns for t in tasks if t.analysis.enabled
                and t.run_id != "broken"}
    again = EnsembleExecutor().execute(tasks, progress=False)
    assert [o.status for o in again] == ["finished", "finished", "failed", "finished", "finished"]
    assert all(o.seconds < 1.0 for o in again if o.status == "finished")
    for task in tasks:
        if task.run_id != "broken":
            assert (task.run_dir / "summary.json").stat().st_mtime_ns == stamps[task.run_id]
    assert {run_id: (tmp_path / "runs" / run_id / "analysis.json").stat().st_mtime_ns
            for run_id in analysed} == analysed


def test_a_failing_analysis_fails_only_its_run(base_config, tmp_path):
    # An analysis that cannot run for real: one image cannot give latent statistics.
    tasks = [_task(base_config, tmp_path, "analysed", AnalysisOptions(images=1), loss__beta=1.0),
             _task(base_config, tmp_path, "plain", AnalysisOptions(enabled=False), loss__beta=2.0)]
    outcomes = EnsembleExecutor().execute(tasks, progress=False)
    assert outcomes[0].status == "failed"
    assert "analysis failed: ValueError: analysis_images must be an integer of at least 2" in outcomes[0].error
    assert outcomes[1].status == "finished" and outcomes[1].error is None


def test_max_models_must_be_positive():
    with pytest.raises(ValueError, match="max_models"):
        EnsembleExecutor(EnsembleOptions(max_models=0))


def test_max_models_comes_from_the_spec_and_the_caller(tiny_spec, tmp_path):
    tiny_spec.update(grid={"loss.beta": [1.0, 2.0, 4.0]}, executors={"ensemble": {"max_models": 2}})
    run_sweep(load_spec(tiny_spec), tmp_path / "spec", executor="ensemble", progress=False)
    sizes = sorted(json.loads(path.read_text())["ensemble"]["models"]
                   for path in (tmp_path / "spec" / "runs").glob("*/summary.json"))
    assert sizes == [1, 2, 2]
    run_sweep(load_spec(tiny_spec), tmp_path / "caller", executor="ensemble", progress=False, max_models=3)
    sizes = sorted(json.loads(path.read_text())["ensemble"]["models"]
                   for path in (tmp_path / "caller" / "runs").glob("*/summary.json"))
    assert sizes == [3, 3, 3]
