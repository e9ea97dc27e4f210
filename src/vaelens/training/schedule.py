"""The autoencoder's learning rate at each step (train.lr_schedule)."""

from __future__ import annotations

import math

import torch


def learning_rate(settings, step: int) -> float:
    """train.lr under train.lr_schedule at step `step` of train.steps (0-based: the rate step `step` uses)."""
    if settings.lr_schedule == "constant":
        return settings.lr
    if settings.lr_schedule == "cosine":
        return settings.lr * 0.5 * (1.0 + math.cos(math.pi * step / settings.steps))
    raise ValueError(f"unknown train.lr_schedule '{settings.lr_schedule}'; valid: constant, cosine")


def set_learning_rate(optimizers: list[torch.optim.Optimizer], settings, step: int) -> None:
    """Give every parameter group of `optimizers` the scheduled rate of `step` (a no-op at a constant rate,
    so a constant run's Adam is never touched)."""
    if settings.lr_schedule == "constant":
        return
    rate = learning_rate(settings, step)
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = rate
