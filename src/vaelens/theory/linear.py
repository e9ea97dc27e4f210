"""Closed-form optimum of the linear beta-VAE under a quadratic distortion (docs/science.md, "The linear-Gaussian
theory").

Setting: x ~ N(0, Sigma) in R^n, encoder q(z|x) = N(A x, diag s), linear decoder x̂ = W z, loss

    scale * E_x E_q d_M(x, W z) + beta * E_x KL(q(z|x) || N(0, I)),
    d_M(x, x̂) = (x - x̂)^T M (x - x̂).

Substituting y = M^(1/2) x turns d_M into squared error on a source with covariance
M^(1/2) Sigma M^(1/2) = U Lambda U^T: probabilistic PCA with a fixed noise variance, the water
level theta = beta / (2 scale). At the optimum the diagonal posterior is the exact one, so the
bound is tight and the VAE traces the Gaussian rate-distortion curve (reverse water-filling).

Per eigen-direction i with lambda_i > theta (active): decoder gain (lambda_i - theta)^(1/2),
encoder gain (lambda_i - theta)^(1/2) / lambda_i, posterior variance theta / lambda_i,
Var_x(mu_i) = 1 - theta / lambda_i, rate 0.5 log(lambda_i / theta). Its expected distortion is
theta = theta^2 / lambda_i (decoding the mean code) + (theta - theta^2 / lambda_i) (sampling
z ~ q), so the E_q-distortion is sum_i min(lambda_i, theta) exactly as the theory states; the
distortion of the decoded mean code alone is smaller (reported as `distortion_at_mean`).
Inactive directions cost lambda_i in distortion and nothing in rate.

Gaussian-likelihood convention: the loss (1 / (2 sigma^2)) ||x - x̂||^2 + beta KL has
scale = 1 / (2 sigma^2) (`scale_for_gaussian_likelihood`), which gives theta = beta sigma^2.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from vaelens.checks import as_float_tensor

# Relative tolerance for symmetry and "non-negative" eigenvalues of user matrices (round-off).
_MATRIX_TOLERANCE = 1e-8


def _as_tensor(value, name: str) -> torch.Tensor:
    # Copy numpy input: read-only views (np.diag, broadcasts) would make torch warn.
    tensor = as_float_tensor(np.array(value) if isinstance(value, np.ndarray) else value, name)
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} has NaN/Inf entries; pass finite numbers")
    return tensor


def _square_matrix(value, name: str) -> np.ndarray:
    tensor = _as_tensor(value, name)
    if tensor.ndim != 2 or tensor.shape[0] != tensor.shape[1] or tensor.shape[0] < 1:
        raise ValueError(f"{name} must be a square (n, n) matrix, got shape {tuple(tensor.shape)}")
    matrix = tensor.detach().cpu().numpy()
    asymmetry = np.abs(matrix - matrix.T).max()
    if asymmetry > _MATRIX_TOLERANCE * max(1.0, np.abs(matrix).max()):
        raise ValueError(f"{name} must be symmetric, but |{name} - {name}^T| reaches "
                         f"{asymmetry:.3g}; pass 0.5 * ({name} + {name}.T) if that is round-off")
    return 0.5 * (matrix + matrix.T)


def _positive_number(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}") from error
    if not np.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return number


def _positive_integer(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def water_level(beta: float, scale: float = 1.0) -> float:
    """theta = beta / (2 scale) for the loss scale * d_M + beta * KL."""
    return _positive_number(beta, "beta") / (2 * _positive_number(scale, "scale"))


def scale_for_gaussian_likelihood(sigma: float) -> float:
    """`scale` of ||x - x̂||^2 / (2 sigma^2) + beta KL (fixed-sigma Gaussian NLL): 1 / (2 sigma^2).

    With it, water_level(beta, scale) = beta * sigma^2.
    """
    return 1.0 / (2 * _positive_number(sigma, "sigma") ** 2)


@dataclass(frozen=True)
class MetricSpectrum:
    """The source seen through the metric: M^(1/2) Sigma M^(1/2) = U diag(eigenvalues) U^T."""

    eigenvalues: np.ndarray
    """(n,) descending, clipped at zero."""
    eigenvectors: np.ndarray
    """(n, n) columns U."""
    metric_sqrt: np.ndarray
    """M^(1/2)."""
    metric_inverse_sqrt: np.ndarray
    """M^(-1/2)."""


def metric_spectrum(data_cov, metric=None) -> MetricSpectrum:
    """Check Sigma (symmetric PSD) and M (symmetric positive definite); diagonalise M^½ Σ M^½."""
    sigma = _square_matrix(data_cov, "data_cov")
    n = sigma.shape[0]
    sigma_eigenvalues = np.linalg.eigvalsh(sigma)
    if sigma_eigenvalues[0] < -_MATRIX_TOLERANCE * max(1.0, abs(sigma_eigenvalues[-1])):
        raise ValueError("data_cov must be positive semi-definite (a covariance), but its smallest "
                         f"eigenvalue is {sigma_eigenvalues[0]:.3g}")
    if metric is None:
        metric_sqrt = metric_inverse_sqrt = np.eye(n)
    else:
        m = _square_matrix(metric, "metric")
        if m.shape != sigma.shape:
            raise ValueError(f"metric must have the shape of data_cov {sigma.shape}, got {m.shape}")
        m_eigenvalues, m_vectors = np.linalg.eigh(m)
        if m_eigenvalues[0] <= _MATRIX_TOLERANCE * max(1.0, abs(m_eigenvalues[-1])):
            raise ValueError("metric must be positive definite, but its smallest eigenvalue is "
                             f"{m_eigenvalues[0]:.3g}; a feature-only metric is usually "
                             "rank-deficient: add a pixel term (additive_metric)")
        metric_sqrt = (m_vectors * np.sqrt(m_eigenvalues)) @ m_vectors.T
        metric_inverse_sqrt = (m_vectors / np.sqrt(m_eigenvalues)) @ m_vectors.T
    whitened = metric_sqrt @ sigma @ metric_sqrt
    eigenvalues, eigenvectors = np.linalg.eigh(0.5 * (whitened + whitened.T))
    order = np.argsort(eigenvalues)[::-1]
    return MetricSpectrum(np.clip(eigenvalues[order], 0.0, None), eigenvectors[:, order],
                          metric_sqrt, metric_inverse_sqrt)


@dataclass(frozen=True)
class LinearVAEOptimum:
    """The linear beta-VAE's global optimum; per-unit arrays follow the eigen-directions."""

    beta: float
    """KL weight."""
    scale: float
    """Weight c of the distortion d_M."""
    water_level: float
    """theta = beta / (2 scale)."""
    eigenvalues: np.ndarray
    """(n,) eigenvalues of M^(1/2) Sigma M^(1/2), descending."""
    active: np.ndarray
    """(latent_dim,) bool: lambda_i > theta."""
    posterior_variance: np.ndarray
    """(latent_dim,) sigma_i^2 = theta / lambda_i if active, else 1."""
    mean_variance: np.ndarray
    """(latent_dim,) Var_x(mu_i) = 1 - theta / lambda_i if active, else 0."""
    rate_per_unit: np.ndarray
    """(latent_dim,) E_x KL_i = 0.5 log(lambda_i / theta) if active, else 0 (nats)."""
    rate: float
    """Total rate R (nats); equals I(x; z) here since q(z) = N(0, I)."""
    distortion: float
    """E_x E_q d_M(x, W z) = sum_i min(lambda_i, theta); directions past latent_dim add lambda_i."""
    distortion_at_mean: float
    """E_x d_M(x, W mu(x)): theta^2 / lambda_i per active direction, lambda_i otherwise."""
    objective_value: float
    """scale * distortion + beta * rate, the minimal expected loss."""
    decoder: np.ndarray
    """(n, latent_dim) W = M^(-1/2) U_k (Lambda_k - theta I)_+^(1/2); inactive columns are 0."""
    encoder: np.ndarray
    """(latent_dim, n) mean map: mu(x) = Lambda_k^-1 (Lambda_k - theta I)_+^½ U_k^T M^½ x."""

    @property
    def num_active(self) -> int:
        return int(self.active.sum())

    def to_dict(self) -> dict:
        """JSON-friendly: arrays become lists, numpy scalars become floats."""
        summary = {}
        for field in fields(self):
            value = getattr(self, field.name)
            summary[field.name] = value.tolist() if isinstance(value, np.ndarray) else float(value)
        summary["num_active"] = self.num_active
        return summary


