"""vaelens.distances.lpips and .features: offline backbones (missing, loaded, corrupt), LPIPS, feature_distance."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from vaelens.cli import main
from vaelens.config import LossConfig
from vaelens.distances import lpips as lpips_module
from vaelens.distances.features import feature_distance
from vaelens.distances.lpips import (
    CorruptBackboneError,
    MissingBackboneError,
    build_lpips,
    lpips_backbone_path,
    lpips_between,
    lpips_metric_name,
)
from vaelens.losses import build_objective
from vaelens.metrics.distortion import distortion_report, lpips_distance


def test_missing_backbone_raises_clear_error(empty_hub):
    path = lpips_backbone_path("alex")
    assert path == os.path.join(str(empty_hub), "checkpoints", "alexnet-owt-7be5be79.pth")
    with pytest.raises(MissingBackboneError, match="alexnet-owt-7be5be79.pth") as caught:
        build_lpips("alex")
    assert str(empty_hub) in str(caught.value) and isinstance(caught.value, FileNotFoundError)
    assert os.path.basename(lpips_backbone_path("vgg")) == "vgg16-397923af.pth"
    assert os.path.basename(lpips_backbone_path("squeeze")) == "squeezenet1_1-b8a52dc0.pth"
    with pytest.raises(ValueError, match="net must be one of"):
        lpips_backbone_path("resnet")


def test_backbone_is_loaded_from_hub_cache(empty_hub, make_images):
    from torchvision.models import alexnet

    torch.manual_seed(123)
    features = {k: v for k, v in alexnet(weights=None).state_dict().items() if k.startswith("features.")}
    os.makedirs(empty_hub / "checkpoints")
    torch.save(features, lpips_backbone_path("alex"))
    model = build_lpips("alex")
    assert torch.equal(model.net.slice1[0].weight, features["features.0.weight"])
    assert torch.equal(getattr(model.net.slice5, "10").bias, features["features.10.bias"])
    x, x_hat = make_images(n=2, c=3), make_images(n=2, c=3, seed=1)
    loaded = lpips_distance(x, x_hat, "alex")
    random = lpips_distance(x, x_hat, "alex", pnet_rand=True)
    assert not torch.allclose(loaded, random)


def test_random_backbone_lpips_properties(make_images):
    assert lpips_metric_name("alex", pnet_rand=True) == "lpips_alex_RANDOM_backbone"
    x, x_hat = make_images(n=2, c=1), make_images(n=2, c=1, seed=1)
    same = lpips_distance(x, x, pnet_rand=True)
    assert torch.allclose(same, torch.zeros(2, dtype=same.dtype), atol=1e-6)
    gray = lpips_distance(x, x_hat, pnet_rand=True)
    rgb = lpips_distance(x.repeat(1, 3, 1, 1), x_hat.repeat(1, 3, 1, 1), pnet_rand=True)
    assert gray.shape == (2,) and (gray > 0).all() and torch.allclose(gray, rgb)
    lpips_module._build_lpips_cached.cache_clear()
    assert torch.allclose(lpips_distance(x, x_hat, pnet_rand=True), gray)  # seeded random backbone


def _write_backbone(hub, net: str, content) -> str:
    """Put `content` (bytes, or an object for torch.save) where torchvision keeps backbone `net`."""
    os.makedirs(hub / "checkpoints", exist_ok=True)
    path = lpips_backbone_path(net)
    if isinstance(content, bytes):
        with open(path, "wb") as handle:
            handle.write(content)
    else:
        torch.save(content, path)
    return path


def _truncated_checkpoint(tmp_path) -> bytes:
    torch.save({"features.0.weight": torch.zeros(64, 3, 11, 11)}, tmp_path / "whole.pth")
    data = (tmp_path / "whole.pth").read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize("kind", ["garbage 0", "garbage 1", "garbage 2", "garbage 3", "html page", "empty",
                                  "truncated"])
def test_corrupt_backbone_file_is_one_clear_error(empty_hub, tmp_path, kind):
    garbage = {f"garbage {seed}": random.Random(seed).randbytes(4096) for seed in range(4)}
    content = {**garbage, "html page": b"<html><body>Access denied</body></html>\n", "empty": b"",
               "truncated": _truncated_checkpoint(tmp_path)}[kind]
    path = _write_backbone(empty_hub, "vgg", content)
    with pytest.raises(CorruptBackboneError) as caught:
        build_lpips("vgg")
    message = str(caught.value)
    assert path in message and "vgg16-397923af.pth" in message
    assert "not a readable torch checkpoint" in message
    assert "Delete it" in message and "On a connected machine" in message and "get_model('vgg16'" in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("content, reason", [
    (torch.zeros(3), "holds a Tensor"),
    ({"classifier.1.weight": torch.zeros(2)}, "lacks 'features.0.weight'"),
    ({"features.0.weight": torch.zeros(1)},
     r"holds 'features.0.weight' as \(1,\) where this backbone has \(64, 3, 11, 11\)"),
])
def test_readable_file_that_is_not_the_backbone_is_named(empty_hub, content, reason):
    path = _write_backbone(empty_hub, "alex", content)
    with pytest.raises(CorruptBackboneError, match=reason) as caught:
        build_lpips("alex")
    assert path in str(caught.value) and "Delete it" in str(caught.value)


def test_corrupt_backbone_in_training_analysis_and_cli(empty_hub, tmp_path, monkeypatch, capsys, make_images):
    _write_backbone(empty_hub, "alex", b"not a checkpoint")
    with pytest.raises(CorruptBackboneError, match="To train offline instead, use loss.perceptual=effnet-lite0"):
        build_objective(LossConfig(perceptual="lpips-alex"), (3, 64, 64))
    x = make_images(n=2, c=3, size=64)
    report = distortion_report(x, x.flip(0), lpips_net="alex")
    assert "lpips_alex" not in report and "alexnet-owt-7be5be79.pth" in report["lpips_alex_skipped"]
    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))
    code = main(["train", "--preset", "dsprites-bvae", "data.subset=64", "model.channels=8", "model.hidden_dim=32",
                 "loss.perceptual=lpips-alex", "train.steps=1", "train.progress=false", "train.device=cpu",
                 "--out", str(tmp_path / "run")])
    error = capsys.readouterr().err
    assert code == 2 and "Traceback" not in error
    assert "alexnet-owt-7be5be79.pth" in error and "Delete it" in error


def test_metric_and_training_term_share_one_lpips_call(make_images):
    model = build_lpips("alex", pnet_rand=True)
    x, x_hat = make_images(n=2, c=1, dtype=torch.float32), make_images(n=2, c=1, seed=1, dtype=torch.float32)
    shared = lpips_between(model, x, x_hat)
    assert torch.equal(shared, lpips_between(model, x_hat, x))  # LPIPS is symmetric, bit for bit
    assert torch.equal(shared, model(2 * x.expand(-1, 3, -1, -1) - 1, 2 * x_hat.expand(-1, 3, -1, -1) - 1).flatten())
    assert torch.equal(shared, lpips_distance(x, x_hat, pnet_rand=True))
    objective = build_objective(LossConfig(perceptual="lpips-alex", lpips_random_backbone=True), (1, 32, 32))
    assert torch.equal(objective.perceptual(x, x_hat), shared)


def _hand_feature_distance(features_x, features_hat, weights, eps=1e-10):
    total = np.zeros(features_x[0].shape[0])
    for fx, fh, w in zip(features_x, features_hat, weights):
        n, c, h, width = fx.shape
        for i in range(n):
            acc = 0.0
            for r in range(h):
                for s in range(width):
                    ux = fx[i, :, r, s] / (np.sqrt(np.sum(fx[i, :, r, s] ** 2)) + eps)
                    uh = fh[i, :, r, s] / (np.sqrt(np.sum(fh[i, :, r, s] ** 2)) + eps)
                    acc += np.sum(w * (ux - uh) ** 2)
            total[i] += acc / (h * width)
    return total


def test_feature_distance_matches_hand_computation(make_images):
    def two_layers(images):
        return [images, torch.nn.functional.avg_pool2d(images, 2) - 0.5]

    x, x_hat = make_images(n=2, c=3, size=6), make_images(n=2, c=3, size=6, seed=1)
    weights = [torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64), None]
    got = feature_distance(x, x_hat, two_layers, channel_weights=weights)
    expected = _hand_feature_distance(
        [f.numpy() for f in two_layers(x)], [f.numpy() for f in two_layers(x_hat)], [weights[0].numpy(), np.ones(3)]
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_feature_distance_with_lpips_trunk_equals_lpips(make_images):
    model = build_lpips("alex", pnet_rand=True)

    def trunk(images):
        return list(model.net(model.scaling_layer(2.0 * images - 1.0)))

    weights = [lin.model[-1].weight.flatten() for lin in model.lins]
    x, x_hat = make_images(n=2, c=3, dtype=torch.float32), make_images(n=2, c=3, seed=1, dtype=torch.float32)
    got = feature_distance(x, x_hat, trunk, channel_weights=weights)
    assert torch.allclose(got, lpips_distance(x, x_hat, pnet_rand=True), rtol=1e-4)


def test_feature_distance_gradient_and_errors(make_images):
    conv = torch.nn.Conv2d(1, 4, 3)
    x = make_images(n=2, size=8, dtype=torch.float32)
    x_hat = make_images(n=2, size=8, seed=1, dtype=torch.float32).requires_grad_(True)
    feature_distance(x, x_hat, lambda images: [conv(images)]).sum().backward()
    assert x_hat.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="non-negative"):
        feature_distance(x, x_hat, lambda images: [conv(images)], channel_weights=[-torch.ones(4)])
    with pytest.raises(ValueError, match="4 entries"):
        feature_distance(x, x_hat, lambda images: [conv(images)], channel_weights=[torch.ones(3)])
    with pytest.raises(ValueError, match="one entry per feature map"):
        feature_distance(x, x_hat, lambda images: [conv(images)], channel_weights=[None, None])
