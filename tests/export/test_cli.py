"""`vaelens export`: the command line writes the folder, and refuses what it cannot export in one line."""

from __future__ import annotations

import shutil

from vaelens.cli import main
from vaelens.io import atomic_write_json, read_json


def _error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_export_writes_the_folder_and_says_how_close_it_is(mlp_run, tmp_path, capsys):
    assert main(["export", str(mlp_run), "--format", "safetensors", str(tmp_path / "weights")]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {tmp_path / 'weights'} (safetensors, run " in printed and "at step 4" in printed
    assert "largest difference from vaelens: mean 0, logvar 0, decode 0" in printed


def test_a_model_without_a_diffusers_equivalent_is_one_line_with_exit_code_2(mlp_run, tmp_path, capsys):
    assert main(["export", str(mlp_run), "--format", "diffusers", str(tmp_path / "vae")]) == 2
    assert _error_lines(capsys) == ["vaelens export: error: model mlp has no diffusers equivalent; "
                                    "use --format onnx or --format safetensors"]
    assert not (tmp_path / "vae").exists()


def test_a_non_empty_out_is_one_line(mlp_run, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("")
    assert main(["export", str(mlp_run), "--format", "safetensors", str(tmp_path / "taken")]) == 2
    (line,) = _error_lines(capsys)
    assert line.endswith("is not empty; choose another output folder or replace it (--force)")


def test_a_resnet_run_of_the_earlier_layout_is_refused_in_one_line(resnet_run, tmp_path, capsys):
    old_run = tmp_path / "old-run"
    shutil.copytree(resnet_run, old_run)
    for checkpoint in (old_run / "checkpoints").glob("step_*.json"):  # as written before the layout was recorded
        atomic_write_json(checkpoint, {k: v for k, v in read_json(checkpoint).items() if k != "architectures"})
    assert main(["export", str(old_run), "--format", "diffusers", str(tmp_path / "vae")]) == 2
    (line,) = _error_lines(capsys)
    assert "holds 'model' weights of another revision of this architecture" in line
    assert line.endswith("train it again in a new run directory (its run id has changed, so `vaelens sweep` "
                         "does so itself)")
    assert not (tmp_path / "vae").exists()
