"""Tests for vaelens.analysis.target: what `vaelens analyze` accepts and how it refuses bad targets."""

import shutil

import pytest

from vaelens.cli import main


def _error_of(arguments, capsys) -> str:
    assert main(["analyze", *arguments, "--no-progress", "--device", "cpu"]) == 2
    return capsys.readouterr().err


def test_missing_run_directory(tmp_path, capsys):
    assert "not a vaelens run directory" in _error_of([str(tmp_path / "nowhere")], capsys)


def test_corrupt_checkpoint(trained_run, tmp_path, capsys):
    copy = shutil.copytree(trained_run, tmp_path / "copy")
    tensors = max((copy / "checkpoints").glob("*.safetensors"))
    tensors.write_bytes(b"not a safetensors file")
    message = _error_of([str(copy)], capsys)
    assert "corrupt" in message and tensors.name in message


@pytest.mark.parametrize("arguments, expected", [
    ([], "either a run directory or --model"),
    (["RUN", "--model", "diffusers:somewhere"], "either a run directory or --model"),
    (["--model", "onnx:model.onnx", "--data", "natural", "--out", "OUT"], "unknown --model"),
    (["--model", "diffusers:somewhere", "--out", "OUT"], "needs evaluation data"),
    (["--model", "diffusers:somewhere", "--data", "natural"], "give --out"),
    (["--model", "diffusers:MISSING", "--data", "natural", "--out", "OUT"], "no diffusers model folder"),
])
def test_bad_target_arguments(arguments, expected, trained_run, tmp_path, capsys):
    substitutions = {"RUN": str(trained_run), "OUT": str(tmp_path / "out"), "diffusers:MISSING":
                     f"diffusers:{tmp_path / 'missing'}"}
    arguments = [substitutions.get(argument, argument) for argument in arguments]
    assert expected in _error_of(arguments, capsys)


def test_analyze_target_runs_the_probe_when_asked(trained_run, tmp_path):
    from vaelens.analysis import analyze_target

    copy = shutil.copytree(trained_run, tmp_path / "copy")
    _, results = analyze_target(copy, max_images=32, quick=True, device="cpu", progress=False, disentanglement=False,
                                probe=True)
    assert results["probe.num_images"] == 32 and "probe_skipped" not in results


def test_image_counts_from_the_command_line():
    from vaelens.analysis.sample_size import image_count

    assert image_count("auto") == "auto" and image_count("300") == 300
    for text in ("1", "all"):
        with pytest.raises(ValueError):
            image_count(text)
