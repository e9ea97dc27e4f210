"""The local curvature of a per-image loss d(x, x̂): M_x v, half its Hessian in x̂ applied to v, matrix-free.

A loss that is zero with zero gradient at x̂ = x is, to second order, d(x, x + delta) ≈ delta^T M_x delta with
M_x = (1/2) Hessian_x̂ d (the factor 1/2 makes squared pixel error give M = I). M_x v is one Hessian-vector
product (reverse-over-reverse autograd, which every differentiable module supports, LPIPS included). The
calibrated weights (vaelens.losses.calibration) take traces of it, the theory's dense metrics and the
mechanistic probe (vaelens.theory) build on it; docs/science.md says what it means.
"""

from __future__ import annotations

import torch


def check_batch(x, name: str) -> None:
    """Raise unless `x` is a floating (B, ...) tensor with B >= 1."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor of images (B, ...), got {type(x).__name__}")
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"{name} must be a batch (B, ...) with a leading batch dimension and "
                         f"B >= 1, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}")


def per_image_loss(loss_fn, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """loss_fn(x, x_hat), checked to be the per-image losses (B,): the metrics are per image."""
    loss = loss_fn(x, x_hat)
    if not isinstance(loss, torch.Tensor) or loss.shape != (x.shape[0],):
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn(x, x_hat) must return the per-image losses, shape "
                         f"({x.shape[0]},), got {shape}; reduce over pixels, not over the batch")
    return loss


def metric_vector_product(loss_fn, x: torch.Tensor, v: torch.Tensor,
                          x_hat: torch.Tensor | None = None) -> torch.Tensor:
    """M_x v per image: half the Hessian of loss_fn(x, .) at x_hat (default x) applied to v.

    x, v (and x_hat): (B, ...) of one shape; returns (B, ...). With x_hat != x it is the local
    curvature around that reconstruction (e.g. the Fisher information of a Bernoulli decoder
    when loss_fn reads logits).
    """
    check_batch(x, "x")
    if not isinstance(v, torch.Tensor) or v.shape != x.shape:
        shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
        raise ValueError(f"v must be a tensor of the shape of x {tuple(x.shape)}, got {shape}")
    point = x if x_hat is None else x_hat
    if point.shape != x.shape:
        raise ValueError(f"x_hat must have the shape of x {tuple(x.shape)}, "
                         f"got {tuple(point.shape)}")
    with torch.enable_grad():
        point, gradient = gradient_graph(loss_fn, x, point)
        if gradient is None:
            return torch.zeros_like(v)
        (hessian_v,) = torch.autograd.grad(gradient, point, grad_outputs=v.to(point.dtype),
                                           allow_unused=True)
    return torch.zeros_like(v) if hessian_v is None else 0.5 * hessian_v.detach()


def gradient_graph(loss_fn, x: torch.Tensor, point: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(x̂ as a leaf, the gradient of sum_b loss_fn(x, x̂) at `point` with its graph kept for Hessian-vector
    products), or (x̂, None) when the loss is linear in x̂ and has no curvature. Call under enable_grad."""
    point = point.detach().clone().requires_grad_(True)
    loss = per_image_loss(loss_fn, x.detach(), point).sum()
    (gradient,) = torch.autograd.grad(loss, point, create_graph=True)
    return point, (gradient if gradient.requires_grad else None)


def hutchinson_trace(loss_fn, x: torch.Tensor, point: torch.Tensor, probes: int,
                     generator: torch.Generator) -> torch.Tensor:
    """(B,) estimates of tr M_x, M_x = half the Hessian of loss_fn(x, .) at `point`, from `probes` Rademacher
    vectors each: tr M = E_v v^T M v for v with independent +-1 entries."""
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for _ in range(probes):
        signs = torch.randint(0, 2, x.shape, generator=generator, device=generator.device).to(x.device, x.dtype)
        v = 2 * signs - 1
        total += (v * metric_vector_product(loss_fn, x, v, point)).flatten(1).sum(1).double()
    return total / probes
