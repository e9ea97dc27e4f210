import json

import pytest
import torch

import vaelens.training
from vaelens import load_run, train
from vaelens.cli import main
from vaelens.training import CheckpointError, RunExistsError, TrainingDiverged


def test_cli_train_writes_a_complete_run(tiny_config, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--preset", "dsprites-bvae", "data.subset=128", "model.channels=8",
                 "model.hidden_dim=32", "train.steps=4", "train.batch_size=16", "train.log_every=2",
                 "train.progress=false", "train.device=cpu", "loss.beta=2", "--out", str(out)])
    assert code == 0
    assert "run finished" in capsys.readouterr().out
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "images/reconstructions.png", "images/samples.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["weighting_convention"] == "additive"
    assert summary["objective"]["likelihood"] == "bernoulli" and summary["objective"]["beta"] == 2.0
    assert summary["objective"]["units"] == "nats"
    assert summary["eval"]["rate"] >= 0
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]
    assert not list((out / "checkpoints").glob("*.tmp"))


def test_training_reduces_the_loss(tiny_config, tmp_path):
    tiny_config.train.steps = 40
    tiny_config.train.lr = 1e-3
    train(tiny_config, tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["loss"] < 0.7 * records[0]["loss"]


def test_resume_after_interrupt_equals_uninterrupted_run(tiny_config, tmp_path,
                                                         interrupt_at):
    whole = train(tiny_config, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config, tmp_path / "resumed", hooks=interrupt_at(5))
    resumed = train(tiny_config, tmp_path / "resumed", resume=True)
    assert resumed.summary["resumed_from"] == 4
    for (name, a), (_, b) in zip(whole.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_existing_run_needs_resume_and_same_config(tiny_config, finished_run):
    with pytest.raises(RunExistsError, match="--resume"):
        train(tiny_config, finished_run.run_dir)
    tiny_config.loss.beta = 9.0
    with pytest.raises(ValueError, match=r"loss.beta: 4.0 \(saved\) != 9.0"):
        train(tiny_config, finished_run.run_dir, resume=True)


def test_resume_can_extend_training(tiny_config, tmp_path):
    train(tiny_config, tmp_path / "run")
    tiny_config.train.steps = 8
    result = train(tiny_config, tmp_path / "run", resume=True)
    assert result.summary["resumed_from"] == 6 and load_run(tmp_path / "run").step == 8


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_config, tmp_path, monkeypatch):
    from vaelens.losses.objective import VAEObjective

    real_forward = VAEObjective.forward

    def poisoned(self, x, output, mu, logvar, step=None, beta=None):
        terms = real_forward(self, x, output, mu, logvar, step, beta)
        if step == 3:  # the fourth training step, after the checkpoint at step 2 (step None: evaluation)
            terms.loss = terms.loss * float("nan")
        return terms

    monkeypatch.setattr(VAEObjective, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match="diverged at step 3.*step_000000002 is kept"):
        train(tiny_config, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "diverged"
    loaded = load_run(tmp_path / "run")
    assert loaded.step == 2
    assert all(torch.isfinite(p).all() for p in loaded.model.parameters())


def test_load_run_gives_back_the_trained_model(tiny_config, finished_run):
    result = finished_run
    loaded = load_run(result.run_dir)
    assert loaded.config == tiny_config and loaded.step == 6
    x = torch.rand(2, 1, 64, 64)
    torch.testing.assert_close(loaded.model.encode(x)[0], result.model.encode(x)[0])


def test_corrupt_checkpoint_gives_a_clear_error(tiny_config, tmp_path):
    train(tiny_config, tmp_path / "run")
    newest = sorted((tmp_path / "run" / "checkpoints").glob("*.safetensors"))[-1]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt.*delete"):
        load_run(tmp_path / "run")
    newest.with_suffix(".json").write_text("{ truncated")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_run(tmp_path / "run")


def test_not_a_run_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a vaelens run directory"):
        load_run(tmp_path)


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    code = main(["train", "model.latnet_dim=3", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "unknown config key 'model.latnet_dim'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_summary_scores_a_seeded_random_draw_of_the_training_split(tiny_config, tmp_path):
    from vaelens.data import load_dataset

    tiny_config.data.subset, tiny_config.train.eval_images = 512, 32
    result = train(tiny_config, tmp_path / "run")
    evaluation = result.summary["eval"]
    assert (evaluation["num_images"], evaluation["subset_seed"], evaluation["split"]) == (32, 0, "train")
    data = load_dataset(tiny_config.data, split="train")
    drawn = torch.randperm(data.num_images, generator=torch.Generator().manual_seed(0))[:32]
    # Storage order of dSprites is the factor grid: the first images are one shape; the draw spans all three.
    assert len(set(data.factors.classes[torch.arange(32), 0].tolist())) == 1
    assert len(set(data.factors.classes[drawn, 0].tolist())) == 3
    loaded = load_run(result.run_dir)
    again = vaelens.training.evaluate(loaded.model, loaded.objective, data.images(drawn),
                                      torch.Generator().manual_seed(tiny_config.train.seed + 2))
    assert again["loss"] == pytest.approx(evaluation["loss"], rel=1e-5)
