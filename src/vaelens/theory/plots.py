"""Figures of `vaelens theory`: trained vs predicted rate, active units and posterior variances."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from vaelens.io import atomic_path

COLOURS = {"pixel": "tab:blue", "additive": "tab:orange", "convex": "tab:green"}


def _by_convention(runs: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for run in runs:
        grouped.setdefault(run["convention"], []).append(run)
    return {name: sorted(items, key=lambda run: run["beta"]) for name, items in grouped.items()}


def plot_source(name: str, source: dict, path: Path) -> None:
    """One row per source: rate vs beta, active units vs beta, sorted posterior variances at the
    middle beta; lines are the closed form, markers the trained linear VAEs."""
    figure, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    grouped = _by_convention(source["runs"])
    middle_beta = sorted(source["betas"])[len(source["betas"]) // 2]
    for convention, runs in grouped.items():
        colour = COLOURS.get(convention)
        betas = [run["beta"] for run in runs]
        for axis, key in ((axes[0], "rate"), (axes[1], "active_units")):
            axis.plot(betas, [run["predicted"][key] for run in runs], "-", color=colour, label=f"{convention} (theory)")
            axis.plot(betas, [run["trained"][key] for run in runs], "o", color=colour, mfc="none",
                      label=f"{convention} (trained)")
        middle = next(run for run in runs if run["beta"] == middle_beta)
        units = np.arange(1, len(middle["predicted"]["posterior_variance"]) + 1)
        axes[2].plot(units, np.sort(middle["predicted"]["posterior_variance"]), "-", color=colour,
                     label=f"{convention} (theory)")
        axes[2].plot(units, np.sort(middle["trained"]["posterior_variance"]), "o", color=colour, mfc="none",
                     label=f"{convention} (trained)")
    axes[0].set(xscale="log", xlabel=r"$\beta$", ylabel="rate (nats)", title=f"{name}: rate")
    axes[1].set(xscale="log", xlabel=r"$\beta$", ylabel="active units", title=f"{name}: active units")
    axes[2].set(yscale="log", xlabel="latent unit (sorted)", ylabel=r"$\sigma_j^2$",
                title=f"{name}: posterior variances, beta={middle_beta:.3g}")
    axes[0].legend(fontsize=7)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)


def plot_theory(report: dict, out_dir: Path) -> list[Path]:
    """theory_<source>.png for every source of a theory.json report; returns the paths."""
    paths = []
    for name, source in report["sources"].items():
        path = Path(out_dir) / f"theory_{name}.png"
        plot_source(name, source, path)
        paths.append(path)
    return paths
