"""The ensemble sweep executor, driven with stand-ins for the sweep's RunTask and RunOutcome."""

import copy
import json
import sys
import types

import pytest

from vaelens.config import resolve
from vaelens.sweep.ensemble_executor import EnsembleExecutor


def _outcome(run_id, status, error, seconds):
    return types.SimpleNamespace(run_id=run_id, status=status, error=error, seconds=seconds)


@pytest.fixture
def base_config(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))
    return resolve("dsprites-bvae", None, [
        "data.subset=128", "model.name=mlp", "model.hidden_dim=32", "model.latent_dim=4", "train.steps=4",
        "train.batch_size=16", "train.checkpoint_every=2", "train.log_every=2", "train.eval_images=16",
        "train.progress=false", "train.device=cpu",
    ])


@pytest.fixture
def recorded_analyses(monkeypatch):
    """A stand-in for vaelens.analysis that writes analysis.json and records which runs it analysed."""
    calls = []

    def analyze_target(run_dir, progress=True, device="auto", **options):
        calls.append(run_dir)
        (run_dir / "analysis.json").write_text("{}")

    monkeypatch.setitem(sys.modules, "vaelens.analysis", types.SimpleNamespace(analyze_target=analyze_target))
    return calls


def _task(base, tmp_path, run_id, analyze=True, **values):
    config = copy.deepcopy(base)
    for key, value in values.items():
        section, name = key.split("__")
        setattr(getattr(config, section), name, value)
    return types.SimpleNamespace(run_id=run_id, config=config, axes=values, run_dir=tmp_path / "runs" / run_id,
                                 analyze=analyze)


def test_groups_train_skip_fall_back_and_fail_per_run(base_config, tmp_path, recorded_analyses):
    tasks = [
        _task(base_config, tmp_path, "beta1", loss__beta=1.0, train__seed=0),
        _task(base_config, tmp_path, "beta4", loss__beta=4.0, train__seed=1),
        _task(base_config, tmp_path, "broken", loss__beta=1e39, train__seed=2),
        _task(base_config, tmp_path, "ssim", analyze=False, loss__beta=1.0, loss__ssim_weight=0.5),
        _task(base_config, tmp_path, "faster", loss__beta=1.0, train__lr=1e-3),
    ]
    outcomes = EnsembleExecutor(max_models=2).execute(tasks, progress=False, make_outcome=_outcome)
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
    assert sorted(p.name for p in recorded_analyses) == ["beta1", "beta4", "faster"]

    # Rerunning skips every finished run (no training, no second analysis) and retries only the failed one.
    stamps = {t.run_id: (t.run_dir / "summary.json").stat().st_mtime_ns for t in tasks}
    again = EnsembleExecutor().execute(tasks, progress=False, make_outcome=_outcome)
    assert [o.status for o in again] == ["finished", "finished", "failed", "finished", "finished"]
    assert all(o.seconds < 1.0 for o in again if o.status == "finished")
    for task in tasks:
        if task.run_id != "broken":
            assert (task.run_dir / "summary.json").stat().st_mtime_ns == stamps[task.run_id]
    assert len(recorded_analyses) == 3


def test_a_failing_analysis_fails_only_its_run(base_config, tmp_path, monkeypatch):
    def analyze_target(run_dir, progress=True, device="auto", **options):
        raise RuntimeError("no test split here")

    monkeypatch.setitem(sys.modules, "vaelens.analysis", types.SimpleNamespace(analyze_target=analyze_target))
    tasks = [_task(base_config, tmp_path, "analysed", loss__beta=1.0),
             _task(base_config, tmp_path, "plain", analyze=False, loss__beta=2.0)]
    outcomes = EnsembleExecutor().execute(tasks, progress=False, make_outcome=_outcome)
    assert outcomes[0].status == "failed" and "analysis failed: RuntimeError: no test split here" in outcomes[0].error
    assert outcomes[1].status == "finished" and outcomes[1].error is None


def test_max_models_must_be_positive():
    with pytest.raises(ValueError, match="max_models"):
        EnsembleExecutor(max_models=0)
