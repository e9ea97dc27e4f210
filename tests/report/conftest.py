"""Runs for the report tests: records constructed with chosen metrics (`make_run`), and a tiny real sweep
directory, built without the sweep package: 2 losses x 2 seeds at one beta.

The real runs are trained with vaelens.training.train and analysed with vaelens.analysis, then indexed
in a sweep.json of the layout `vaelens sweep` writes (see vaelens.training.sweepdir).
"""

import os
from pathlib import Path

import pytest

from vaelens.config import from_dict, resolve, save_yaml
from vaelens.io import atomic_write_json
from vaelens.training.sweepdir import RunRecord


def _make_run(family: str, seed: int, beta: float, convention: str = "additive", dataset: str = "dsprites",
              status: str = "finished", **metrics) -> RunRecord:
    """A finished, analysed run record of a loss family with default metrics, `metrics` (analysis.json keys)
    overriding them."""
    loss = {"beta": beta, "convention": convention, "likelihood": "bernoulli",
            "perceptual": "features:dsprites-supervised" if family in ("+perceptual", "+both") else None,
            "disc_weight": 0.5 if family in ("+adversarial", "+both") else 0.0}
    config = {"data": {"name": dataset, "image_size": 64, "subset": 128}, "model": {"name": "conv64"},
              "loss": loss, "train": {"seed": seed, "steps": 10}}
    analysis = {"rate": 10.0, "mutual_information": 4.0, "geometry_active.isoscore": 0.5,
                "geometry_active.participation_ratio": 3.0, "posterior_variance.normalized_entropy": 0.8, **metrics}
    return RunRecord(f"{family}-{convention}-{beta}-{seed}", Path("/nonexistent"), {}, status, None, from_dict(config),
                     {"weighting_convention": convention, "data": {"image_shape": [1, 64, 64]}}, analysis)


@pytest.fixture
def make_run():
    """The constructor of run records with chosen metrics (see _make_run)."""
    return _make_run


TINY = ["data.subset=128", "model.channels=8", "model.hidden_dim=32", "model.latent_dim=4",
        "train.steps=6", "train.batch_size=16", "train.checkpoint_every=6", "train.log_every=4",
        "train.eval_images=16", "train.progress=false", "train.device=cpu", "loss.beta=2.0"]
# A random-backbone LPIPS stands in for a neural term: pretrained backbones are absent offline.
PERCEPTUAL = ["loss.perceptual=lpips-squeeze", "loss.lpips_random_backbone=true", "loss.perceptual_weight=100"]


def write_tiny_sweep(sweep_dir: Path, runs: list[tuple[str, list[str]]], failed: str | None = None) -> Path:
    """Train + analyse each (run_id, overrides) into sweep_dir/runs/<id>; index them in sweep.json."""
    from vaelens.analysis import analyze, write_analysis
    from vaelens.data import load_dataset
    from vaelens.training import train

    entries, test_split = [], None
    for run_id, overrides in runs:
        config = resolve("dsprites-bvae", None, TINY + overrides)
        result = train(config, sweep_dir / "runs" / run_id)
        data = test_split = test_split or load_dataset(config.data, split="test")  # all runs share data settings
        results = analyze(result.model, data, objective=result.objective, max_images=64, distortion_images=32,
                          disentanglement=False, progress=False)
        write_analysis(results, result.run_dir, result.model, result.objective, data)
        entries.append({"id": run_id, "dir": f"runs/{run_id}", "status": "finished", "error": None,
                        "seconds": 1.0, "axes": dict(o.split("=", 1) for o in overrides)})
    if failed:
        config = resolve("dsprites-bvae", None, TINY)
        save_yaml(config, sweep_dir / "runs" / failed / "config.yaml")
        entries.append({"id": failed, "dir": f"runs/{failed}", "status": "failed", "seconds": 0.1,
                        "error": "training diverged at step 3", "axes": {}})
    atomic_write_json(sweep_dir / "sweep.json", {"spec": {"preset": "dsprites-bvae"}, "runs": entries})
    return sweep_dir


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory):
    """pointwise and +perceptual (additive), seeds 0 and 1, beta 2, plus one failed run."""
    root = tmp_path_factory.mktemp("sweep")
    previous = os.environ.get("VAELENS_CACHE")
    os.environ["VAELENS_CACHE"] = str(root / "cache")
    try:
        runs = [(f"{name}-s{seed}", [f"train.seed={seed}", *extra])
                for name, extra in (("pointwise", []), ("perceptual", PERCEPTUAL)) for seed in (0, 1)]
        yield write_tiny_sweep(root / "tiny", runs, failed="broken")
    finally:
        if previous is None:
            os.environ.pop("VAELENS_CACHE", None)
        else:
            os.environ["VAELENS_CACHE"] = previous
