"""loss.perceptual=effnet-lite0: the term says what it is, trains, resumes bit-identically, calibrates on natural
patches and on dSprites, and its network's weights stay out of the run's checkpoints."""

import json
import math

import pytest
import torch

from vaelens import train
from vaelens.config import resolve
from vaelens.distances.efficientnet import WEIGHTS_SHA256, build_efficientnet_lite0, efficientnet_distance
from vaelens.losses.perceptual import build_perceptual
from vaelens.training import TrainingHooks
from vaelens.training.checkpoint import list_checkpoints, load_checkpoint

TINY = ["data.subset=128", "model.channels=8", "model.hidden_dim=32", "model.latent_dim=4", "train.steps=6",
        "train.batch_size=16", "train.checkpoint_every=2", "train.log_every=1", "train.eval_images=16",
        "train.progress=false", "train.device=cpu", "loss.perceptual=effnet-lite0", "loss.perceptual_weight=auto"]
NATURAL_32 = TINY + ["data.image_size=32", "model.name=conv32"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))


def test_the_term_says_what_it_is_and_is_the_efficientnet_distance():
    term = build_perceptual("effnet-lite0", False, (3, 32, 32), "cpu")
    described = term.describe()
    assert described["perceptual"] == "effnet-lite0"
    assert described["network"] == "efficientnet-lite0 (ImageNet, torchvision-free)"
    assert described["distance"].startswith("uncalibrated LPIPS-style baseline")
    assert described["weights_sha256"] == WEIGHTS_SHA256
    x, x_hat = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(term(x, x_hat), efficientnet_distance(x, x_hat))


def test_an_unknown_spec_lists_effnet_lite0_among_the_choices():
    with pytest.raises(ValueError, match="effnet-lite0"):
        build_perceptual("effnet-b7", False, (3, 32, 32), "cpu")


def _stop_after(done: int) -> TrainingHooks:
    def stop(steps_done: int) -> None:
        if steps_done == done:
            raise KeyboardInterrupt

    return TrainingHooks(on_step=stop)


def test_a_natural_32px_run_trains_calibrates_and_resumes_bit_identically(cache, tmp_path):
    whole = train(resolve("natural-bvae", None, NATURAL_32), tmp_path / "whole")
    calibration = whole.summary["calibration"]["perceptual"]
    print(f"natural 32x32 (subset 128) effnet-lite0 w_p = {calibration['weight']:.6g}")
    # Gaussian sigma 0.1 on 3 x 32 x 32 pixels: tr M_pixel = 3072 / (2 * 0.01) exactly.
    assert calibration["pixel_curvature"] == pytest.approx(3072 / 0.02)
    assert math.isfinite(calibration["weight"]) and calibration["weight"] > 0
    assert whole.objective.perceptual_weight == calibration["weight"]
    records = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(r["perceptual"]) and r["perceptual"] > 0 for r in records)

    with pytest.raises(KeyboardInterrupt):
        train(resolve("natural-bvae", None, NATURAL_32), tmp_path / "resumed", hooks=_stop_after(5))
    resumed = train(resolve("natural-bvae", None, NATURAL_32), tmp_path / "resumed", resume=True)
    assert resumed.summary["resumed_from"] == 4
    for module in ("model", "objective"):
        expected, found = getattr(whole, module).state_dict(), getattr(resumed, module).state_dict()
        assert expected.keys() == found.keys()
        for name in expected:
            assert torch.equal(expected[name], found[name]), f"{module}.{name}"
    assert resumed.summary["calibration"]["perceptual"] == calibration

    tensors, _ = load_checkpoint(list_checkpoints(tmp_path / "whole" / "checkpoints")[-1])
    network = build_efficientnet_lite0()
    assert not any(key.startswith("objective.perceptual") for key in tensors)
    for weight in (network.stem.conv.weight, network.blocks[3].project.conv.weight, network.classifier.weight):
        assert not any(value.shape == weight.shape and torch.equal(value, weight) for value in tensors.values())
    assert sum(value.numel() for value in tensors.values()) < sum(p.numel() for p in network.parameters())


def test_dsprites_64px_calibrates_a_positive_weight(cache, tmp_path):
    result = train(resolve("dsprites-bvae", None, TINY + ["train.steps=1", "train.checkpoint_every=1"]),
                   tmp_path / "dsprites")
    calibration = result.summary["calibration"]["perceptual"]
    print(f"dSprites 64x64 (subset 128) effnet-lite0 w_p = {calibration['weight']:.6g}")
    assert "mean image" in calibration["pixel_point"]  # Bernoulli: measured at the clamped mean image
    assert math.isfinite(calibration["weight"]) and calibration["weight"] > 0
    assert result.objective.perceptual_weight == calibration["weight"]
