"""The run directory: adopting or refusing a folder, resuming (log trimming, corrupt-checkpoint fallback),
status, and validation before the first write."""

import json
import logging

import pytest
import torch

from vaelens import load_run, train
from vaelens.config import ConfigError
from vaelens.training import NotARunError, RunDirectory, RunExistsError, TrainingDiverged
from vaelens.training.ensemble import train_ensemble


def _steps(run_dir) -> list[int]:
    return [record["step"] for record in RunDirectory(run_dir).read_metrics()]


def test_resume_before_the_first_checkpoint_restarts_the_log(tiny_config, tmp_path, interrupt_at):
    tiny_config.train.checkpoint_every = 1000
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config, tmp_path / "run", hooks=interrupt_at(4))
    assert _steps(tmp_path / "run") == [1, 2, 3, 4] and RunDirectory(tmp_path / "run").status() == "incomplete"
    resumed = train(tiny_config, tmp_path / "run", resume=True)
    assert resumed.summary["resumed_from"] == 0
    assert _steps(tmp_path / "run") == [1, 2, 3, 4, 5, 6]  # not 1..4 followed by 1..6


def test_ensemble_resume_before_the_first_checkpoint_restarts_the_log(tiny_config, tmp_path, interrupt_at,
                                                                      members_of):
    tiny_config.model.name = "mlp"
    tiny_config.train.checkpoint_every = 1000
    configs = members_of(tiny_config, [(1.0, 0), (2.0, 1)])
    dirs = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(configs, dirs, progress=False, hooks=interrupt_at(3))
    train_ensemble(configs, dirs, resume=True, progress=False)
    assert _steps(dirs[0]) == _steps(dirs[1]) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("resume", [False, True])
def test_a_foreign_folder_is_refused_and_left_untouched(tiny_config, tmp_path, resume):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "summary.json").write_text('{"mine": true}')
    (folder / "metrics.jsonl").write_text("my own log\n")
    with pytest.raises(NotARunError, match=r"not empty and is not a vaelens run \(it holds metrics.jsonl, "
                                           r"summary.json; no config.yaml\)"):
        train(tiny_config, folder, resume=resume)
    assert sorted(p.name for p in folder.iterdir()) == ["metrics.jsonl", "summary.json"]
    assert (folder / "metrics.jsonl").read_text() == "my own log\n"
    assert RunDirectory(folder).status() == "foreign"


def test_an_empty_folder_or_one_with_only_stale_temporaries_is_adopted(tiny_config, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / ".config.yaml.0123456789ab.tmp").write_text("half a config")  # left by a killed write
    result = train(tiny_config, folder)
    assert result.summary["status"] == "finished"
    assert not list(folder.glob(".*.tmp"))


def test_a_config_that_cannot_train_fails_before_anything_is_written(tiny_config, tmp_path):
    tiny_config.data.subset, tiny_config.train.batch_size = 8, 16
    with pytest.raises(ValueError, match="train.batch_size=16 exceeds the 8 training images"):
        train(tiny_config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    tiny_config.model.name = "conv32"  # takes 32 x 32 images, dSprites are 64 x 64
    tiny_config.train.batch_size = 4
    with pytest.raises(ValueError, match="takes 32x32 images, the data has 64x64"):
        train(tiny_config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    tiny_config.model.name = "conv64"
    assert train(tiny_config, tmp_path / "run").summary["status"] == "finished"  # a plain rerun is accepted


def test_resume_falls_back_past_a_corrupt_newest_checkpoint(tiny_config, tmp_path, interrupt_at, caplog):
    whole = train(tiny_config, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config, tmp_path / "run", hooks=interrupt_at(5))
    newest = tmp_path / "run" / "checkpoints" / "step_000000004.safetensors"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="vaelens"):
        resumed = train(tiny_config, tmp_path / "run", resume=True)
    assert resumed.summary["resumed_from"] == 2
    assert "step_000000004 is unusable" in caplog.text and "resuming from step 2" in caplog.text
    assert "step_000000004 is unusable" in resumed.summary["checkpoint_fallback"][0]
    assert (tmp_path / "run" / "checkpoints" / "step_000000004.safetensors.corrupt").is_file()  # kept, set aside
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert _steps(tmp_path / "run") == [1, 2, 3, 4, 5, 6]


def test_plain_rerun_of_a_run_is_refused(tiny_config, finished_run):
    with pytest.raises(RunExistsError, match="--resume"):
        train(tiny_config, finished_run.run_dir)


def test_status_of_every_kind_of_folder(tiny_config, tmp_path, interrupt_at, finished_run):
    assert RunDirectory(tmp_path / "nothing").status() == "new"
    assert RunDirectory(finished_run.run_dir).status() == "finished"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config, tmp_path / "killed", hooks=interrupt_at(3))
    assert RunDirectory(tmp_path / "killed").status() == "incomplete"
    tiny_config.train.lr = 1e20
    with pytest.raises(TrainingDiverged):
        train(tiny_config, tmp_path / "diverged")
    assert RunDirectory(tmp_path / "diverged").status() == "diverged"

    def broken_step(done):
        raise OSError("disk on fire")

    from vaelens.training import TrainingHooks

    tiny_config.train.lr = 1e-3
    with pytest.raises(OSError):
        train(tiny_config, tmp_path / "failed", hooks=TrainingHooks(on_step=broken_step))
    directory = RunDirectory(tmp_path / "failed")
    assert directory.status() == "failed" and "OSError: disk on fire" in directory.read_summary()["error"]
    assert train(tiny_config, tmp_path / "failed", resume=True).summary["status"] == "finished"


def test_trim_metrics_drops_later_steps_and_a_torn_line(tmp_path):
    directory = RunDirectory(tmp_path)
    directory.metrics_path.write_text("".join(json.dumps({"step": s}) + "\n" for s in (1, 2, 3)) + '{"step": 4')
    assert [r["step"] for r in directory.read_metrics()] == [1, 2, 3]
    directory.trim_metrics(2)
    assert directory.metrics_path.read_text() == '{"step": 1}\n{"step": 2}\n'
    directory.trim_metrics(0)
    assert directory.metrics_path.read_text() == ""


def test_load_run_names_the_intact_checkpoint_when_the_newest_is_corrupt(tiny_config, tmp_path):
    train(tiny_config, tmp_path / "run")
    newest = tmp_path / "run" / "checkpoints" / "step_000000006.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])
    from vaelens.training import CheckpointError

    with pytest.raises(CheckpointError, match="corrupt.*step 4 is intact and `vaelens train --resume` continues"):
        load_run(tmp_path / "run")


def test_a_misconfigured_resume_names_the_differences(tiny_config, finished_run):
    tiny_config.loss.ssim_weight = 0.5
    with pytest.raises(ValueError, match=r"loss.ssim_weight: 0.0 \(saved\) != 0.5 \(now\)"):
        train(tiny_config, finished_run.run_dir, resume=True)
    with pytest.raises(ConfigError):
        tiny_config.loss.ssim_weight = -1.0
        train(tiny_config, finished_run.run_dir, resume=True)
