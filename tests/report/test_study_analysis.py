"""vaelens.study's CPU-budget analysis, on a run of the tiny sweep (the fixture lives in this folder)."""

import shutil

from vaelens.io import atomic_write_json, read_json
from vaelens.study import analyze_without_disentanglement


def test_finished_runs_without_analysis_are_analysed_without_disentanglement(tiny_sweep, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(tiny_sweep / "runs" / "pointwise-s0", sweep / "runs" / "a")
    (sweep / "runs" / "a" / "analysis.json").unlink()
    atomic_write_json(sweep / "sweep.json", {"runs": [
        {"id": "a", "dir": "runs/a", "status": "finished", "axes": {}},
        {"id": "b", "dir": "runs/b", "status": "failed", "error": "x", "axes": {}}]})
    analyze_without_disentanglement(sweep, max_images=32, progress=False)
    analysis = read_json(sweep / "runs" / "a" / "analysis.json")
    assert analysis["num_images"] == 32 and analysis["units"] == "nats"
    assert "mutual_information" in analysis and "posterior_variance.normalized_entropy" in analysis
    assert not any(key.startswith("disentanglement.") for key in analysis)
    assert not (sweep / "runs" / "b").exists()
