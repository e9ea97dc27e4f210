"""Linear-Gaussian theory of beta-VAEs and the metrics real reconstruction losses induce.

docs/science.md ("The linear-Gaussian theory"): the closed-form linear optimum (`linear`), loss metrics (`metric`)
and the mechanistic probe of posterior variances (`probe`).

Names are imported lazily so that the command line (whose `theory` options come from
`theory.config`) starts without importing torch.
"""

from __future__ import annotations

from vaelens.lazy import exported_names, lazy_getattr

_MODULES = {
    "vaelens.theory.linear": (
        "GaussianRateDistortion", "LinearVAEOptimum", "MetricSpectrum", "gaussian_rate_distortion",
        "linear_vae_optimum", "metric_spectrum", "rate_distortion_point", "scale_for_gaussian_likelihood",
        "water_level", "water_level_for_distortion", "water_level_for_rate",
    ),
    "vaelens.theory.metric": (
        "MetricEigenpairs", "additive_metric", "convex_metric", "dataset_metric", "loss_metric",
        "mean_metric_vector_product", "metric_top_spectrum", "metric_vector_product", "predicted_linear_vae",
    ),
    "vaelens.theory.probe": ("ProbeResult", "mechanistic_probe", "plot_probe"),
}

__all__ = exported_names(_MODULES)


__getattr__ = lazy_getattr(__name__, _MODULES)