def linear_vae_optimum(data_cov, metric=None, beta: float = 1.0, scale: float = 1.0,
                       latent_dim: int | None = None) -> LinearVAEOptimum:
    """Closed-form optimum of scale * d_M(x, x̂) + beta * KL for the linear-Gaussian VAE.

    data_cov: (n, n) covariance Sigma of the zero-mean Gaussian data (numpy or torch).
    metric: (n, n) positive-definite M of the distortion; None means squared error (M = I).
    latent_dim: number of latent units (default n); with fewer than n only the top latent_dim
    eigen-directions can be encoded and the rest count fully as distortion.
    The solution is unique up to sign (and rotation among equal eigenvalues).
    """
    theta = water_level(beta, scale)
    spectrum = metric_spectrum(data_cov, metric)
    n = spectrum.eigenvalues.shape[0]
    latent_dim = n if latent_dim is None else _positive_integer(latent_dim, "latent_dim")
    used = min(latent_dim, n)
    lam = np.zeros(latent_dim)
    lam[:used] = spectrum.eigenvalues[:used]
    active = lam > theta
    safe_lam = np.where(active, lam, 1.0)
    excess = np.where(active, lam - theta, 0.0)
    posterior_variance = np.where(active, theta / safe_lam, 1.0)
    rate_per_unit = np.where(active, 0.5 * np.log(safe_lam / theta), 0.0)
    unused = spectrum.eigenvalues[used:].sum()
    distortion = float(np.minimum(lam[:used], theta).sum() + unused)
    distortion_at_mean = float(np.where(active, theta**2 / safe_lam, lam).sum() + unused)
    basis = np.zeros((n, latent_dim))
    basis[:, :used] = spectrum.eigenvectors[:, :used]
    decoder = spectrum.metric_inverse_sqrt @ basis * np.sqrt(excess)
    encoder = (np.sqrt(excess) / safe_lam)[:, None] * (basis.T @ spectrum.metric_sqrt)
    rate = float(rate_per_unit.sum())
    return LinearVAEOptimum(
        beta=float(beta), scale=float(scale), water_level=theta,
        eigenvalues=spectrum.eigenvalues, active=active, posterior_variance=posterior_variance,
        mean_variance=1.0 - posterior_variance, rate_per_unit=rate_per_unit, rate=rate,
        distortion=distortion, distortion_at_mean=distortion_at_mean,
        objective_value=float(scale) * distortion + float(beta) * rate,
        decoder=decoder, encoder=encoder,
    )


