"""Tests for vaelens.metrics.distortion: closed forms, library cross-checks, offline LPIPS handling."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

from vaelens.metrics import distortion
from vaelens.metrics.distortion import (
    MS_SSIM_BETAS,
    PSNR_CAP_DB,
    MissingBackboneError,
    build_lpips,
    distortion_report,
    feature_distance,
    lpips_backbone_path,
    lpips_distance,
    lpips_metric_name,
    ms_ssim,
    ms_ssim_min_side,
    mse,
    psnr,
    ssim,
)

C1, C2 = 0.01**2, 0.03**2


def _images(n=3, c=1, size=32, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=generator, dtype=dtype)


def _constant(value, n=2, c=1, size=32):
    return torch.full((n, c, size, size), value, dtype=torch.float64)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """Point the torch hub cache at an empty directory, as on a machine without downloaded backbones."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    return tmp_path


def test_mse_mean_and_sum_match_closed_form():
    x = _images(c=3, size=16) * 0.8
    x_hat = x + 0.1
    assert torch.allclose(mse(x, x_hat), torch.full((3,), 0.01, dtype=torch.float64))
    assert torch.allclose(mse(x, x_hat, reduction="sum"), torch.full((3,), 0.01 * 3 * 16 * 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="reduction"):
        mse(x, x_hat, reduction="max")


def test_psnr_closed_form_and_perfect_reconstruction():
    x = _images() * 0.8
    assert torch.allclose(psnr(x, x + 0.1), torch.full((3,), 20.0, dtype=torch.float64))
    assert torch.equal(psnr(x, x), torch.full((3,), PSNR_CAP_DB, dtype=torch.float64))
    assert torch.isinf(psnr(x, x, max_db=None)).all()


def test_ssim_constant_images_closed_form():
    a, b = 0.3, 0.6
    expected = (2 * a * b + C1) / (a * a + b * b + C1)
    assert torch.allclose(ssim(_constant(a), _constant(b)), torch.full((2,), expected, dtype=torch.float64))


def test_ssim_identity_is_one_and_noise_lowers_it():
    x = _images()
    noisy = (x + 0.2 * _images(seed=1)).clamp(0, 1)
    assert torch.allclose(ssim(x, x), torch.ones(3, dtype=torch.float64))
    assert (ssim(x, noisy) < 0.99).all()


def test_ssim_rejects_images_smaller_than_window():
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(_images(size=8), _images(size=8, seed=1))


def test_ms_ssim_min_side_mirrors_torchmetrics():
    side = ms_ssim_min_side()
    assert side == 176
    x = _images(n=1, size=side)
    multiscale_structural_similarity_index_measure(x, x, data_range=1.0, betas=MS_SSIM_BETAS)
    small = _images(n=1, size=side - 1)
    with pytest.raises(ValueError):
        multiscale_structural_similarity_index_measure(small, small, data_range=1.0, betas=MS_SSIM_BETAS)
    with pytest.raises(ValueError, match="at least 176x176"):
        ms_ssim(small, small)
    assert ms_ssim_min_side(3) == 44


def test_ms_ssim_constant_images_closed_form():
    # Constant images: every contrast-structure term is 1, so MS-SSIM = luminance ** beta_last.
    a, b = 0.3, 0.6
    luminance = (2 * a * b + C1) / (a * a + b * b + C1)
    values = ms_ssim(_constant(a, size=176), _constant(b, size=176))
    assert torch.allclose(values, torch.full((2,), luminance ** MS_SSIM_BETAS[-1], dtype=torch.float64))


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.rand(3, 8, 8), "4-D"),
        (torch.rand(2, 1, 16, 16), "same shape"),
        (torch.full((3, 1, 16, 16), float("nan")), "NaN"),
        (torch.full((3, 1, 16, 16), 1.5), r"\[0, 1\]"),
    ],
)
def test_image_validation_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        mse(torch.rand(3, 1, 16, 16), bad)


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


def test_backbone_is_loaded_from_hub_cache(empty_hub):
    from torchvision.models import alexnet

    torch.manual_seed(123)
    features = {k: v for k, v in alexnet(weights=None).state_dict().items() if k.startswith("features.")}
    os.makedirs(empty_hub / "checkpoints")
    torch.save(features, lpips_backbone_path("alex"))
    model = build_lpips("alex")
    assert torch.equal(model.net.slice1[0].weight, features["features.0.weight"])
    assert torch.equal(getattr(model.net.slice5, "10").bias, features["features.10.bias"])
    x, x_hat = _images(n=2, c=3), _images(n=2, c=3, seed=1)
    loaded = lpips_distance(x, x_hat, "alex")
    random = lpips_distance(x, x_hat, "alex", pnet_rand=True)
    assert not torch.allclose(loaded, random)


