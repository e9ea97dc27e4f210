"""The closed-form linear beta-VAE optimum against direct optimisation of its exact loss."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from vaelens.theory import (
    gaussian_rate_distortion,
    linear_vae_optimum,
    rate_distortion_point,
    scale_for_gaussian_likelihood,
    water_level,
    water_level_for_distortion,
    water_level_for_rate,
)


def random_spd(rng, n, ridge):
    factor = rng.standard_normal((n, n))
    return factor @ factor.T / n + ridge * np.eye(n)


def expected_loss_terms(weights, encoder, variance, sigma, metric):
    """Exact E_x E_q d_M, E_x d_M at the mean code, per-unit E_x KL; x ~ N(0, sigma)."""
    residual = torch.eye(sigma.shape[0], dtype=torch.float64) - weights @ encoder
    distortion_at_mean = torch.trace(metric @ residual @ sigma @ residual.T)
    sampling = torch.sum(torch.diag(weights.T @ metric @ weights) * variance)
    kl = 0.5 * (torch.diag(encoder @ sigma @ encoder.T) + variance - 1 - torch.log(variance))
    return distortion_at_mean + sampling, distortion_at_mean, kl


def optimise_numerically(sigma, metric, beta, scale, latent_dim, seed):
    """L-BFGS in float64 over decoder W, encoder matrix A and log posterior variances."""
    n = sigma.shape[0]
    sigma_t, metric_t = torch.tensor(sigma), torch.tensor(metric)
    size = n * latent_dim

    def unpack(params):
        return (params[:size].reshape(n, latent_dim), params[size:2 * size].reshape(latent_dim, n),
                torch.exp(params[2 * size:]))

    def objective(flat):
        params = torch.tensor(flat, requires_grad=True)
        distortion, _, kl = expected_loss_terms(*unpack(params), sigma_t, metric_t)
        loss = scale * distortion + beta * kl.sum()
        (gradient,) = torch.autograd.grad(loss, params)
        return loss.item(), gradient.numpy()

    rng = np.random.default_rng(seed)
    start = np.concatenate([0.3 * rng.standard_normal(2 * size), np.zeros(latent_dim)])
    result = minimize(objective, start, jac=True, method="L-BFGS-B",
                      options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-11, "maxcor": 30})
    weights, encoder, variance = unpack(torch.tensor(result.x))
    distortion, _, kl = expected_loss_terms(weights, encoder, variance, sigma_t, metric_t)
    return result.fun, float(kl.sum()), variance.numpy(), float(distortion)


CASES = [  # (seed, n, latent_dim, use_metric)
    (0, 5, 5, True),
    (1, 4, 4, False),
    (2, 5, 2, True),
    (3, 4, 4, True),
]


@pytest.mark.parametrize("seed,n,latent_dim,use_metric", CASES)
def test_closed_form_matches_numerical_optimum(seed, n, latent_dim, use_metric):
    rng = np.random.default_rng(seed)
    sigma = random_spd(rng, n, 0.05)
    metric = random_spd(rng, n, 0.5) if use_metric else np.eye(n)
    beta, scale = rng.uniform(0.3, 3.0), rng.uniform(0.5, 2.0)
    optimum = linear_vae_optimum(sigma, metric if use_metric else None, beta=beta, scale=scale,
                                 latent_dim=latent_dim)
    # Away from the breakpoints lambda = theta, where the optimiser converges slowly.
    assert np.all(np.abs(np.log(optimum.eigenvalues / optimum.water_level)) > 0.05)
    loss, rate, variance, distortion = optimise_numerically(sigma, metric, beta, scale,
                                                            latent_dim, seed)
    assert loss == pytest.approx(optimum.objective_value, rel=1e-4)
    assert loss >= optimum.objective_value * (1 - 1e-10)
    assert rate == pytest.approx(optimum.rate, rel=1e-4, abs=1e-6)
    assert distortion == pytest.approx(optimum.distortion, rel=1e-4)
    np.testing.assert_allclose(np.sort(variance), np.sort(optimum.posterior_variance), rtol=1e-4)


@pytest.mark.parametrize("latent_dim", [6, 3, 8])
def test_closed_form_parameters_reproduce_reported_quantities(latent_dim):
    rng = np.random.default_rng(7)
    n = 6
    sigma, metric = random_spd(rng, n, 0.0), random_spd(rng, n, 0.3)
    optimum = linear_vae_optimum(sigma, metric, beta=0.8, scale=1.3, latent_dim=latent_dim)
    assert optimum.decoder.shape == (n, latent_dim) and optimum.encoder.shape == (latent_dim, n)
    assert 0 < optimum.num_active <= min(n, latent_dim)
    assert latent_dim < n or not optimum.active.all()
    sigma_t, encoder = torch.tensor(sigma), torch.tensor(optimum.encoder)
    distortion, at_mean, kl = expected_loss_terms(
        torch.tensor(optimum.decoder), encoder, torch.tensor(optimum.posterior_variance),
        sigma_t, torch.tensor(metric))
    assert float(distortion) == pytest.approx(optimum.distortion, rel=1e-10)
    assert float(at_mean) == pytest.approx(optimum.distortion_at_mean, rel=1e-10)
    np.testing.assert_allclose(kl.numpy(), optimum.rate_per_unit, atol=1e-12)
    mean_covariance = (encoder @ sigma_t @ encoder.T).numpy()
    # The aggregate posterior N(0, Cov(mu) + diag s) is exactly the prior N(0, I).
    np.testing.assert_allclose(mean_covariance + np.diag(optimum.posterior_variance),
                               np.eye(latent_dim), atol=1e-10)
    np.testing.assert_allclose(np.diag(mean_covariance), optimum.mean_variance, atol=1e-12)
    inactive = ~optimum.active
    assert not optimum.decoder[:, inactive].any() and not optimum.encoder[inactive].any()
    assert optimum.objective_value == pytest.approx(1.3 * optimum.distortion + 0.8 * optimum.rate)


def test_rate_slope_in_log_beta_counts_active_units():
    rng = np.random.default_rng(3)
    sigma = random_spd(rng, 6, 0.01)
    lam = linear_vae_optimum(sigma).eigenvalues
    slopes = []
    for k in range(1, 6):
        # Half-way (in log) between the breakpoints 2 lambda_{k+1} and 2 lambda_k: k units active.
        beta, step = 2 * np.sqrt(lam[k - 1] * lam[k]), 1e-4
        assert linear_vae_optimum(sigma, beta=beta).num_active == k
        high = linear_vae_optimum(sigma, beta=beta * np.exp(step)).rate
        low = linear_vae_optimum(sigma, beta=beta * np.exp(-step)).rate
        slopes.append((high - low) / (2 * step))
    np.testing.assert_allclose(slopes, -0.5 * np.arange(1, 6), rtol=1e-6)


def test_water_level_conventions():
    assert water_level(3.0, 1.5) == pytest.approx(1.0)
    pixel_sigma = 0.3
    gaussian_scale = scale_for_gaussian_likelihood(pixel_sigma)
    assert water_level(2.0, gaussian_scale) == pytest.approx(2.0 * pixel_sigma**2)
    sigma = random_spd(np.random.default_rng(4), 4, 0.1)
    # A metric m I is the same problem as squared error with the scale multiplied by m.
    scaled_metric = linear_vae_optimum(sigma, 2.5 * np.eye(4), beta=1.0, scale=1.0)
    scaled_loss = linear_vae_optimum(sigma, None, beta=1.0, scale=2.5)
    assert scaled_metric.rate == pytest.approx(scaled_loss.rate)
    np.testing.assert_allclose(scaled_metric.posterior_variance, scaled_loss.posterior_variance)


def test_adding_a_quadratic_term_never_lowers_the_rate():
    rng = np.random.default_rng(5)
    sigma = random_spd(rng, 5, 0.05)
    pixel_only = linear_vae_optimum(sigma, np.eye(5), beta=1.0).rate
    for _ in range(5):
        extra = random_spd(rng, 5, 0.0)
        assert linear_vae_optimum(sigma, np.eye(5) + extra, beta=1.0).rate >= pixel_only - 1e-12


def test_rate_distortion_curve_is_reverse_water_filling():
    rng = np.random.default_rng(6)
    sigma, metric = random_spd(rng, 5, 0.05), random_spd(rng, 5, 0.5)
    curve = gaussian_rate_distortion(sigma, metric, num_points=50)
    assert np.all(np.diff(curve.distortion) > 0) and np.all(np.diff(curve.rate) <= 0)
    assert curve.rate[-1] == 0
    assert curve.distortion[-1] == pytest.approx(np.trace(metric @ sigma))
    # The linear VAE's (D, R) sits on the curve at theta = beta / (2 scale).
    for beta in (0.1, 0.7, 2.0):
        optimum = linear_vae_optimum(sigma, metric, beta=beta)
        distortion, rate = rate_distortion_point(curve.eigenvalues, optimum.water_level)
        assert (distortion, rate) == pytest.approx((optimum.distortion, optimum.rate))
        theta = optimum.water_level
        assert water_level_for_rate(curve.eigenvalues, rate) == pytest.approx(theta)
        assert water_level_for_distortion(curve.eigenvalues, distortion) == pytest.approx(theta)
    # Independent components: R = sum 0.5 log(lambda_i / D_i), D_i = min(lambda_i, theta).
    expected = (0.5 + 0.5 + 0.25, 0.5 * np.log(8) + 0.5 * np.log(2))
    assert rate_distortion_point(np.diag(np.diag([4.0, 1.0, 0.25])), 0.5) == pytest.approx(expected)
    assert json.dumps(curve.to_dict())


def test_torch_inputs_and_serialisation():
    sigma = torch.tensor([[2.0, 0.3], [0.3, 1.0]], dtype=torch.float32)
    optimum = linear_vae_optimum(sigma, torch.eye(2), beta=1.0)
    assert optimum.eigenvalues.dtype == np.float64
    payload = json.loads(json.dumps(optimum.to_dict()))
    assert payload["num_active"] == optimum.num_active
    assert len(payload["posterior_variance"]) == 2


@pytest.mark.parametrize("kwargs,message", [
    ({"data_cov": [[1.0, 0.5], [0.0, 1.0]]}, "data_cov must be symmetric"),
    ({"data_cov": [[1.0, 2.0], [2.0, 1.0]]}, "positive semi-definite"),
    ({"data_cov": np.ones(3)}, "square"),
    ({"data_cov": [[1.0, np.nan], [np.nan, 1.0]]}, "NaN"),
    ({"data_cov": "covariance"}, "data_cov must"),
    ({"metric": [[1.0, 0.0], [0.0, 0.0]]}, "metric must be positive definite"),
    ({"metric": np.eye(3)}, "metric must have the shape"),
    ({"beta": 0.0}, "beta must be a positive"),
    ({"scale": -1.0}, "scale must be a positive"),
    ({"beta": "big"}, "beta must be a positive"),
    ({"latent_dim": 0}, "latent_dim must be a positive integer"),
    ({"latent_dim": 2.5}, "latent_dim must be a positive integer"),
])
def test_bad_inputs_raise_clear_errors(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        linear_vae_optimum(**({"data_cov": np.eye(2)} | kwargs))


def test_inverse_water_level_errors():
    with pytest.raises(ValueError, match="rate must be a non-negative"):
        water_level_for_rate([1.0, 0.5], -1.0)
    with pytest.raises(ValueError, match="distortion must lie in"):
        water_level_for_distortion([1.0, 0.5], 2.0)
    with pytest.raises(ValueError, match="eigenvalues must be non-negative"):
        rate_distortion_point([1.0, -0.5], 0.1)
    with pytest.raises(ValueError, match="num_points must be"):
        gaussian_rate_distortion(np.eye(2), num_points=1)
