"""export_run: which checkpoint, where it goes (a new folder, whole or not at all) and what it records."""

from __future__ import annotations

import json

import pytest

from vaelens import config as config_module
from vaelens.errors import VaelensError
from vaelens.export import PROVENANCE, export_run
from vaelens.export import check as check_module
from vaelens.training.rundir import RunDirectory


def test_the_record_names_the_run_its_step_and_config(mlp_run, tmp_path):
    out, record = export_run(mlp_run, "safetensors", tmp_path / "weights")
    config = RunDirectory(mlp_run).read_config()
    assert record["run_id"] == config_module.config_hash(config) and record["run_dir"] == str(mlp_run.resolve())
    assert record["step"] == 4 and record["status"] == "finished" and record["convention"] == "additive"
    assert record["image_shape"] == [3, 32, 32] and record["latent_shape"] == [4]
    assert config_module.from_dict(record["config"]) == config


def test_an_earlier_checkpoint_is_exported_when_asked_for(mlp_run, tmp_path):
    assert RunDirectory(mlp_run).checkpoint_steps() == [2, 4]
    _, record = export_run(mlp_run, "safetensors", tmp_path / "weights", step=2)
    assert record["step"] == 2


def test_a_non_empty_out_is_refused_unless_forced(mlp_run, tmp_path):
    out = tmp_path / "weights"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not empty; choose another output folder or replace it"):
        export_run(mlp_run, "safetensors", out)
    assert (out / "notes.txt").read_text() == "mine"
    export_run(mlp_run, "safetensors", out, force=True)
    assert sorted(path.name for path in out.iterdir()) == ["model.safetensors", PROVENANCE]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["weights"]  # no temporary left beside it


def test_an_empty_out_is_filled(mlp_run, tmp_path):
    (tmp_path / "weights").mkdir()
    out, _ = export_run(mlp_run, "safetensors", tmp_path / "weights")
    assert (out / "model.safetensors").is_file()


def test_forcing_an_export_over_the_run_itself_is_refused(mlp_run):
    for target in (mlp_run, mlp_run.parent):
        with pytest.raises(VaelensError, match="holds the run directory"):
            export_run(mlp_run, "safetensors", target, force=True)
    assert RunDirectory(mlp_run).status() == "finished"


def test_an_export_that_fails_its_check_writes_nothing(mlp_run, tmp_path, monkeypatch):
    monkeypatch.setattr(check_module, "TOLERANCE", -1.0)  # even an exact copy now fails the check
    with pytest.raises(VaelensError, match="does not reproduce the vaelens model"):
        export_run(mlp_run, "safetensors", tmp_path / "weights")
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_format_is_one_line(mlp_run, tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'tflite'; choose one of diffusers, onnx, safetensors"):
        export_run(mlp_run, "tflite", tmp_path / "out")


def test_the_record_is_valid_json_beside_the_weights(mlp_run, tmp_path):
    out, record = export_run(mlp_run, "safetensors", tmp_path / "weights")
    assert json.loads((out / PROVENANCE).read_text()) == record
