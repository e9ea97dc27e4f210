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
