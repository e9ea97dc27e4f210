"""The LPIPS formula in the feature space of any network: the distance the training losses, the evaluation
metrics and the theory's perceptual metric share (LPIPS itself, vaelens's fitted feature networks and any
other feature extractor)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def feature_distance(
    x,
    x_hat,
    feature_fn: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    *,
    channel_weights: Sequence[torch.Tensor | None] | None = None,
    eps: float = 1e-10,
) -> torch.Tensor:
    """LPIPS-style distance in the feature space of any network, per image, shape (N,).

    For each feature map f_l (N, C_l, H_l, W_l) from `feature_fn`: unit-normalise over channels
    (f / (||f||_2 over channels + eps)), square the difference between x and x_hat, weight each
    channel by channel_weights[l] (non-negative (C_l,) tensor; None = all ones), sum over
    channels, average over space, and sum over layers. Differentiable: gradients flow to x_hat,
    so the training losses reuse this function. No range check on the inputs (any tensors the
    feature network accepts).
    """
    features_x = list(feature_fn(x))
    features_hat = list(feature_fn(x_hat))
    if not features_x or len(features_x) != len(features_hat):
        raise ValueError(
            f"feature_fn must return the same non-empty number of feature maps for x and x_hat, "
            f"got {len(features_x)} and {len(features_hat)}"
        )
    if channel_weights is not None and len(channel_weights) != len(features_x):
        raise ValueError(
            f"channel_weights needs one entry per feature map ({len(features_x)}), got {len(channel_weights)}"
        )
    total = None
    for layer, (fx, fh) in enumerate(zip(features_x, features_hat)):
        if fx.ndim != 4 or fx.shape != fh.shape:
            raise ValueError(
                f"feature map {layer} must be (N, C, H, W) and equal for x and x_hat, "
                f"got {tuple(fx.shape)} and {tuple(fh.shape)}"
            )
        unit_x = fx / (fx.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)
        unit_hat = fh / (fh.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)
        squared = (unit_x - unit_hat).pow(2)
        weights = None if channel_weights is None else channel_weights[layer]
        if weights is not None:
            weights = torch.as_tensor(weights, dtype=squared.dtype, device=squared.device).flatten()
            if weights.numel() != squared.shape[1]:
                raise ValueError(
                    f"channel_weights[{layer}] must have {squared.shape[1]} entries (one per channel), "
                    f"got {weights.numel()}"
                )
            if bool((weights < 0).any()):
                raise ValueError(f"channel_weights[{layer}] must be non-negative (it weights squared distances)")
            squared = squared * weights.view(1, -1, 1, 1)
        per_image = squared.sum(dim=1).mean(dim=(1, 2))
        total = per_image if total is None else total + per_image
    return total
