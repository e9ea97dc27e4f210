"""Calibrated neural weights: Hutchinson traces against closed forms, the scaled-copy check, determinism."""

import dataclasses
import json
import math

import pytest
import torch

from vaelens import train
from vaelens.config import resolve
from vaelens.distances.curvature import hutchinson_trace
from vaelens.losses import build_objective, terms
from vaelens.losses.calibration import calibrate_weight
from vaelens.losses.pointwise import BernoulliLikelihood, GaussianLikelihood
from vaelens.losses.terms import WeightedTerm


def test_hutchinson_trace_of_a_gaussian_pixel_term_is_exact():
    # M = half the Hessian of ||x - x̂||^2 / (2 sigma^2) = I / (2 sigma^2): Rademacher probes are exact.
    likelihood, x = GaussianLikelihood(sigma=0.3), torch.rand(5, 1, 8, 8)
    trace = hutchinson_trace(likelihood.image_nll, x, x, probes=2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(trace, torch.full((5,), 64 / (2 * 0.3**2), dtype=torch.float64))


def test_bernoulli_curvature_is_measured_at_the_clamped_mean_image():
    likelihood = BernoulliLikelihood()
    x = (torch.rand(6, 1, 8, 8) > 0.7).float()
    point, where = likelihood.calibration_point(x)
    m = x.mean(0).clamp(0.01, 0.99)
    assert "mean image" in where and torch.equal(point[3], m)
    # Half the Hessian of -[x log m + (1 - x) log(1 - m)] in m: (x / m^2 + (1 - x) / (1 - m)^2) / 2.
    expected = (0.5 * (x / m**2 + (1 - x) / (1 - m) ** 2)).flatten(1).sum(1).double()
    trace = hutchinson_trace(likelihood.image_nll, x, point, probes=1, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(trace, expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("scale", [0.01, 3.0, 250.0])
def test_a_scaled_copy_of_the_pixel_term_calibrates_to_the_pointwise_objective(scale):
    likelihood = GaussianLikelihood(sigma=0.5)
    copy = WeightedTerm("perceptual", "perceptual", lambda x, x_hat: scale * likelihood.image_nll(x, x_hat), "auto",
                        mixed=True, description={"perceptual": f"{scale} x pixel"})
    x, output = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3)
    pointwise = build_objective(resolve(None, None, ["loss.likelihood=gaussian", "loss.sigma=0.5"]).loss, (1, 8, 8))
    for fraction in (0.0, 0.3, 0.5, 1.0):
        convex = type(pointwise)(GaussianLikelihood(sigma=0.5), beta=1.0, convention="convex", neural_fraction=fraction,
                                 terms=[copy])
        calibration = convex.calibrate(x)["perceptual"]
        assert calibration.weight == pytest.approx(1 / scale, rel=1e-6)
        # (1 - a) d + a (1 / c)(c d) = d at any weights: the same objective to float precision.
        torch.testing.assert_close(convex(x, output, mu, logvar).loss, pointwise(x, output, mu, logvar).loss,
                                   rtol=1e-6, atol=1e-4)


def test_calibrated_convex_with_a_scaled_pixel_copy_trains_like_the_pointwise_run(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))
    likelihood = GaussianLikelihood(sigma=0.5)

    def scaled_pixel(config, image_shape, device):  # a builder registered through the public registry
        assert config.perceptual == "scaled-pixel"
        return WeightedTerm("perceptual", "perceptual", lambda x, x_hat: 7.0 * likelihood.image_nll(x, x_hat),
                            config.perceptual_weight, mixed=True, description={"perceptual": "7 x pixel"})

    monkeypatch.setitem(terms.TERMS, "perceptual", dataclasses.replace(terms.TERMS["perceptual"], build=scaled_pixel))
    base = ["data.subset=128", "model.channels=8", "model.hidden_dim=32", "model.latent_dim=4", "train.steps=30",
            "train.batch_size=16", "train.lr=1e-3", "train.progress=false", "train.device=cpu",
            "loss.likelihood=gaussian", "loss.sigma=0.5", "loss.beta=1"]
    pointwise = train(resolve("dsprites-bvae", None, base), tmp_path / "pointwise")
    convex = train(resolve("dsprites-bvae", None, base + ["loss.convention=convex", "loss.perceptual=scaled-pixel",
                                                          "loss.perceptual_weight=auto"]), tmp_path / "convex")
    assert convex.summary["calibration"]["perceptual"]["weight"] == pytest.approx(1 / 7, rel=1e-6)
    assert convex.summary["eval"]["rate"] == pytest.approx(pointwise.summary["eval"]["rate"], rel=1e-3)


def test_a_real_perceptual_weight_is_deterministic_and_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))
    overrides = ["data.subset=128", "model.channels=8", "model.hidden_dim=32", "model.latent_dim=4", "train.steps=2",
                 "train.batch_size=16", "train.progress=false", "train.device=cpu", "loss.perceptual=lpips-squeeze",
                 "loss.lpips_random_backbone=true", "loss.perceptual_weight=auto"]
    first = train(resolve("dsprites-bvae", None, overrides), tmp_path / "a")
    second = train(resolve("dsprites-bvae", None, overrides + ["train.seed=5", "loss.beta=3"]), tmp_path / "b")
    calibration = first.summary["calibration"]["perceptual"]
    assert calibration == second.summary["calibration"]["perceptual"]  # the same for every seed and beta
    assert math.isfinite(calibration["weight"]) and calibration["weight"] > 0
    assert calibration["images"] == 32 and calibration["probes"] == 4 and "mean image" in calibration["pixel_point"]
    assert first.objective.perceptual_weight == calibration["weight"]
    assert first.summary["objective"]["perceptual_weight"] == calibration["weight"]
    saved = json.loads(next((tmp_path / "a" / "checkpoints").glob("*.json")).read_text())
    assert saved["objective"]["perceptual_weight"] == calibration["weight"]
    # The weight is checkpointed with the objective: a loaded run has it without calibrating again.
    from vaelens import load_run

    assert load_run(tmp_path / "a").objective.perceptual_weight == calibration["weight"]


def test_auto_is_refused_where_curvature_matching_has_no_meaning():
    with pytest.raises(ValueError, match="Laplace term .* has none"):
        objective = build_objective(resolve(None, None, ["loss.likelihood=laplace", "loss.perceptual=lpips-squeeze",
                                                         "loss.lpips_random_backbone=true",
                                                         "loss.perceptual_weight=auto"]).loss, (1, 64, 64))
        objective.calibrate(torch.rand(2, 1, 64, 64))
    with pytest.raises(ValueError, match="ldm convention"):
        build_objective(resolve(None, None, ["loss.likelihood=laplace", "loss.convention=ldm",
                                             "loss.perceptual=lpips-squeeze", "loss.lpips_random_backbone=true",
                                             "loss.perceptual_weight=auto"]).loss, (1, 64, 64))
    with pytest.raises(ValueError, match="curvatures came out"):
        calibrate_weight(GaussianLikelihood().image_nll, lambda x, x_hat: (x_hat * 0).flatten(1).sum(1),
                         torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4), "x_hat = x")