def _eigenvalue_vector(eigenvalues) -> np.ndarray:
    values = _as_tensor(eigenvalues, "eigenvalues")
    if values.ndim != 1 or values.numel() < 1:
        raise ValueError("eigenvalues must be a non-empty 1-D array, got shape "
                         f"{tuple(values.shape)}")
    values = values.cpu().numpy()
    if values.min() < 0:
        raise ValueError("eigenvalues must be non-negative (a covariance spectrum), got min "
                         f"{values.min():.3g}")
    return np.sort(values)[::-1]


def rate_distortion_point(eigenvalues, theta: float) -> tuple[float, float]:
    """(D, R) of reverse water-filling at water level theta.

    D = sum_i min(lambda_i, theta), R = sum_i 0.5 log+(lambda_i / theta), in nats.
    """
    lam = _eigenvalue_vector(eigenvalues)
    theta = _positive_number(theta, "theta")
    active = lam > theta
    rate = 0.5 * np.log(lam[active] / theta).sum()
    return float(np.minimum(lam, theta).sum()), float(rate)


@dataclass(frozen=True)
class GaussianRateDistortion:
    """Points (D(theta), R(theta)) of the Gaussian source's rate-distortion curve under d_M."""

    water_levels: np.ndarray
    """(P,) theta, ascending."""
    distortion: np.ndarray
    """(P,) D(theta), ascending."""
    rate: np.ndarray
    """(P,) R(theta) in nats, descending."""
    eigenvalues: np.ndarray
    """(n,) spectrum of M^(1/2) Sigma M^(1/2), descending."""

    def to_dict(self) -> dict:
        return {field.name: getattr(self, field.name).tolist() for field in fields(self)}


