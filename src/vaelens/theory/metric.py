"""Local quadratic metrics of reconstruction losses (docs/science.md, "Neural losses as metrics").

A per-image loss d(x, x̂) that is zero with zero gradient at x̂ = x is, to second order,
d(x, x + delta) ≈ delta^T M_x delta with M_x = (1/2) Hessian_x̂ d at x̂ = x. The factor 1/2 makes
M_x the d_M of the linear theory: squared pixel error ||x - x̂||^2 gives M = I, and a feature
loss sum_l w_l ||phi_l(x) - phi_l(x̂)||^2 gives the pull-back metric sum_l w_l J_l^T J_l (its
Hessian is exactly twice the Gauss-Newton matrix there, because the residual vanishes).

Everything is matrix-free: M_x v is one Hessian-vector product (reverse-over-reverse autograd,
which every differentiable module supports, LPIPS included). Dense matrices are built column by
column, for small images only. `loss_fn(x, x_hat)` takes two (B, ...) batches and returns (B,)
per-image losses, each depending on its own pair only (eval-mode networks, no batch statistics).

Not every loss has a metric: L1 / Laplace losses have a kink at x̂ = x and zero Hessian
elsewhere, so their second-order picture is empty; they enter only through the quadratic terms
of an additive or convex mix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh

from vaelens.distances.curvature import check_batch, metric_vector_product
from vaelens.theory.linear import LinearVAEOptimum, linear_vae_optimum


def _check_chunk_size(chunk_size) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return chunk_size


def mean_metric_vector_product(loss_fn, xs: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(1/B) sum_b M_{x_b} v for one direction v shaped like one image: E_x M_x applied to v."""
    check_batch(xs, "xs")
    if not isinstance(v, torch.Tensor) or v.shape != xs.shape[1:]:
        shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
        raise ValueError(f"v must have the shape of one image {tuple(xs.shape[1:])}, got {shape}")
    return metric_vector_product(loss_fn, xs, v.expand_as(xs).contiguous()).mean(0)


def dataset_metric(loss_fn, xs: torch.Tensor, chunk_size: int = 64) -> torch.Tensor:
    """Dense (n, n) dataset-averaged metric E_x M_x over xs (B, ...), n = pixels per image.

    Built from n Hessian-vector products per image, `chunk_size` basis directions at a time;
    memory grows as B * chunk_size images, so keep images small (n up to a few thousand).
    """
    check_batch(xs, "xs")
    chunk_size = _check_chunk_size(chunk_size)
    batch, image_shape, n = xs.shape[0], xs.shape[1:], xs[0].numel()
    columns = []
    for start in range(0, n, chunk_size):
        width = min(chunk_size, n - start)
        basis = torch.zeros(width, n, dtype=xs.dtype, device=xs.device)
        basis[torch.arange(width), torch.arange(start, start + width)] = 1.0
        # Every image meets every basis direction: the batch index runs over (image, direction).
        images = xs.unsqueeze(1).expand(batch, width, *image_shape).reshape(-1, *image_shape)
        directions = basis.reshape(1, width, *image_shape).expand(batch, width, *image_shape)
        products = metric_vector_product(loss_fn, images, directions.reshape(-1, *image_shape))
        columns.append(products.reshape(batch, width, n).mean(0))
    metric = torch.cat(columns, 0).T
    return 0.5 * (metric + metric.T)


