"""Tests for vaelens.metrics.distortion: closed forms, library cross-checks, LPIPS as a metric, the report."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

from vaelens.distances.features import feature_distance
from vaelens.distances.structural import MS_SSIM_BETAS
from vaelens.metrics.distortion import (
    PSNR_CAP_DB,
    distortion_report,
    lpips_distance,
    ms_ssim,
    ms_ssim_min_side,
    mse,
    psnr,
    ssim,
)

C1, C2 = 0.01**2, 0.03**2


def _constant(value, n=2, c=1, size=32):
    return torch.full((n, c, size, size), value, dtype=torch.float64)


def test_mse_mean_and_sum_match_closed_form(make_images):
    x = make_images(c=3, size=16) * 0.8
    x_hat = x + 0.1
    assert torch.allclose(mse(x, x_hat), torch.full((3,), 0.01, dtype=torch.float64))
    assert torch.allclose(mse(x, x_hat, reduction="sum"), torch.full((3,), 0.01 * 3 * 16 * 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="reduction"):
        mse(x, x_hat, reduction="max")


def test_psnr_closed_form_and_perfect_reconstruction(make_images):
    x = make_images() * 0.8
    assert torch.allclose(psnr(x, x + 0.1), torch.full((3,), 20.0, dtype=torch.float64))
    assert torch.equal(psnr(x, x), torch.full((3,), PSNR_CAP_DB, dtype=torch.float64))
    assert torch.isinf(psnr(x, x, max_db=None)).all()


def test_ssim_constant_images_closed_form():
    a, b = 0.3, 0.6
    expected = (2 * a * b + C1) / (a * a + b * b + C1)
    assert torch.allclose(ssim(_constant(a), _constant(b)), torch.full((2,), expected, dtype=torch.float64))


def test_ssim_identity_is_one_and_noise_lowers_it(make_images):
    x = make_images()
    noisy = (x + 0.2 * make_images(seed=1)).clamp(0, 1)
    assert torch.allclose(ssim(x, x), torch.ones(3, dtype=torch.float64))
    assert (ssim(x, noisy) < 0.99).all()


def test_ssim_rejects_images_smaller_than_window(make_images):
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(make_images(size=8), make_images(size=8, seed=1))


def test_ms_ssim_min_side_mirrors_torchmetrics(make_images):
    side = ms_ssim_min_side()
    assert side == 176
    x = make_images(n=1, size=side)
    multiscale_structural_similarity_index_measure(x, x, data_range=1.0, betas=MS_SSIM_BETAS)
    small = make_images(n=1, size=side - 1)
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


def test_lpips_rejects_images_too_small_for_backbone(make_images):
    lpips_distance(make_images(n=1, c=3, size=31), make_images(n=1, c=3, size=31, seed=1), pnet_rand=True)
    with pytest.raises(ValueError, match="at least 31x31"):
        lpips_distance(make_images(n=1, c=3, size=30), make_images(n=1, c=3, size=30, seed=1), pnet_rand=True)


def test_lpips_gradient_reaches_reconstruction(make_images):
    x = make_images(n=2, c=3, dtype=torch.float32)
    x_hat = make_images(n=2, c=3, seed=1, dtype=torch.float32).requires_grad_(True)
    lpips_distance(x, x_hat, pnet_rand=True).sum().backward()
    assert x_hat.grad is not None and x_hat.grad.abs().sum() > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_metrics_on_gpu_match_cpu(make_images):
    x = make_images(n=2, c=3, size=64, dtype=torch.float32)
    x_hat = make_images(n=2, c=3, size=64, seed=1, dtype=torch.float32)
    conv = torch.nn.Conv2d(3, 4, 3)

    def features(images):
        return [conv.to(images.device)(images)]

    for metric in (mse, psnr, ssim, lambda a, b: lpips_distance(a, b, pnet_rand=True),
                   lambda a, b: feature_distance(a, b, features)):
        on_gpu = metric(x.cuda(), x_hat.cuda())
        assert on_gpu.device.type == "cuda"
        assert torch.allclose(on_gpu.cpu(), metric(x, x_hat), rtol=1e-3, atol=1e-5)


def test_distortion_report_keys_and_skips(empty_hub, make_images):
    x = make_images(n=2, c=1, size=64)
    x_hat = (x + 0.05 * make_images(n=2, c=1, size=64, seed=1)).clamp(0, 1)
    report = distortion_report(x, x_hat, lpips_net="alex", feature_fn=lambda images: [images])
    assert math.isclose(report["mse"], float(mse(x, x_hat).mean()))
    assert math.isclose(report["mse_sum"], report["mse"] * 64 * 64)
    assert report["psnr"] > 20 and 0 < report["ssim"] < 1 and report["feature"] > 0
    assert "ms_ssim" not in report and "176x176" in report["ms_ssim_skipped"]
    assert "lpips_alex" not in report and "alexnet-owt-7be5be79.pth" in report["lpips_alex_skipped"]
    random = distortion_report(x, x_hat, lpips_net="alex", lpips_random_backbone=True)
    assert random["lpips_alex_RANDOM_backbone"] > 0


def test_the_report_scores_the_imagenet_distance_offline(make_images):
    x = make_images(3, c=3, size=32, seed=1, dtype=torch.float32)
    noisy = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    report = distortion_report(x, noisy, imagenet_features=True)
    assert report["effnet_lite0"] > 0 and distortion_report(x, x, imagenet_features=True)["effnet_lite0"] < 1e-6
    assert "effnet_lite0" not in distortion_report(x, noisy)
    two_channels = distortion_report(x[:, :2], noisy[:, :2], imagenet_features=True)
    assert "effnet_lite0" not in two_channels and "1 or 3" in two_channels["effnet_lite0_skipped"]
