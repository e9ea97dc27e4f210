"""Linear-Gaussian theory of beta-VAEs and the metrics real reconstruction losses induce.

PAPER.md section 4: the closed-form linear optimum (`linear`), loss metrics (`metric`) and the
mechanistic probe of posterior variances (`probe`).

Names are imported lazily so that the command line (whose `theory` options come from
`theory.config`) starts without importing torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "GaussianRateDistortion": "vaelens.theory.linear",
    "LinearVAEOptimum": "vaelens.theory.linear",
    "MetricSpectrum": "vaelens.theory.linear",
    "gaussian_rate_distortion": "vaelens.theory.linear",
    "linear_vae_optimum": "vaelens.theory.linear",
    "metric_spectrum": "vaelens.theory.linear",
    "rate_distortion_point": "vaelens.theory.linear",
    "scale_for_gaussian_likelihood": "vaelens.theory.linear",
    "water_level": "vaelens.theory.linear",
    "water_level_for_distortion": "vaelens.theory.linear",
    "water_level_for_rate": "vaelens.theory.linear",
    "MetricEigenpairs": "vaelens.theory.metric",
    "additive_metric": "vaelens.theory.metric",
    "convex_metric": "vaelens.theory.metric",
    "dataset_metric": "vaelens.theory.metric",
    "loss_metric": "vaelens.theory.metric",
    "mean_metric_vector_product": "vaelens.theory.metric",
    "metric_top_spectrum": "vaelens.theory.metric",
    "metric_vector_product": "vaelens.theory.metric",
    "predicted_linear_vae": "vaelens.theory.metric",
    "ProbeResult": "vaelens.theory.probe",
    "mechanistic_probe": "vaelens.theory.probe",
    "plot_probe": "vaelens.theory.probe",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vaelens.theory' has no attribute '{name}'")
