"""The comparison's figures, as PNG bytes: every model's sorted per-unit profiles overlaid on one log axis.

Models with latents of different sizes (a 10-unit run beside an AutoencoderKL's 4 x 8 x 8 elements) share the
axis by rank / d: the j-th largest of d values sits at j / d, so each profile spans (0, 1]. Models of one size
keep the plain unit index."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from vaelens.report.plots import figure_png  # noqa: E402

FLOOR = 1e-12
"""Values are drawn at least this large on the log axes (an exact zero has no logarithm)."""


def _sorted_profiles(analyses: dict[str, dict], key: str) -> dict[str, np.ndarray]:
    """label -> the per-unit vector `key` of its analysis, sorted descending; models without it left out."""
    profiles = {}
    for label, analysis in analyses.items():
        values = analysis.get(key)
        if isinstance(values, list) and values:
            profiles[label] = np.sort(np.asarray(values, dtype=float))[::-1]
    return profiles


def _axis_positions(profiles: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str]:
    """x of each profile's points and the axis label: the unit index, or rank / d where the sizes differ."""
    if len({len(profile) for profile in profiles.values()}) <= 1:
        return {label: np.arange(1, len(p) + 1) for label, p in profiles.items()}, "unit (sorted, largest first)"
    return ({label: np.arange(1, len(p) + 1) / len(p) for label, p in profiles.items()},
            "rank / d (sorted, largest first; d = the model's units)")


def _marker(profile: np.ndarray) -> dict:
    """Markers on short profiles only: on thousands of elements they would hide the line."""
    return {"marker": "o", "markersize": 3} if len(profile) <= 64 else {}


def overlaid_profiles_figure(analyses: dict[str, dict], panels: list[tuple[str, str]]) -> bytes | None:
    """One panel per (analysis key, y label): each model's sorted profile of that key on a log axis, a line per
    model. None when no model has any of the keys."""
    drawn = [(key, ylabel, profiles) for key, ylabel in panels if (profiles := _sorted_profiles(analyses, key))]
    if not drawn:
        return None
    figure, axes = plt.subplots(1, len(drawn), figsize=(5.2 * len(drawn), 3.6), squeeze=False)
    for axis, (key, ylabel, profiles) in zip(axes[0], drawn):
        positions, xlabel = _axis_positions(profiles)
        for label, profile in profiles.items():
            axis.semilogy(positions[label], np.clip(profile, FLOOR, None), label=f"{label} (d={len(profile)})",
                          **_marker(profile))
        axis.set_xlabel(xlabel)
        axis.set_ylabel(ylabel)
        axis.legend(frameon=False, fontsize=7)
    return figure_png(figure)


def probe_profiles_figure(analyses: dict[str, dict]) -> bytes | None:
    """The probe's predicted (dotted) against the encoder's actual (solid) posterior variance per unit, units in
    each model's order of decreasing curvature, one colour per model; None when no model was probed."""
    probed = {label: analysis for label, analysis in analyses.items()
              if isinstance(analysis.get("probe.actual_profile"), list) and analysis["probe.actual_profile"]}
    if not probed:
        return None
    figure, axis = plt.subplots(figsize=(5.6, 3.6))
    for index, (label, analysis) in enumerate(probed.items()):
        colour = f"C{index % 10}"
        actual = np.asarray(analysis["probe.actual_profile"], dtype=float)
        predicted = np.asarray(analysis["probe.predicted_profile"], dtype=float)
        units = np.arange(1, len(actual) + 1)
        axis.semilogy(units, np.clip(actual, FLOOR, None), color=colour, marker="o", markersize=3,
                      label=f"{label}: actual")
        axis.semilogy(units, np.clip(predicted, FLOOR, None), color=colour, linestyle=":", marker="x", markersize=4,
                      label=f"{label}: predicted")
    axis.set_xlabel("unit (by decreasing curvature)")
    axis.set_ylabel("E_x sigma_j^2")
    axis.legend(frameon=False, fontsize=7)
    return figure_png(figure)
