"""Geometry of a point cloud (usually posterior means mu): covariance spectrum and isotropy scores.

`points` is an (N, n) tensor: N samples of an n-dimensional representation (CPU or GPU; float64
inside). All statistics except `partition_isotropy` depend only on the eigenvalues of the
sample covariance (centred, 1/(N-1)), so they are invariant under rotations and translations of
the cloud, and all except the spectrum itself under a global rescaling.

To measure active units only, pass the selected columns, e.g.
`isoscore(mu[:, active_unit_mask(mu)])` (see `vaelens.metrics.information`); `geometry_summary`
does the whole set from one eigen-decomposition.
"""

from __future__ import annotations

import math

import torch

from vaelens.checks import as_float_tensor, check_finite, check_matrix

__all__ = [
    "covariance_spectrum",
    "participation_ratio",
    "isoscore",
    "effective_rank",
    "condition_number",
    "partition_isotropy",
    "geometry_summary",
    "sample_bounds",
]


def _validated_points(points, min_columns: int = 1) -> torch.Tensor:
    points = as_float_tensor(points, "points")
    check_matrix(points, "points", min_rows=2)
    check_finite(points, "points")
    if points.shape[1] < min_columns:
        raise ValueError(
            f"points needs at least {min_columns} columns (dimensions) for this statistic, "
            f"got shape {tuple(points.shape)}"
        )
    return points


def _spectrum(points: torch.Tensor) -> torch.Tensor:
    """Descending eigenvalues of the sample covariance, tiny negative round-off clipped to 0."""
    centred = points - points.mean(dim=0)
    covariance = centred.T @ centred / (points.shape[0] - 1)
    return torch.linalg.eigvalsh(covariance).flip(0).clamp_min(0.0)


def _require_variance(eigenvalues: torch.Tensor) -> None:
    if float(eigenvalues.sum()) <= 0.0:
        raise ValueError("points have zero variance (all rows identical): isotropy is undefined")


def _participation_ratio(eigenvalues: torch.Tensor) -> float:
    _require_variance(eigenvalues)
    return float(eigenvalues.sum().square() / eigenvalues.square().sum())


def _isoscore(eigenvalues: torch.Tensor) -> float:
    # Rudman et al.'s steps (normalise the PCA variance vector to norm sqrt(n), isotropy defect
    # to the all-ones vector, fraction of dimensions used) simplify algebraically to the number of
    # dimensions used equalling PR, hence IsoScore = (PR - 1) / (n - 1).
    dimensions = eigenvalues.numel()
    return (_participation_ratio(eigenvalues) - 1.0) / (dimensions - 1)


def _effective_rank(eigenvalues: torch.Tensor) -> float:
    _require_variance(eigenvalues)
    weights = eigenvalues / eigenvalues.sum()
    positive = weights[weights > 0]
    return math.exp(float(-(positive * positive.log()).sum()))


def _condition_number(eigenvalues: torch.Tensor) -> float:
    _require_variance(eigenvalues)
    largest, smallest = float(eigenvalues[0]), float(eigenvalues[-1])
    # Below this the smallest eigenvalue is indistinguishable from round-off of a singular matrix.
    if smallest <= largest * eigenvalues.numel() * torch.finfo(torch.float64).eps:
        return math.inf
    return largest / smallest


def covariance_spectrum(points) -> list[float]:
    """Eigenvalues of the sample covariance of `points` (N >= 2 rows), descending."""
    return _spectrum(_validated_points(points)).cpu().tolist()


def participation_ratio(points) -> float:
    """PR = (sum lambda)^2 / sum lambda^2 of the covariance eigenvalues: 1 (a line) to n (isotropic)."""
    return _participation_ratio(_spectrum(_validated_points(points)))


def isoscore(points) -> float:
    """IsoScore (Rudman et al. 2022) = (PR - 1) / (n - 1): 0 for a line, 1 for an isotropic cloud.

    n is the number of columns; needs n >= 2.
    """
    return _isoscore(_spectrum(_validated_points(points, min_columns=2)))


def effective_rank(points) -> float:
    """Effective rank (Roy & Vetterli 2007): exp of the entropy of lambda / sum lambda; 1 to n."""
    return _effective_rank(_spectrum(_validated_points(points)))


def condition_number(points) -> float:
    """lambda_max / lambda_min of the covariance; math.inf when the covariance is singular (e.g. N <= n)."""
    return _condition_number(_spectrum(_validated_points(points)))


def partition_isotropy(points, *, center: bool = False) -> float:
    """Partition-function isotropy (Mu & Viswanath 2018): min_c Z(c) / max_c Z(c), Z(c) = sum_i exp(c^T x_i).

    c ranges over the unit eigenvectors of X^T X and, because an eigenvector's sign is arbitrary,
    their negatives too, which makes the score well defined and rotation invariant. Near 1 for a
    cloud that is isotropic around the origin; 0 < score <= 1.

    centring: by default the points are used as given, as in the original definition, so a common
    offset of the cloud lowers the score (Mu & Viswanath's point about a dominating mean
    direction). `center=True` subtracts the mean first and measures the shape alone. Unlike the
    covariance-based scores this one depends on the scale of the points.
    """
    points = _validated_points(points)
    if center:
        points = points - points.mean(dim=0)
    _, eigenvectors = torch.linalg.eigh(points.T @ points)
    directions = torch.cat([eigenvectors, -eigenvectors], dim=1)
    log_partition = torch.logsumexp(points @ directions, dim=0)
    return math.exp(float(log_partition.min() - log_partition.max()))


def geometry_summary(points, *, center_partition: bool = False) -> dict:
    """All geometry statistics of `points` as a flat JSON-ready dict (one eigen-decomposition).

    Keys: covariance_spectrum (list, descending), participation_ratio, isoscore (None when n < 2),
    effective_rank, condition_number (None when the covariance is singular, since strict JSON has
    no infinity), partition_isotropy, num_points, num_dimensions, bounded_by_sample, and when that
    is true participation_ratio_bound and isoscore_bound (`sample_bounds`).
    """
    points = _validated_points(points)
    eigenvalues = _spectrum(points)
    condition = _condition_number(eigenvalues)
    return {
        "covariance_spectrum": eigenvalues.cpu().tolist(),
        "participation_ratio": _participation_ratio(eigenvalues),
        "isoscore": _isoscore(eigenvalues) if eigenvalues.numel() >= 2 else None,
        "effective_rank": _effective_rank(eigenvalues),
        "condition_number": condition if math.isfinite(condition) else None,
        "partition_isotropy": partition_isotropy(points, center=center_partition),
        "num_points": points.shape[0],
        "num_dimensions": points.shape[1],
        **sample_bounds(*points.shape),
    }


def sample_bounds(num_points: int, num_dimensions: int) -> dict:
    """What the sample size alone caps: N centred points span at most N - 1 dimensions, so with
    N <= n the covariance has at most N - 1 non-zero eigenvalues, PR <= N - 1 (as is the effective
    rank) and IsoScore = (PR - 1) / (n - 1) <= (N - 2) / (n - 1), however isotropic the population.

    Returns bounded_by_sample, and when it is true the two bounds (then n >= N >= 2).
    """
    if num_points > num_dimensions:
        return {"bounded_by_sample": False}
    rank = num_points - 1
    return {"bounded_by_sample": True, "participation_ratio_bound": float(rank),
            "isoscore_bound": (rank - 1) / (num_dimensions - 1)}
