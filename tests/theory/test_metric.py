"""Loss metrics (half Hessians at x̂ = x) against finite differences and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vaelens.theory import (
    additive_metric,
    convex_metric,
    dataset_metric,
    linear_vae_optimum,
    loss_metric,
    mean_metric_vector_product,
    metric_top_spectrum,
    metric_vector_product,
    predicted_linear_vae,
)

IMAGE_SHAPE = (1, 6, 6)
PIXELS = 36


def squared_error(x, x_hat):
    return (x - x_hat).pow(2).flatten(1).sum(1)


class FeatureLoss(nn.Module):
    """sum_l w_l ||phi_l(x) - phi_l(x̂)||^2 over two layers of a random smooth conv net."""

    def __init__(self, seed=0, weights=(1.0, 0.5)):
        super().__init__()
        torch.manual_seed(seed)
        self.first = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh())
        self.second = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Tanh())
        self.weights = weights
        self.double()

    def features(self, x):
        first = self.first(x)
        return [first, self.second(first)]

    def forward(self, x, x_hat):
        pairs = zip(self.features(x), self.features(x_hat), self.weights)
        return sum(w * (a - b).pow(2).flatten(1).sum(1) for a, b, w in pairs)


def generator(seed):
    return torch.Generator().manual_seed(seed)


def images(count, seed=1):
    return torch.rand(count, *IMAGE_SHAPE, generator=generator(seed), dtype=torch.float64)


def finite_difference_half_hessian(loss, x, step=1e-3):
    """(1/2) d^2 loss(x, x + delta) / d delta^2 at delta = 0 by central differences of the loss."""
    eye = torch.eye(PIXELS, dtype=torch.float64) * step
    plus_plus = eye[:, None, :] + eye[None, :, :]
    plus_minus = eye[:, None, :] - eye[None, :, :]
    shifts = torch.stack([plus_plus, plus_minus, -plus_minus, -plus_plus]).reshape(-1, *IMAGE_SHAPE)
    with torch.no_grad():
        values = loss(x.expand_as(shifts), x + shifts).reshape(4, PIXELS, PIXELS)
    hessian = (values[0] - values[1] - values[2] + values[3]) / (4 * step**2)
    return 0.5 * hessian


def test_squared_error_metric_is_identity():
    metric = loss_metric(squared_error, images(1)[0], chunk_size=10)
    torch.testing.assert_close(metric, torch.eye(PIXELS, dtype=torch.float64))


def test_quadratic_form_loss_recovers_its_matrix():
    factor = torch.randn(PIXELS, PIXELS, dtype=torch.float64, generator=generator(3))
    quadratic = factor @ factor.T / PIXELS

    def loss(x, x_hat):
        delta = (x - x_hat).flatten(1)
        return torch.einsum("bi,ij,bj->b", delta, quadratic, delta)

    torch.testing.assert_close(dataset_metric(loss, images(3)), quadratic)


def test_feature_loss_metric_matches_finite_difference_hessian_and_pullback():
    loss, x = FeatureLoss(), images(1)[0]
    metric = loss_metric(loss, x, chunk_size=16)
    torch.testing.assert_close(metric, finite_difference_half_hessian(loss, x), rtol=1e-5,
                               atol=1e-6)
    jacobians = torch.autograd.functional.jacobian(lambda im: tuple(loss.features(im[None])), x)
    flat = [j.reshape(-1, PIXELS) for j in jacobians]
    pullback = sum(w * j.T @ j for j, w in zip(flat, loss.weights))
    torch.testing.assert_close(metric, pullback, rtol=1e-10, atol=1e-12)
    assert torch.linalg.eigvalsh(metric).min() > -1e-10


def test_batched_products_and_dataset_average_agree_with_dense_metrics():
    loss, xs = FeatureLoss(seed=2), images(4, seed=5)
    dense = [loss_metric(loss, image) for image in xs]
    directions = torch.randn(4, *IMAGE_SHAPE, dtype=torch.float64, generator=generator(9))
    products = metric_vector_product(loss, xs, directions)
    for image_metric, direction, product in zip(dense, directions, products):
        torch.testing.assert_close(product.reshape(-1), image_metric @ direction.reshape(-1))
    average = dataset_metric(loss, xs, chunk_size=12)
    torch.testing.assert_close(average, torch.stack(dense).mean(0))
    torch.testing.assert_close(mean_metric_vector_product(loss, xs, directions[0]).reshape(-1),
                               average @ directions[0].reshape(-1))


def test_lanczos_top_spectrum_matches_dense_eigenvalues():
    loss, xs = FeatureLoss(seed=4), images(3, seed=6)
    dense_eigenvalues, dense_vectors = torch.linalg.eigh(dataset_metric(loss, xs))
    top = metric_top_spectrum(loss, xs, k=3)
    np.testing.assert_allclose(top.eigenvalues, dense_eigenvalues.flip(0)[:3].numpy(), rtol=1e-6)
    alignment = np.abs(np.sum(top.eigenvectors * dense_vectors.flip(1)[:, :3].T.numpy(), axis=1))
    np.testing.assert_allclose(alignment, 1.0, atol=1e-5)


def test_convention_helpers_equal_metrics_of_the_mixed_losses():
    feature, xs = FeatureLoss(seed=7), images(2, seed=8)
    perceptual = dataset_metric(feature, xs)
    sigma = 0.2

    def additive(x, x_hat):
        return squared_error(x, x_hat) / (2 * sigma**2) + 3.0 * feature(x, x_hat)

    def convex(x, x_hat):
        return 0.7 * squared_error(x, x_hat) + 0.3 * feature(x, x_hat)

    torch.testing.assert_close(dataset_metric(additive, xs),
                               additive_metric(perceptual, 3.0, pixel_scale=1 / (2 * sigma**2)))
    torch.testing.assert_close(dataset_metric(convex, xs), convex_metric(perceptual, 0.3))


def test_predicted_linear_vae_uses_the_metric():
    feature, xs = FeatureLoss(seed=10), images(2, seed=11)
    metric = additive_metric(dataset_metric(feature, xs), 2.0)
    data = torch.randn(200, PIXELS, dtype=torch.float64, generator=generator(12))
    covariance = torch.cov(data.T)
    predicted = predicted_linear_vae(covariance, metric, beta=0.5, scale=1.0)
    direct = linear_vae_optimum(covariance.numpy(), metric.numpy(), beta=0.5)
    assert predicted.rate == pytest.approx(direct.rate)
    # Additive perceptual term at fixed beta: rate can only go up (docs/science.md,
    # "Objectives and weighting conventions").
    assert predicted.rate >= linear_vae_optimum(covariance, None, beta=0.5).rate


def test_metric_errors_are_clear():
    xs = images(2)
    with pytest.raises(ValueError, match="per-image losses"):
        metric_vector_product(lambda x, x_hat: (x - x_hat).pow(2).sum(), xs, xs)
    with pytest.raises(ValueError, match="v must be a tensor of the shape of x"):
        metric_vector_product(squared_error, xs, xs[:1])
    with pytest.raises(ValueError, match="leading batch dimension"):
        metric_vector_product(squared_error, xs[0, 0, 0], xs[0, 0, 0])
    with pytest.raises(ValueError, match="k must be an integer"):
        metric_top_spectrum(squared_error, xs, k=PIXELS)
    with pytest.raises(ValueError, match="chunk_size"):
        dataset_metric(squared_error, xs, chunk_size=0)
    with pytest.raises(ValueError, match="mix in"):
        convex_metric(torch.eye(3), 1.0)
    # A loss linear in x_hat has no curvature.
    def linear_loss(x, x_hat):
        return (x - x_hat).flatten(1).sum(1)

    torch.testing.assert_close(metric_vector_product(linear_loss, xs, xs), torch.zeros_like(xs))
