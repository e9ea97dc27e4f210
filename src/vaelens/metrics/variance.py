"""How evenly variance is spread across latent units: the posterior-variance profile and its uniformity.

`posterior_variance_profile(logvar)` summarises s_j = E_x sigma_j^2(x) (and E_x log sigma_j^2);
`mean_variance_profile(mu)` summarises Var_x(mu_j), which is 1 - s_j in linear theory. Both
return a `VarianceProfile` whose profile is sorted in descending order, with four uniformity
statistics of the profile vector s (d >= 2 units):

- normalized_entropy: H(s / sum s) / log d, 1 when perfectly uniform, towards 0 when one unit
  holds everything;
- coefficient_of_variation: std(s) / mean(s) over units (population std, since the d units are the
  whole set, not a sample), 0 when uniform;
- max_min_ratio: max s / min s, 1 when uniform, inf when some unit has zero variance;
- participation_ratio: (sum s)^2 / sum s^2, d when uniform, 1 when one unit holds everything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaelens.checks import as_float_tensor, check_finite, check_matrix

__all__ = ["VarianceProfile", "posterior_variance_profile", "mean_variance_profile", "profile_uniformity"]


@dataclass(frozen=True)
class VarianceProfile:
    """A sorted per-unit variance profile and how uniform it is (see the module docstring)."""

    profile: list[float]
    """Per-unit variances, descending."""
    normalized_entropy: float
    coefficient_of_variation: float
    max_min_ratio: float
    participation_ratio: float
    log_profile: list[float] | None = None
    """Posterior profile only: E_x log sigma_j^2 per unit, descending (sorted on its own)."""

    def to_dict(self) -> dict:
        """Flat JSON-ready dict: the field names as keys; log_profile only when present;
        max_min_ratio None when infinite (strict JSON has no infinity)."""
        result = {
            "profile": self.profile,
            "normalized_entropy": self.normalized_entropy,
            "coefficient_of_variation": self.coefficient_of_variation,
            "max_min_ratio": self.max_min_ratio if math.isfinite(self.max_min_ratio) else None,
            "participation_ratio": self.participation_ratio,
        }
        if self.log_profile is not None:
            result["log_profile"] = self.log_profile
        return result


def profile_uniformity(values) -> dict[str, float]:
    """Uniformity statistics of a non-negative per-unit vector (at least 2 entries, positive sum)."""
    values = as_float_tensor(values, "values").flatten()
    check_finite(values, "values")
    if values.numel() < 2:
        raise ValueError(f"a variance profile needs at least 2 units to measure uniformity, got {values.numel()}")
    if bool((values < 0).any()):
        raise ValueError("variance profile values must be non-negative")
    total = values.sum()
    if float(total) <= 0:
        raise ValueError("variance profile is all zeros: uniformity is undefined")
    weights = values / total
    positive = weights[weights > 0]
    entropy = float(-(positive * positive.log()).sum())
    smallest = float(values.min())
    return {
        "normalized_entropy": entropy / math.log(values.numel()),
        "coefficient_of_variation": float(values.std(correction=0) / values.mean()),
        "max_min_ratio": float(values.max()) / smallest if smallest > 0 else math.inf,
        "participation_ratio": float(total.square() / values.square().sum()),
    }


def _validated(tensor, name: str, min_rows: int) -> torch.Tensor:
    tensor = as_float_tensor(tensor, name)
    check_matrix(tensor, name, min_rows=min_rows)
    check_finite(tensor, name)
    if tensor.shape[1] < 2:
        raise ValueError(
            f"{name} needs at least 2 columns (latent units) for a profile, got shape {tuple(tensor.shape)}"
        )
    return tensor


def _descending(values: torch.Tensor) -> list[float]:
    return values.sort(descending=True).values.cpu().tolist()


def posterior_variance_profile(logvar) -> VarianceProfile:
    """Profile of s_j = E_x sigma_j^2 from (N, d) log-variances, with E_x log sigma_j^2 alongside."""
    logvar = _validated(logvar, "logvar", min_rows=1)
    mean_variance = logvar.exp().mean(dim=0)
    return VarianceProfile(profile=_descending(mean_variance), log_profile=_descending(logvar.mean(dim=0)),
                           **profile_uniformity(mean_variance))


def mean_variance_profile(mu) -> VarianceProfile:
    """Profile of Var_x(mu_j) (unbiased, N >= 2) from (N, d) posterior means."""
    mu = _validated(mu, "mu", min_rows=2)
    variance = mu.var(dim=0, correction=1)
    return VarianceProfile(profile=_descending(variance), **profile_uniformity(variance))
