"""Linear-Gaussian theory of beta-VAEs and the metrics real reconstruction losses induce.

PAPER.md section 4: the closed-form linear optimum (`linear`), loss metrics (`metric`) and the
mechanistic probe of posterior variances (`probe`).
"""

from __future__ import annotations

from vaelens.theory.linear import (
    GaussianRateDistortion,
    LinearVAEOptimum,
    MetricSpectrum,
    gaussian_rate_distortion,
    linear_vae_optimum,
    metric_spectrum,
    rate_distortion_point,
    scale_for_gaussian_likelihood,
    water_level,
    water_level_for_distortion,
    water_level_for_rate,
)
from vaelens.theory.metric import (
    MetricEigenpairs,
    additive_metric,
    convex_metric,
    dataset_metric,
    loss_metric,
    mean_metric_vector_product,
    metric_top_spectrum,
    metric_vector_product,
    predicted_linear_vae,
)
from vaelens.theory.probe import ProbeResult, mechanistic_probe, plot_probe

__all__ = [
    "GaussianRateDistortion",
    "LinearVAEOptimum",
    "MetricEigenpairs",
    "MetricSpectrum",
    "ProbeResult",
    "additive_metric",
    "convex_metric",
    "dataset_metric",
    "gaussian_rate_distortion",
    "linear_vae_optimum",
    "loss_metric",
    "mean_metric_vector_product",
    "mechanistic_probe",
    "metric_spectrum",
    "metric_top_spectrum",
    "metric_vector_product",
    "plot_probe",
    "predicted_linear_vae",
    "rate_distortion_point",
    "scale_for_gaussian_likelihood",
    "water_level",
    "water_level_for_distortion",
    "water_level_for_rate",
]
