import json

import yaml

from vaelens.cli import main


def test_vaelens_sweep_command(tiny_spec, tmp_path, capsys):
    tiny_spec["grid"] = {"train.lr": [1e-3, 1e20]}
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(tiny_spec))
    code = main(["sweep", str(spec_path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 1  # a failed run makes the command fail, after the other run finished
    output = capsys.readouterr().out
    assert "done 1, failed 1, pending 0 (of 2 runs)" in output and "TrainingDiverged" in output
    runs = json.loads((tmp_path / "out" / "sweep.json").read_text())["runs"]
    assert [run["status"] for run in runs] == ["finished", "failed"]


def test_vaelens_sweep_reports_a_bad_spec_clearly(tmp_path, capsys):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({"grid": {"loss.bta": [1.0]}}))
    assert main(["sweep", str(spec_path), "--out", str(tmp_path / "out")]) == 2
    assert "unknown config key 'loss.bta'" in capsys.readouterr().err
    assert main(["sweep", "no-such-spec", "--out", str(tmp_path / "out")]) == 2
    assert "shipped spec name (dsprites-beta, tiny)" in capsys.readouterr().err


def test_ensemble_executor_runs_a_sweep_with_real_analysis(tiny_spec, tmp_path, capsys):
    tiny_spec.update(grid={"loss.beta": [1.0, 4.0]}, analyze=True, analysis_images=32, analysis_quick=True)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(tiny_spec))
    out = tmp_path / "out"
    assert main(["sweep", str(spec_path), "--out", str(out), "--executor", "ensemble", "--no-progress"]) == 0
    assert "done 2, failed 0, pending 0 (of 2 runs)" in capsys.readouterr().out
    runs = json.loads((out / "sweep.json").read_text())["runs"]
    for run in runs:
        analysis = json.loads((out / run["dir"] / "analysis.json").read_text())
        summary = json.loads((out / run["dir"] / "summary.json").read_text())
        assert summary["status"] == "finished" and summary["ensemble"]["models"] == 2
        assert 2 <= analysis["num_images"] <= 32
        assert analysis["rate"] >= 0


def test_an_option_the_executor_does_not_take_is_refused(tiny_spec, tmp_path, capsys):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(tiny_spec))
    code = main(["sweep", str(spec_path), "--out", str(tmp_path / "out"), "--runs-per-gpu", "2"])
    assert code == 2
    assert "the local executor takes no option runs_per_gpu; its options are: workers" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
