"""What `vaelens compare` compares: models named, labelled and refused before anything is analysed when they
cannot take the same images."""

import shutil

import pytest

from vaelens.cli import main
from vaelens.report.compare_models import resolve_models

OPTIONS = ["--images", "32", "--no-disentanglement", "--no-progress", "--device", "cpu"]


@pytest.fixture
def run(finished_run):
    return str(finished_run.run_dir)


def _error_of(arguments: list[str], capsys, options=OPTIONS) -> str:
    assert main(["compare", *arguments, *options]) == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1, "one line"
    return message


def test_labels_are_folder_names_made_unique_or_given(finished_run, tmp_path, save_autoencoder):
    copy = shutil.copytree(finished_run.run_dir, tmp_path / "elsewhere" / finished_run.run_dir.name)
    vae = save_autoencoder(tmp_path / "sd-vae", in_channels=1)
    models = resolve_models([str(finished_run.run_dir), str(copy), f"diffusers:{vae}"])
    assert [model.label for model in models] == ["run", "run-2", "sd-vae"]
    assert [(model.kind, model.channels, model.image_size, model.downsampling) for model in models] == [
        ("run", 1, 64, 1), ("run", 1, 64, 1), ("diffusers", 1, None, 8)]
    assert models[0].checkpoint_step == 6 and models[2].checkpoint_step is None
    given = resolve_models([str(finished_run.run_dir), f"diffusers:{vae}"], labels=["pointwise", "sd"])
    assert [model.label for model in given] == ["pointwise", "sd"]
    for labels, expected in ((["one"], "1 --label for 2 models"), (["a", "a"], "labels must differ"),
                             (["a", "../b"], "cannot name a folder")):
        with pytest.raises(ValueError, match=expected):
            resolve_models([str(finished_run.run_dir), f"diffusers:{vae}"], labels=labels)


def test_models_that_need_other_images_are_refused(run, tmp_path, save_autoencoder, capsys):
    grey, rgb = save_autoencoder(tmp_path / "vae", 1), save_autoencoder(tmp_path / "rgb-vae", 3)
    out = ["--out", str(tmp_path / "out")]
    assert "different channels (run: 1, rgb-vae: 3)" in _error_of([run, f"diffusers:{rgb}", *out], capsys)
    assert "the runs take 64-pixel images" in _error_of([run, f"diffusers:{grey}", "--image-size", "32", *out], capsys)
    assert "need evaluation data" in _error_of([f"diffusers:{grey}", f"diffusers:{grey}", *out], capsys)
    assert "not divisible" in _error_of([f"diffusers:{grey}", f"diffusers:{grey}", "--data", "dsprites",
                                         "--image-size", "60", *out], capsys)
    assert not (tmp_path / "out").exists(), "nothing is analysed before the models are known to fit"


def test_runs_of_other_data_or_splits_are_refused(run, finished_run, tmp_path, capsys):
    other = shutil.copytree(finished_run.run_dir, tmp_path / "other-split")
    config = other / "config.yaml"
    config.write_text(config.read_text().replace("  seed: 0\n", "  seed: 7\n", 1))
    message = _error_of([run, str(other), "--out", str(tmp_path / "out")], capsys)
    assert "run and other-split were trained on different data or splits; give --data" in message
    message = _error_of([run, str(other), "--data", "dsprites", "--out", str(tmp_path / "out")], capsys)
    assert "its training images would be among the evaluation images" in message


def test_bad_model_names_are_refused(run, tmp_path, capsys):
    assert "at least two models" in _error_of([run, "--out", str(tmp_path / "out")], capsys)
    assert "not a vaelens run directory" in _error_of([run, str(tmp_path), "--out", str(tmp_path / "out")], capsys)
    assert "unknown --model 'onnx:model.onnx'" in _error_of([run, "onnx:model.onnx", "--out", str(tmp_path)], capsys)
    assert "no diffusers model folder" in _error_of([run, f"diffusers:{tmp_path / 'none'}", "--out", str(tmp_path)],
                                                    capsys)
    assert '"auto" would choose' in _error_of([run, run, "--out", str(tmp_path)], capsys, ["--images", "auto"])