def test_random_backbone_lpips_properties():
    assert lpips_metric_name("alex", pnet_rand=True) == "lpips_alex_RANDOM_backbone"
    x, x_hat = _images(n=2, c=1), _images(n=2, c=1, seed=1)
    same = lpips_distance(x, x, pnet_rand=True)
    assert torch.allclose(same, torch.zeros(2, dtype=same.dtype), atol=1e-6)
    gray = lpips_distance(x, x_hat, pnet_rand=True)
    rgb = lpips_distance(x.repeat(1, 3, 1, 1), x_hat.repeat(1, 3, 1, 1), pnet_rand=True)
    assert gray.shape == (2,) and (gray > 0).all() and torch.allclose(gray, rgb)
    distortion._build_lpips_cached.cache_clear()
    assert torch.allclose(lpips_distance(x, x_hat, pnet_rand=True), gray)  # seeded random backbone


def test_lpips_rejects_images_too_small_for_backbone():
    lpips_distance(_images(n=1, c=3, size=31), _images(n=1, c=3, size=31, seed=1), pnet_rand=True)
    with pytest.raises(ValueError, match="at least 31x31"):
        lpips_distance(_images(n=1, c=3, size=30), _images(n=1, c=3, size=30, seed=1), pnet_rand=True)


def test_lpips_gradient_reaches_reconstruction():
    x = _images(n=2, c=3, dtype=torch.float32)
    x_hat = _images(n=2, c=3, seed=1, dtype=torch.float32).requires_grad_(True)
    lpips_distance(x, x_hat, pnet_rand=True).sum().backward()
    assert x_hat.grad is not None and x_hat.grad.abs().sum() > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_metrics_on_gpu_match_cpu():
    x, x_hat = _images(n=2, c=3, size=64, dtype=torch.float32), _images(n=2, c=3, size=64, seed=1, dtype=torch.float32)
    conv = torch.nn.Conv2d(3, 4, 3)

    def features(images):
        return [conv.to(images.device)(images)]

    for metric in (mse, psnr, ssim, lambda a, b: lpips_distance(a, b, pnet_rand=True),
                   lambda a, b: feature_distance(a, b, features)):
        on_gpu = metric(x.cuda(), x_hat.cuda())
        assert on_gpu.device.type == "cuda"
        assert torch.allclose(on_gpu.cpu(), metric(x, x_hat), rtol=1e-3, atol=1e-5)


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


def test_feature_distance_matches_hand_computation():
    def two_layers(images):
        return [images, torch.nn.functional.avg_pool2d(images, 2) - 0.5]

    x, x_hat = _images(n=2, c=3, size=6), _images(n=2, c=3, size=6, seed=1)
    weights = [torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64), None]
    got = feature_distance(x, x_hat, two_layers, channel_weights=weights)
    expected = _hand_feature_distance(
        [f.numpy() for f in two_layers(x)], [f.numpy() for f in two_layers(x_hat)], [weights[0].numpy(), np.ones(3)]
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_feature_distance_with_lpips_trunk_equals_lpips():
    model = build_lpips("alex", pnet_rand=True)

    def trunk(images):
        return list(model.net(model.scaling_layer(2.0 * images - 1.0)))

    weights = [lin.model[-1].weight.flatten() for lin in model.lins]
    x, x_hat = _images(n=2, c=3, dtype=torch.float32), _images(n=2, c=3, seed=1, dtype=torch.float32)
    got = feature_distance(x, x_hat, trunk, channel_weights=weights)
    assert torch.allclose(got, lpips_distance(x, x_hat, pnet_rand=True), rtol=1e-4)


def test_feature_distance_gradient_and_errors():
    conv = torch.nn.Conv2d(1, 4, 3)
    x = _images(n=2, size=8, dtype=torch.float32)
    x_hat = _images(n=2, size=8, seed=1, dtype=torch.float32).requires_grad_(True)
    feature_distance(x, x_hat, lambda images: [conv(images)]).sum().backward()
    assert x_hat.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="non-negative"):
        feature_distance(x, x_hat, lambda images: [conv(images)], channel_weights=[-torch.ones(4)])
    with pytest.raises(ValueError, match="4 entries"):
        feature_distance(x, x_hat, lambda images: [conv(images)], channel_weights=[torch.ones(3)])
    with pytest.raises(ValueError, match="one entry per feature map"):
        feature_distance(x, x_hat, lambda images: [conv(images)], channel_weights=[None, None])


def test_distortion_report_keys_and_skips(empty_hub):
    x = _images(n=2, c=1, size=64)
    x_hat = (x + 0.05 * _images(n=2, c=1, size=64, seed=1)).clamp(0, 1)
    report = distortion_report(x, x_hat, lpips_net="alex", feature_fn=lambda images: [images])
    assert math.isclose(report["mse"], float(mse(x, x_hat).mean()))
    assert math.isclose(report["mse_sum"], report["mse"] * 64 * 64)
    assert report["psnr"] > 20 and 0 < report["ssim"] < 1 and report["feature"] > 0
    assert "ms_ssim" not in report and "176x176" in report["ms_ssim_skipped"]
    assert "lpips_alex" not in report and "alexnet-owt-7be5be79.pth" in report["lpips_alex_skipped"]
    random = distortion_report(x, x_hat, lpips_net="alex", lpips_random_backbone=True)
    assert random["lpips_alex_RANDOM_backbone"] > 0
