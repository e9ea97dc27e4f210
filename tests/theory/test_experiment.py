"""`vaelens theory`: linear VAEs trained by the project's trainer against the closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaelens.cli import main
from vaelens.config import resolve
from vaelens.data import load_dataset
from vaelens.data.gaussian import write_gaussian_source
from vaelens.theory import linear_vae_optimum, scale_for_gaussian_likelihood
from vaelens.theory.experiment import compare, measure_linear_vae
from vaelens.theory.sources import convention_metrics, parse_spectrum
from vaelens.training import train


@pytest.fixture
def one_thread():
    # Tiny models: thread hand-offs would dominate on a shared CI machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("use_metric", [False, True])
def test_trained_linear_vae_reaches_the_closed_form(tmp_path, one_thread, use_metric):
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    covariance = (rotation * [1.0, 0.5, 0.2, 0.05]) @ rotation.T
    source = write_gaussian_source(tmp_path / "g.npz", covariance, np.full(4, 0.5), num_samples=1024)
    factor = rng.standard_normal((4, 4))
    metric = np.eye(4) + factor @ factor.T / 4 if use_metric else np.eye(4)
    np.save(tmp_path / "metric.npy", metric)
    sigma, beta = 0.5, 0.4
    config = resolve(None, None, [
        "data.name=gaussian", f"data.path={source}", "data.test_fraction=0.0", "model.name=linear",
        "model.latent_dim=4", "loss.likelihood=gaussian", f"loss.sigma={sigma}", f"loss.beta={beta}",
        f"loss.metric={tmp_path / 'metric.npy'}", "train.steps=2000", "train.lr=0.02", "train.batch_size=1024",
        "train.checkpoint_every=2000", "train.log_every=500", "train.progress=false", "train.device=cpu"])
    result = train(config, tmp_path / "run")
    images = load_dataset(config.data, "train").all_images()
    empirical = torch.cov(images.flatten(1).double().T, correction=0).numpy()
    optimum = linear_vae_optimum(empirical, metric, beta, scale_for_gaussian_likelihood(sigma), 4)
    assert 1 <= optimum.num_active < 4  # some units active, some collapsed
    assert np.all(np.abs(np.log(optimum.eigenvalues / optimum.water_level)) > 0.3)  # away from breakpoints
    agreement = compare(measure_linear_vae(result.model, images), optimum)
    assert agreement["rate_relative_error"] < 0.02
    assert agreement["posterior_variance_max_relative_error"] < 0.05
    assert agreement["active_units_difference"] == 0


def test_convention_metrics_and_spectra():
    rng = np.random.default_rng(1)
    factor = rng.standard_normal((5, 5))
    perceptual = factor @ factor.T
    perceptual *= 5 / np.trace(perceptual)
    metrics = convention_metrics(perceptual, 2.0, 0.25)
    np.testing.assert_allclose(metrics["additive"], np.eye(5) + 2 * perceptual)
    assert np.trace(metrics["convex"]) == pytest.approx(5.0)  # the convex mix keeps the mean curvature
    np.testing.assert_allclose(parse_spectrum("power:2", 3), [1, 1 / 4, 1 / 9])
    np.testing.assert_allclose(parse_spectrum("1,3,2", 3), [3, 2, 1])
    with pytest.raises(ValueError, match="neural fraction"):
        convention_metrics(perceptual, 1.0, 1.0)
    with pytest.raises(ValueError, match="3 positive numbers"):
        parse_spectrum("1,2", 3)
    with pytest.raises(ValueError, match="power:ALPHA"):
        parse_spectrum("power:x", 3)


def test_theory_refuses_a_used_output_directory(tmp_path, capsys):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    assert main(["theory", "--out", str(tmp_path / "used"), "--no-progress"]) == 2
    assert "not empty" in capsys.readouterr().err
