"""analyze_run: the one analysis path of `vaelens analyze`, sweeps and the study, on a trained tiny run."""

import json
import shutil

import pytest

from vaelens.analysis.options import AnalysisOptions
from vaelens.analysis.saved_run import RunDivergedError, analyze_run
from vaelens.io import read_json


def test_a_run_is_analysed_with_the_options_it_is_given(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    options = AnalysisOptions(images=32, disentanglement=False, distortion_images=16, probe=True, probe_images=8,
                              seed=2)
    path, results = analyze_run(run, options, device="cpu", progress=False)
    analysis = read_json(path)
    assert path == run / "analysis.json" and analysis == json.loads(json.dumps(results))
    assert analysis["num_images"] == 32 and analysis["units"] == "nats"
    assert "mutual_information" in analysis and "posterior_variance.normalized_entropy" in analysis
    assert not any(key.startswith("disentanglement.") for key in analysis)
    assert analysis["probe.num_images"] == 8 and analysis["probe.seed"] == analysis["distortion.seed"] == 2
    assert analysis["run.status"] == "finished" and analysis["run.checkpoint_step"] == analysis["run.steps"] == 6


def test_a_diverged_run_is_analysed_only_when_asked(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    summary = read_json(run / "summary.json")
    (run / "summary.json").write_text(json.dumps({**summary, "status": "diverged", "step": 5,
                                                  "error": "training diverged at step 5: loss=nan"}))
    with pytest.raises(RunDivergedError, match=r"diverged at step 5 .*pass --diverged"):
        analyze_run(run, AnalysisOptions(images=16, disentanglement=False), device="cpu", progress=False)
    _, results = analyze_run(run, AnalysisOptions(images=16, disentanglement=False), device="cpu", progress=False,
                             allow_diverged=True)
    assert results["run.status"] == "diverged" and results["run.checkpoint_step"] == 6


@pytest.mark.parametrize("options, message", [
    ({"images": 1}, 'analysis_images must be an integer of at least 2 or "auto", got 1'),
    ({"images": "all"}, 'analysis_images must be an integer of at least 2 or "auto", got \'all\''),
    ({"probe_images": 0}, "analysis_probe_images must be an integer of at least 2, got 0"),
    ({"probe": "yes"}, "analysis_probe must be true or false"),
])
def test_nonsensical_options_are_refused(trained_run, options, message):
    with pytest.raises(ValueError, match=message):
        analyze_run(trained_run, AnalysisOptions(**options), device="cpu")
