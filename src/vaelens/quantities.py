"""Every quantity the report, the claims, results.csv and the figures read from analysis.json, declared once.

A quantity has a name (what the claims and the report call it), the analysis.json keys it is read from (the
first that holds a finite number), a label for axes and tables, its units, which direction is better, which
claims test it, and whether results.csv has a column for it. The claims (vaelens.report.claims), results.csv
(vaelens.report.collect), the figures (vaelens.report.plots) and every renderer take their lists from here, so
a new latent metric is its function (vaelens.metrics), its entry in vaelens.analysis.latents, and one line
below.

Distortion keys are open-ended (an LPIPS backbone, the run's own training distance, a feature network given as
a file): the known ones are declared here, and `quantity_of` derives the rest from their key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Quantity:
    """One measured quantity as the results layer sees it."""

    name: str
    """What the claims and the report call it (a claims row's `metric`, a results.csv column)."""
    keys: tuple[str, ...]
    """analysis.json keys it is read from, tried in order (the first holding a finite number)."""
    label: str
    """Axis or table label."""
    units: str
    """nats for information; "dimensionless" for ratios and scores; else what the number counts."""
    better: str | None = None
    """"lower" or "higher" where one direction is better (distortions); None for descriptive statistics."""
    claims: tuple[str, ...] = ()
    """Claims (C1-C4) that test it; a claim's first quantity is its primary one."""
    csv: bool = False
    """A column of results.csv."""
    distortion: bool = False
    """A reconstruction distortion: a panel of the rate-distortion figure."""


QUANTITIES: tuple[Quantity, ...] = (
    Quantity("rate", ("rate",), "rate R (nats)", "nats", claims=("C1",), csv=True),
    Quantity("mutual_information", ("mutual_information",), "I(x; z) (nats)", "nats", claims=("C1",), csv=True),
    Quantity("active_units", ("active_units",), "active units", "units", csv=True),
    Quantity("isoscore", ("geometry.isoscore",), "IsoScore of mu (all units)", "dimensionless", csv=True),
    # The active-unit views fall back to all units when a run has fewer than two active units (its analysis
    # then skips the active view).
    Quantity("isoscore_active", ("geometry_active.isoscore", "geometry.isoscore"), "IsoScore of mu (active units)",
             "dimensionless", claims=("C2", "C4"), csv=True),
    Quantity("participation_ratio_active", ("geometry_active.participation_ratio", "geometry.participation_ratio"),
             "participation ratio (active units)", "dimensionless", claims=("C2", "C4"), csv=True),
    Quantity("effective_rank", ("geometry.effective_rank",), "effective rank of Cov(mu)", "dimensionless", csv=True),
    Quantity("variance_entropy", ("posterior_variance.normalized_entropy",), "normalised entropy of E sigma^2",
             "dimensionless", claims=("C3", "C4"), csv=True),
    Quantity("variance_cv", ("posterior_variance.coefficient_of_variation",), "CV of E sigma^2", "dimensionless",
             csv=True),
    Quantity("variance_participation_ratio", ("posterior_variance.participation_ratio",),
             "participation ratio of E sigma^2", "dimensionless", csv=True),
    # For latent diffusion (vaelens.metrics.latent_stats), in the units of the raw latents: named by their keys.
    Quantity("latent_stats.scaling_factor", ("latent_stats.scaling_factor",), "scaling_factor (1 / std of z)",
             "1 / latent units", csv=True),
    Quantity("latent_stats.shift_factor", ("latent_stats.shift_factor",), "shift_factor (mean of z)", "latent units",
             csv=True),
    Quantity("latent_stats.sample_std", ("latent_stats.sample_std",), "std of z", "latent units", csv=True),
    Quantity("distortion.mse", ("distortion.mse",), "MSE per pixel", "MSE per pixel", "lower", distortion=True),
    Quantity("distortion.psnr", ("distortion.psnr",), "PSNR (dB)", "dB", "higher", distortion=True),
    Quantity("distortion.ssim", ("distortion.ssim",), "SSIM", "dimensionless", "higher", distortion=True),
    Quantity("distortion.ms_ssim", ("distortion.ms_ssim",), "MS-SSIM", "dimensionless", "higher", distortion=True),
    Quantity("distortion.feature", ("distortion.feature",), "feature distance", "dimensionless", "lower",
             distortion=True),
    Quantity("distortion.effnet_lite0", ("distortion.effnet_lite0",), "EfficientNet-Lite0 distance (ImageNet)",
             "dimensionless", "lower", distortion=True),
)
"""In results.csv's column order."""

BY_NAME = {quantity.name: quantity for quantity in QUANTITIES}

NOT_DISTORTIONS = ("distortion.mse_sum", "distortion.num_images", "distortion.seed")
"""distortion.* keys that are not a distortion metric: a per-image sum duplicating mse, and what was scored."""


def claim_quantities(claim_id: str) -> tuple[str, ...]:
    """The names of the quantities that test a claim, its primary one first."""
    return tuple(quantity.name for quantity in QUANTITIES if claim_id in quantity.claims)


def csv_quantities() -> tuple[str, ...]:
    return tuple(quantity.name for quantity in QUANTITIES if quantity.csv)


def _distortion_label(key: str) -> str:
    name = key.removeprefix("distortion.")
    prefix, separator, source = name.partition(":")
    if separator and "/" in source:  # a feature network given as a file: its name is enough for a label
        name = f"{prefix}:{Path(source).name}"
    return name


def quantity_of(name: str) -> Quantity:
    """The declared quantity called `name`, or one derived from an analysis.json key: a distortion key not
    declared (LPIPS, the run's own training distance) is a lower-is-better distortion, any other key itself."""
    if name in BY_NAME:
        return BY_NAME[name]
    if name.startswith("distortion."):
        return Quantity(name, (name,), _distortion_label(name), "dimensionless", "lower", distortion=True)
    return Quantity(name, (name,), name, "dimensionless")


def finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def key_holding(analysis: dict, name: str) -> str | None:
    """Which analysis.json key quantity `name` is read from in `analysis`; None when none holds a finite number."""
    return next((key for key in quantity_of(name).keys if finite_number(analysis.get(key))), None)


def value_of(analysis: dict, name: str) -> float | None:
    """Quantity `name` in an analysis.json dict; None when absent or not finite."""
    key = key_holding(analysis, name)
    return None if key is None else float(analysis[key])


def distortion_keys(analyses) -> list[str]:
    """Numeric distortion keys present in at least one of `analyses` (analysis.json dicts), declared ones first,
    in declaration order, then the others sorted."""
    present = {key for analysis in analyses for key, value in analysis.items()
               if key.startswith("distortion.") and isinstance(value, (int, float)) and key not in NOT_DISTORTIONS}
    known = [quantity.name for quantity in QUANTITIES if quantity.distortion and quantity.name in present]
    return known + sorted(present - set(known))
