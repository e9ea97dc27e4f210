"""Figures of one analysis: variance profiles, covariance spectrum, per-unit KL, probe. PNG, written atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from vaelens.io import atomic_path  # noqa: E402


def _save(figure, path: Path) -> None:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)


def plot_variance_profiles(posterior_variance, mean_variance, path: Path, title: str = "") -> None:
    """Sorted E_x sigma_j^2 and Var_x(mu_j) per unit (linear theory: they sum to 1 on active units)."""
    figure, axis = plt.subplots(figsize=(5, 3.2))
    units = np.arange(1, len(posterior_variance) + 1)
    axis.plot(units, np.sort(posterior_variance)[::-1], "o-", label=r"$E_x\,\sigma_j^2$ (sorted)")
    axis.plot(units, np.sort(mean_variance)[::-1], "s--", label=r"$Var_x(\mu_j)$ (sorted)")
    axis.set_xlabel("latent unit (sorted)")
    axis.set_ylabel("variance")
    axis.set_yscale("log")
    axis.legend(frameon=False)
    axis.set_title(title or "posterior-variance profile")
    _save(figure, path)


def plot_covariance_spectrum(eigenvalues, path: Path, title: str = "") -> None:
    """Eigenvalues of the covariance of the posterior means, descending, log scale."""
    figure, axis = plt.subplots(figsize=(5, 3.2))
    values = np.clip(np.asarray(eigenvalues, dtype=float), 1e-12, None)
    axis.semilogy(np.arange(1, len(values) + 1), values, "o-")
    axis.set_xlabel("component")
    axis.set_ylabel(r"eigenvalue of Cov$(\mu)$")
    axis.set_title(title or "covariance spectrum of posterior means")
    _save(figure, path)


def plot_kl_per_unit(kl_per_unit, path: Path, threshold_units=None, title: str = "") -> None:
    """Per-unit rate E_x KL_j in nats; active units (by Var(mu) > 0.01) are drawn darker."""
    values = np.asarray(kl_per_unit, dtype=float)
    figure, axis = plt.subplots(figsize=(min(12, max(4, 0.25 * len(values))), 3.2))
    colors = ["tab:blue" if threshold_units is None or threshold_units[i] else "tab:gray"
              for i in range(len(values))]
    axis.bar(np.arange(len(values)), values, color=colors)
    axis.set_xlabel("latent unit")
    axis.set_ylabel("KL (nats)")
    axis.set_title(title or "rate per unit")
    _save(figure, path)


def plot_probe_profiles(curvature, predicted, actual, path: Path, title: str = "") -> None:
    """The mechanistic probe per unit, ordered by curvature: predicted vs encoder posterior variance (left)
    and the curvature E_x (J^T M J)_jj that sets the prediction (right)."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    units = np.arange(1, len(curvature) + 1)
    left.plot(units, predicted, "o-", label=r"predicted $E_x\,\sigma_j^2$")
    left.plot(units, actual, "s--", label=r"encoder $E_x\,\sigma_j^2$")
    left.set_yscale("log")
    left.set_xlabel("latent unit (by curvature, descending)")
    left.set_ylabel("posterior variance")
    left.legend(frameon=False)
    right.semilogy(units, np.clip(np.asarray(curvature, dtype=float), 1e-12, None), "o-", color="tab:green")
    right.set_xlabel("latent unit (by curvature, descending)")
    right.set_ylabel(r"$E_x\,(J^T M J)_{jj}$")
    figure.suptitle(title or "mechanistic probe (run's own loss metric)")
    figure.tight_layout()
    _save(figure, path)
