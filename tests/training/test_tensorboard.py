"""The optional TensorBoard writer, read back with tensorboard's own event reader."""

import pytest

from vaelens import train
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
    assert set(reader.Tags()["scalars"]) == {f"train/{key}" for key in logged}
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