def loss_metric(loss_fn, x: torch.Tensor, chunk_size: int = 64) -> torch.Tensor:
    """Dense (n, n) metric M_x of one image x (e.g. shape (C, H, W); no batch dimension)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch tensor (one image, no batch dimension), "
                        f"got {type(x).__name__}")
    return dataset_metric(loss_fn, x.unsqueeze(0), chunk_size)


@dataclass(frozen=True)
class MetricEigenpairs:
    """Top eigenpairs of a (dataset-averaged) loss metric."""

    eigenvalues: np.ndarray
    """(k,) descending."""
    eigenvectors: np.ndarray
    """(k, n) unit vectors, one per row; reshape a row to the image shape to view it."""


def metric_top_spectrum(loss_fn, xs: torch.Tensor, k: int = 10, tol: float = 1e-8,
                        max_iterations: int | None = None) -> MetricEigenpairs:
    """Top-k eigenpairs of E_x M_x by Lanczos (scipy eigsh) on Hessian-vector products.

    For images too big for a dense metric: each Lanczos step is one HVP over the batch xs.
    """
    check_batch(xs, "xs")
    image_shape, n = xs.shape[1:], xs[0].numel()
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < n:
        raise ValueError(f"k must be an integer in [1, {n - 1}] for Lanczos on {n} pixels, "
                         f"got {k!r}; for the full spectrum use "
                         "torch.linalg.eigvalsh(dataset_metric(loss_fn, xs))")

    def matvec(vector: np.ndarray) -> np.ndarray:
        direction = torch.as_tensor(np.asarray(vector).reshape(image_shape), dtype=xs.dtype,
                                    device=xs.device)
        product = mean_metric_vector_product(loss_fn, xs, direction)
        return product.reshape(-1).detach().cpu().double().numpy()

    operator = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    eigenvalues, eigenvectors = eigsh(operator, k=k, which="LA", tol=tol, maxiter=max_iterations)
    order = np.argsort(eigenvalues)[::-1]
    return MetricEigenpairs(eigenvalues[order], eigenvectors[:, order].T)


def _dense_metric(metric, name: str) -> torch.Tensor:
    if not isinstance(metric, torch.Tensor):
        metric = torch.as_tensor(np.asarray(metric, dtype=np.float64))
    if metric.ndim != 2 or metric.shape[0] != metric.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix, got shape {tuple(metric.shape)}")
    return metric


def additive_metric(perceptual_metric, perceptual_weight: float,
                    pixel_scale: float = 1.0) -> torch.Tensor:
    """Metric of the additive convention d_pix + w_p d_perc: pixel_scale * I + w_p * M_perc.

    pixel_scale is the metric of the pixel term alone: 1 for the summed squared error
    ||x - x̂||^2, 1 / (2 sigma^2) for a fixed-sigma Gaussian NLL, 1 / n for a mean over n pixels.
    """
    metric = _dense_metric(perceptual_metric, "perceptual_metric")
    if not (perceptual_weight >= 0 and pixel_scale > 0):
        raise ValueError("need perceptual_weight >= 0 and pixel_scale > 0, got "
                         f"perceptual_weight={perceptual_weight}, pixel_scale={pixel_scale}")
    identity = torch.eye(metric.shape[0], dtype=metric.dtype, device=metric.device)
    return pixel_scale * identity + perceptual_weight * metric


def convex_metric(neural_metric, mix: float, pixel_scale: float = 1.0) -> torch.Tensor:
    """Metric of the convex convention (1 - a) d_pix + a d_neural: (1-a) pixel_scale I + a M.

    pixel_scale as in `additive_metric`; a = `mix` in [0, 1) (a = 1 drops the pixel term and
    leaves a usually singular metric, which the linear theory rejects).
    """
    metric = _dense_metric(neural_metric, "neural_metric")
    if not (0 <= mix < 1 and pixel_scale > 0):
        raise ValueError(f"need mix in [0, 1) and pixel_scale > 0, got mix={mix}, "
                         f"pixel_scale={pixel_scale}")
    identity = torch.eye(metric.shape[0], dtype=metric.dtype, device=metric.device)
    return (1 - mix) * pixel_scale * identity + mix * metric


def predicted_linear_vae(data_cov, metric, beta: float, scale: float = 1.0,
                         latent_dim: int | None = None) -> LinearVAEOptimum:
    """Linear-theory prediction (rate, active units, variance profile) for a loss with `metric`."""
    return linear_vae_optimum(data_cov, metric=metric, beta=beta, scale=scale,
                              latent_dim=latent_dim)
