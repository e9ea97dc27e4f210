"""Metrics of latents and reconstructions: pure functions, tensors in, numbers out (nats for information).

    from vaelens.metrics import isoscore, mutual_information
    mutual_information(mu, logvar), isoscore(mu)

Names are imported lazily from their modules (information, geometry, variance, spatial, distortion,
disentangle), so `import vaelens.metrics` stays light and only the module a name lives in is loaded:
the distortions pull in torchmetrics and lpips, disentanglement scikit-learn.
"""

from __future__ import annotations

from vaelens.lazy import exported_names, lazy_getattr

_MODULES = {
    "vaelens.metrics.information": (
        "AggregatePosteriorDecomposition", "active_unit_mask", "active_units", "aggregate_posterior_decomposition",
        "dimension_wise_kl", "gaussian_mi_upper_bound", "marginal_kl", "mutual_information", "rate",
        "total_correlation",
    ),
    "vaelens.metrics.geometry": (
        "condition_number", "covariance_spectrum", "effective_rank", "geometry_summary", "isoscore",
        "participation_ratio", "partition_isotropy", "sample_bounds",
    ),
    "vaelens.metrics.variance": (
        "VarianceProfile", "mean_variance_profile", "posterior_variance_profile", "profile_uniformity",
    ),
    "vaelens.metrics.spatial": ("flatten_spatial", "flatten_spatial_posterior", "subsample_rows"),
    "vaelens.metrics.distortion": (
        "distortion_report", "lpips_distance", "ms_ssim", "ms_ssim_min_side", "mse", "psnr", "ssim",
    ),
    "vaelens.metrics.disentangle": (
        "DisentanglementResult", "dci", "dci_from_importance", "factorvae_score", "histogram_discretize",
        "mutual_information_gap", "sap_score",
    ),
}
__all__ = exported_names(_MODULES)


__getattr__ = lazy_getattr(__name__, _MODULES)
