"""The mechanistic probe: exact for the linear VAE at its optimum; matrix-free sums vs dense."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from vaelens.theory import linear_vae_optimum, loss_metric, mechanistic_probe, plot_probe

IMAGE_SHAPE = (1, 16, 16)
PIXELS = 256


def generator(seed):
    return torch.Generator().manual_seed(seed)


def random_covariance(seed, rank=12):
    factor = torch.randn(PIXELS, rank, dtype=torch.float64, generator=generator(seed))
    return (factor * torch.linspace(2.0, 0.1, rank, dtype=torch.float64)) @ factor.T / rank


def linear_model(optimum, latent_shape):
    """encode/decode of the closed-form linear VAE on (N, 1, 16, 16) images."""
    encoder, decoder = torch.tensor(optimum.encoder), torch.tensor(optimum.decoder)
    log_variance = torch.log(torch.tensor(optimum.posterior_variance))

    def encode(x):
        mu = x.flatten(1) @ encoder.T
        return mu.reshape(-1, *latent_shape), log_variance.expand_as(mu).reshape(-1, *latent_shape)

    def decode(z):
        return (z.flatten(1) @ decoder.T).reshape(-1, *IMAGE_SHAPE)

    return encode, decode


def sample_images(covariance, count, seed):
    noise = torch.randn(count, PIXELS, dtype=torch.float64, generator=generator(seed))
    root = torch.linalg.cholesky(covariance + 1e-9 * torch.eye(PIXELS, dtype=torch.float64))
    return (noise @ root.T).reshape(count, *IMAGE_SHAPE)


def quadratic_loss(matrix):
    def loss(x, x_hat):
        delta = (x - x_hat).flatten(1)
        return torch.einsum("bi,ij,bj->b", delta, matrix, delta)

    return loss


@pytest.mark.parametrize("use_metric,latent_shape", [(False, (8,)), (True, (2, 2, 2))])
def test_probe_is_exact_for_the_linear_vae_at_its_optimum(use_metric, latent_shape):
    covariance = random_covariance(seed=0)
    identity = torch.eye(PIXELS, dtype=torch.float64)
    factor = torch.randn(PIXELS, PIXELS, dtype=torch.float64, generator=generator(1))
    metric = factor @ factor.T / PIXELS + identity if use_metric else None
    scale = 1.5
    spectrum = linear_vae_optimum(covariance, metric).eigenvalues
    beta = 2 * scale * np.sqrt(spectrum[3] * spectrum[4])  # theta between lambda_4 and lambda_5
    optimum = linear_vae_optimum(covariance, metric, beta=beta, scale=scale, latent_dim=8)
    assert optimum.num_active == 4
    encode, decode = linear_model(optimum, latent_shape)
    loss = quadratic_loss(metric if use_metric else identity)
    result = mechanistic_probe(encode, decode, sample_images(covariance, 20, seed=2), beta, scale,
                               loss_fn=loss, batch_size=7)
    assert result.predicted_variance.shape == (20, 8)
    np.testing.assert_allclose(result.predicted_variance, result.actual_variance, rtol=1e-9)
    # (J^T M J)_jj = lambda_j - theta on active units, 0 on inactive ones.
    excess = np.clip(optimum.eigenvalues[:8] - optimum.water_level, 0, None)
    np.testing.assert_allclose(result.metric_column_norms[0], excess, atol=1e-9)
    assert result.median_log_ratio == pytest.approx(0.0, abs=1e-9) and result.iqr_log_ratio < 1e-9
    assert result.spearman_log == pytest.approx(1.0) and result.pearson_log == pytest.approx(1.0)
    assert result.negative_curvature_count == 0


def test_metric_fn_gives_the_same_prediction_as_loss_fn():
    covariance = random_covariance(seed=3)
    optimum = linear_vae_optimum(covariance, beta=0.3, latent_dim=6)
    encode, decode = linear_model(optimum, (6,))
    x = sample_images(covariance, 5, seed=4)
    squared_error = quadratic_loss(torch.eye(PIXELS, dtype=torch.float64))
    from_loss = mechanistic_probe(encode, decode, x, 0.3, loss_fn=squared_error)
    from_metric = mechanistic_probe(encode, decode, x, 0.3, metric_fn=lambda images, v, point: v)
    np.testing.assert_allclose(from_loss.predicted_variance, from_metric.predicted_variance,
                               rtol=1e-12)


class SmallDecoder(nn.Module):
    def __init__(self, latent_dim=3):
        super().__init__()
        torch.manual_seed(5)
        self.net = nn.Sequential(nn.Linear(latent_dim, 16), nn.Tanh(), nn.Linear(16, 36))
        self.double()

    def forward(self, z):
        return torch.sigmoid(self.net(z)).reshape(-1, 1, 6, 6)


def test_matrix_free_column_norms_match_dense_jacobian_and_metric():
    decoder = SmallDecoder()
    features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh()).double()

    def feature_loss(x, x_hat):
        perceptual = (features(x) - features(x_hat)).pow(2).flatten(1).sum(1)
        return (x - x_hat).pow(2).flatten(1).sum(1) + 2.0 * perceptual

    mu = torch.randn(4, 3, dtype=torch.float64, generator=generator(6))
    logvar = torch.full_like(mu, -1.0)
    x = decoder(mu).detach() + 0.05
    result = mechanistic_probe(lambda images: (mu, logvar), decoder, x, beta=2.0, scale=0.5,
                               loss_fn=feature_loss, batch_size=4)
    for index in range(4):
        jacobian = torch.autograd.functional.jacobian(lambda z: decoder(z[None]).reshape(-1),
                                                      mu[index])
        metric = loss_metric(feature_loss, x[index])
        expected = torch.diag(jacobian.T @ metric @ jacobian).numpy()
        np.testing.assert_allclose(result.metric_column_norms[index], expected, rtol=1e-10)
    np.testing.assert_allclose(result.predicted_variance,
                               1 / (1 + (2 * 0.5 / 2.0) * result.metric_column_norms))
    np.testing.assert_allclose(result.actual_variance, np.exp(-1.0))
    reconstruction = mechanistic_probe(lambda images: (mu, logvar), decoder, x, beta=2.0, scale=0.5,
                                       loss_fn=feature_loss, metric_at="reconstruction")
    assert reconstruction.metric_at == "reconstruction"
    assert np.isfinite(reconstruction.predicted_variance).all()


def test_summary_is_json_and_plot_is_written(tmp_path):
    covariance = random_covariance(seed=7)
    optimum = linear_vae_optimum(covariance, beta=0.3, latent_dim=4)
    encode, decode = linear_model(optimum, (4,))
    result = mechanistic_probe(encode, decode, sample_images(covariance, 6, seed=8), 0.3,
                               loss_fn=quadratic_loss(torch.eye(PIXELS, dtype=torch.float64)))
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["num_images"] == 6 and summary["latent_dim"] == 4
    assert len(summary["actual_profile"]) == 4 and summary["spearman_log"] == pytest.approx(1.0)
    path = tmp_path / "probe.png"
    plot_probe(result, path)
    assert path.stat().st_size > 1000


def test_probe_errors_are_clear():
    decoder = SmallDecoder()
    mu = torch.zeros(2, 3, dtype=torch.float64)
    x = torch.rand(2, 1, 6, 6, dtype=torch.float64)

    def squared(a, b):
        return (a - b).pow(2).flatten(1).sum(1)

    with pytest.raises(ValueError, match="exactly one of loss_fn"):
        mechanistic_probe(lambda images: (mu, mu), decoder, x, 1.0)
    with pytest.raises(ValueError, match="metric_at"):
        mechanistic_probe(lambda images: (mu, mu), decoder, x, 1.0, loss_fn=squared,
                          metric_at="latent")
    with pytest.raises(ValueError, match="beta and scale"):
        mechanistic_probe(lambda images: (mu, mu), decoder, x, 0.0, loss_fn=squared)
    with pytest.raises(ValueError, match="different shapes"):
        mechanistic_probe(lambda images: (mu, mu[:, :2]), decoder, x, 1.0, loss_fn=squared)
    with pytest.raises(ValueError, match="decode\\(mu\\) must return images"):
        wrong_shape = torch.rand(2, 1, 4, 4, dtype=torch.float64)
        mechanistic_probe(lambda images: (mu, mu), decoder, wrong_shape, 1.0, loss_fn=squared)


def test_precision_rate_in_closed_form():
    from vaelens.theory.probe import precision_rate

    # 1/2 log(1 / v) per unit: 0, 1 and 2 nats.
    assert precision_rate([1.0, np.exp(-2.0), np.exp(-4.0)]) == pytest.approx(3.0)
    # A unit's KL 1/2 (mu^2 + v - 1 - log v) at mu = 0, v -> 0 grows as the precision part does.
    v = 1e-3
    assert 0.5 * (v - 1 - np.log(v)) - precision_rate([v]) == pytest.approx(0.5 * (v - 1))
    with pytest.raises(ValueError, match="positive, finite variances"):
        precision_rate([0.5, 0.0])
