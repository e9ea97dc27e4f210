"""The optional TensorBoard writer, read back with tensorboard's own event reader."""

import json

import pytest

from vaelens import train
from vaelens.analysis.options import AnalysisOptions
from vaelens.analysis.saved_run import analyze_run
from vaelens.training import RunDirectory

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="pip install 'vaelens[tensorboard]'")


def test_every_logged_term_and_the_checkpoint_images_read_back(tiny_config, tmp_path):
    tiny_config.train.tensorboard = True
    tiny_config.loss.ssim_weight = 0.1  # one more term in the log
    train(tiny_config, tmp_path / "run")
    directory = RunDirectory(tmp_path / "run")
    reader = event_accumulator.EventAccumulator(str(directory.tensorboard_folder),
                                                size_guidance={event_accumulator.SCALARS: 0,
                                                               event_accumulator.IMAGES: 0})
    reader.Reload()
    records = directory.read_metrics()
    logged = {key for record in records for key in record if key != "step"}
    assert {"loss", "rate", "distortion", "pixel", "structural", "images_per_s"} <= logged
    assert {tag for tag in reader.Tags()["scalars"] if tag.startswith("train/")} == {f"train/{key}" for key in logged}
    for key in ("loss", "rate", "structural"):
        events = reader.Scalars(f"train/{key}")
        assert [event.step for event in events] == [record["step"] for record in records]
        assert [event.value for event in events] == pytest.approx([record[key] for record in records], rel=1e-6)
    # Checkpoints at steps 2, 4 and the final one at 6: 16 originals + 16 reconstructions each.
    assert {tag.split("/")[0] for tag in reader.Tags()["images"]} == {"reconstructions", "samples"}
    steps = sorted({event.step for tag in reader.Tags()["images"] if tag.startswith("reconstructions")
                    for event in reader.Images(tag)})
    assert steps == [2, 4, 6]


def test_off_by_default_and_out_of_the_run_id(tiny_config, finished_run):
    from vaelens.config import config_hash

    assert not RunDirectory(finished_run.run_dir).tensorboard_folder.exists()
    switched = __import__("copy").deepcopy(tiny_config)
    switched.train.tensorboard = True
    assert config_hash(switched) == config_hash(tiny_config)


def test_without_the_package_the_run_is_refused_before_anything_is_written(tiny_config, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    tiny_config.train.tensorboard = True
    with pytest.raises(ValueError, match=r"pip install 'vaelens\[tensorboard\]'"):
        train(tiny_config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def _hyperparameters(reader) -> dict:
    from tensorboard.plugins.hparams import metadata

    content = reader.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_START_INFO_TAG]
    values = metadata.parse_session_start_info_plugin_data(content).hparams
    return {key: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind")) for key, value in values.items()}


def test_a_run_carries_its_hyperparameters_and_final_metrics_and_its_analysis(tiny_config, tmp_path):
    tiny_config.train.tensorboard = True
    tiny_config.loss.beta = 2.5
    result = train(tiny_config, tmp_path / "run")
    analyze_run(result.run_dir, AnalysisOptions(images=32, distortion_images=16, disentanglement=False),
                device="cpu", progress=False)
    folder = RunDirectory(result.run_dir).tensorboard_folder
    reader = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.SCALARS: 0})
    reader.Reload()
    assert _hyperparameters(reader) == {"beta": 2.5, "seed": tiny_config.train.seed, "convention": "additive",
                                        "family": "pointwise", "dataset": "dsprites", "image_size": 64,
                                        "model": tiny_config.model.name, "likelihood": "bernoulli"}
    evaluation = result.summary["eval"]
    for key in ("loss", "rate", "distortion", "mean_distortion"):
        [event] = reader.Scalars(f"final/{key}")
        assert (event.step, event.value) == (tiny_config.train.steps, pytest.approx(evaluation[key], rel=1e-6))
    analysis = json.loads((result.run_dir / "analysis.json").read_text())
    for key in ("rate", "mutual_information", "mutual_information_stderr", "latent_stats.scaling_factor"):
        [event] = reader.Scalars(f"analysis/{key}")
        assert (event.step, event.value) == (analysis["run.checkpoint_step"], pytest.approx(analysis[key], rel=1e-6))
    assert "analysis/latent_stats.channel_std" not in reader.Tags()["scalars"], "lists are not scalars"