def gaussian_rate_distortion(data_cov, metric=None, num_points: int = 200,
                             water_levels=None) -> GaussianRateDistortion:
    """R(D) of x ~ N(0, Sigma) under d_M by reverse water-filling.

    The linear VAE with beta / (2 scale) = theta sits on this curve at theta. By default theta
    runs log-spaced from a tenth of the smallest positive eigenvalue to the largest one (where
    R = 0 and D = tr(M Sigma)); pass `water_levels` to choose them.
    """
    lam = metric_spectrum(data_cov, metric).eigenvalues
    if water_levels is None:
        num_points = _positive_integer(num_points, "num_points")
        if num_points < 2:
            raise ValueError(f"num_points must be at least 2, got {num_points}")
        if lam[0] <= 0:
            raise ValueError("data_cov is zero: its rate-distortion curve is the point (0, 0)")
        thetas = np.geomspace(lam[lam > 0].min() / 10, lam[0], num_points)
    else:
        thetas = np.sort(_as_tensor(water_levels, "water_levels").reshape(-1).cpu().numpy())
        if thetas.size == 0 or thetas[0] <= 0:
            raise ValueError("water_levels must be a non-empty array of positive numbers")
    points = np.array([rate_distortion_point(lam, theta) for theta in thetas])
    return GaussianRateDistortion(thetas, points[:, 0], points[:, 1], lam)


def water_level_for_rate(eigenvalues, rate: float) -> float:
    """The theta at which reverse water-filling spends `rate` nats (lambda_max at rate 0)."""
    lam = _eigenvalue_vector(eigenvalues)
    lam = lam[lam > 0]
    if lam.size == 0:
        raise ValueError("eigenvalues are all zero: no positive rate is reachable")
    rate = float(rate)
    if not np.isfinite(rate) or rate < 0:
        raise ValueError(f"rate must be a non-negative finite number of nats, got {rate}")
    if rate == 0:
        return float(lam[0])
    cumulative_log = np.cumsum(np.log(lam))
    for k in range(1, lam.size + 1):
        # With the top k directions active: sum_{i<=k} 0.5 log(lambda_i / theta) = rate.
        theta = float(np.exp((cumulative_log[k - 1] - 2 * rate) / k))
        if k == lam.size or theta >= lam[k]:
            return theta
    raise AssertionError("unreachable: the last active set always solves the equation")


def water_level_for_distortion(eigenvalues, distortion: float) -> float:
    """The theta at which reverse water-filling reaches distortion D, 0 < D <= sum lambda."""
    lam = _eigenvalue_vector(eigenvalues)[::-1]
    total = float(lam.sum())
    distortion = float(distortion)
    if not np.isfinite(distortion) or distortion <= 0 or distortion > total * (1 + 1e-12):
        raise ValueError(f"distortion must lie in (0, {total:.6g}] (zero needs infinite rate; the "
                         f"upper end is tr(M Sigma)), got {distortion}")
    below = np.concatenate([[0.0], np.cumsum(lam)])
    n = lam.size
    for m in range(n):
        # The m smallest eigenvalues sit under the water; the other n - m each cost theta.
        theta = (distortion - below[m]) / (n - m)
        if theta <= lam[m]:
            return float(theta)
    return float(lam[-1])
