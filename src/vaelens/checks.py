"""Input validation shared by the metric functions: clear errors instead of silent NaNs."""

from __future__ import annotations

import torch


def as_float_tensor(value, name: str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Return `value` as a floating tensor (numpy arrays and lists accepted), keeping its device."""
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"{name} must be a tensor or array, got {type(value).__name__}") from error
    if not (value.is_floating_point() or value.dtype in (torch.int32, torch.int64, torch.bool)):
        raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
    return value.to(dtype)


def check_finite(tensor: torch.Tensor, name: str) -> None:
    """Raise ValueError naming `name` and the count of bad entries if any entry is NaN or Inf."""
    bad = ~torch.isfinite(tensor)
    if bool(bad.any()):
        raise ValueError(
            f"{name} has {int(bad.sum())} NaN/Inf entries out of {tensor.numel()}; "
            "check the encoder outputs (a diverged run?) before computing metrics"
        )


def check_matrix(tensor: torch.Tensor, name: str, min_rows: int = 1) -> None:
    """Require a 2-D (N, d) tensor with at least `min_rows` rows and one column."""
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, d), got shape {tuple(tensor.shape)}")
    if tensor.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows (samples), got {tensor.shape[0]}")
    if tensor.shape[1] < 1:
        raise ValueError(f"{name} needs at least one column (latent unit), got shape {tuple(tensor.shape)}")


def check_posterior(mu, logvar, min_rows: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a diagonal Gaussian posterior given as (N, d) means and log-variances; float64 out."""
    mu = as_float_tensor(mu, "mu")
    logvar = as_float_tensor(logvar, "logvar")
    check_matrix(mu, "mu", min_rows)
    if mu.shape != logvar.shape:
        raise ValueError(
            f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    check_finite(mu, "mu")
    check_finite(logvar, "logvar")
    return mu, logvar
