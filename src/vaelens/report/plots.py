"""Figures of a sweep, as PNG bytes: rate-distortion, information and isotropy vs beta, variance
profiles and covariance spectra, curves at matched rate, and the mechanistic probe's profiles.
Colour = loss family, line style = weighting convention; points are means over seeds and bars span
+-1 sample standard deviation over seeds (ddof = 1, as in every table), except in the matched-rate figures,
which draw every seed. Axis labels come from the quantity registry (vaelens.quantities)."""

from __future__ import annotations

import io
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import ticker  # noqa: E402
from PIL import Image  # noqa: E402

from vaelens.losses.families import FAMILIES, family_order  # noqa: E402
from vaelens.quantities import quantity_of  # noqa: E402
from vaelens.report.claim_rows import Overlap  # noqa: E402
from vaelens.report.mechanism import probe_runs  # noqa: E402
from vaelens.report.statistics import mean_and_sd  # noqa: E402
from vaelens.training.convergence import INTERVAL_KEY  # noqa: E402
from vaelens.training.sweepdir import RunRecord  # noqa: E402

FAMILY_COLORS = dict(zip(FAMILIES, ("tab:gray", "tab:blue", "tab:red", "tab:purple", "tab:green")))
CONVENTION_STYLES = {"additive": "-", "convex": "--", "ldm": ":", "additive+learned-sigma": "-."}


def figure_png(figure) -> bytes:
    """Render a figure to compact PNG bytes and close it.

    Line plots use a few dozen colours plus their anti-aliasing shades, so an adaptive 256-colour
    palette (no dithering) keeps them visually exact (~60 dB PSNR) at a third of the RGBA PNG's size."""
    rendered = io.BytesIO()
    figure.tight_layout()  # long tick labels (log axes) must not run into the next panel's axis label
    figure.savefig(rendered, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    with Image.open(rendered) as image:
        palette = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                                dither=Image.Dither.NONE)
    compact = io.BytesIO()
    palette.save(compact, format="PNG", optimize=True)
    return compact.getvalue()


def _line_style(family: str, convention: str) -> dict:
    return {"color": FAMILY_COLORS.get(family, "black"), "linestyle": CONVENTION_STYLES.get(convention, "-.")}


def datasets(records: list[RunRecord]) -> list[str]:
    return sorted({record.dataset for record in records if record.usable})


def _curves(records: list[RunRecord], dataset: str) -> dict[tuple[str, str], dict[float, list[RunRecord]]]:
    """(family, convention) -> beta -> the usable runs (one per seed) of `dataset`."""
    curves: dict = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.usable and record.dataset == dataset and record.beta is not None:
            curves[(record.loss_family, record.convention)][record.beta].append(record)
    return dict(sorted(curves.items(), key=lambda item: (family_order(item[0][0]), item[0][0], item[0][1])))


def _mean_std(runs: list[RunRecord], metric: str) -> tuple[float, float] | None:
    values = [value for value in (run.metric(metric) for run in runs) if value is not None]
    if not values:
        return None
    mean, sd = mean_and_sd(values)
    return mean, sd or 0.0


def _legend(axis) -> None:
    if axis.get_legend_handles_labels()[0]:
        axis.legend(frameon=False, fontsize=7)


def rate_distortion_figure(records: list[RunRecord], dataset: str, distortion_keys: list[str]) -> bytes:
    """Rate against each distortion metric (one panel each), a curve per loss family and convention."""
    curves = _curves(records, dataset)
    # a metric another data set's runs have (its own training feature network, say) gets no empty panel here
    present = [key for key in distortion_keys if any(run.metric(key) is not None for by_beta in curves.values()
                                                     for runs in by_beta.values() for run in runs)]
    distortion_keys = present or distortion_keys
    figure, axes = plt.subplots(1, len(distortion_keys), figsize=(4.2 * len(distortion_keys), 3.4), squeeze=False)
    for axis, key in zip(axes[0], distortion_keys):
        label, better = quantity_of(key).label, quantity_of(key).better
        for (family, convention), by_beta in curves.items():
            points = [(_mean_std(runs, key), _mean_std(runs, "rate")) for _, runs in sorted(by_beta.items())]
            points = [(d, r) for d, r in points if d is not None and r is not None]
            if points:
                axis.errorbar([d[0] for d, _ in points], [r[0] for _, r in points],
                              xerr=[d[1] for d, _ in points], yerr=[r[1] for _, r in points], marker="o",
                              markersize=3, capsize=2, label=f"{family} ({convention})",
                              **_line_style(family, convention))
        axis.set_xlabel(f"{label} ({better} is better)")
        axis.set_ylabel("rate R (nats)")
        axis.set_title(f"{dataset}: rate-distortion")
        _legend(axis)
    return figure_png(figure)


def metrics_vs_beta_figure(records: list[RunRecord], dataset: str, metrics: list[str], title: str) -> bytes:
    """One panel per metric against beta (log scale), a curve per loss family and convention."""
    curves = _curves(records, dataset)
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for (family, convention), by_beta in curves.items():
            points = [(beta, _mean_std(runs, metric)) for beta, runs in sorted(by_beta.items())]
            points = [(beta, stat) for beta, stat in points if stat is not None]
            if points:
                axis.errorbar([beta for beta, _ in points], [s[0] for _, s in points], yerr=[s[1] for _, s in points],
                              marker="o", markersize=3, capsize=2, label=f"{family} ({convention})",
                              **_line_style(family, convention))
        if any(beta > 0 for by_beta in curves.values() for beta in by_beta):
            axis.set_xscale("log")
        axis.set_xlabel("beta")
        axis.set_ylabel(quantity_of(metric).label)
        axis.set_title(f"{dataset}: {title}")
        _legend(axis)
    return figure_png(figure)


def _mean_profile(runs: list[RunRecord], key: str, normalise: bool) -> np.ndarray | None:
    """Mean over seeds of a sorted per-unit vector from analysis.json (optionally normalised to sum 1)."""
    profiles = []
    for run in runs:
        values = run.analysis.get(key)
        if isinstance(values, list) and values:
            profile = np.sort(np.asarray(values, dtype=float))[::-1]
            if normalise and profile.sum() > 0:
                profile = profile / profile.sum()
            profiles.append(profile)
    if not profiles or len({len(p) for p in profiles}) != 1:
        return None
    return np.mean(profiles, axis=0)


def profiles_figure(records: list[RunRecord], dataset: str, key: str, ylabel: str, title: str,
                    normalise: bool) -> bytes:
    """Sorted per-unit vectors (variance profile or covariance spectrum) overlaid per loss, a panel per beta."""
    curves = _curves(records, dataset)
    betas = sorted({beta for by_beta in curves.values() for beta in by_beta})
    figure, axes = plt.subplots(1, max(1, len(betas)), figsize=(3.8 * max(1, len(betas)), 3.3), squeeze=False)
    for axis, beta in zip(axes[0], betas):
        for (family, convention), by_beta in curves.items():
            profile = _mean_profile(by_beta.get(beta, []), key, normalise)
            if profile is not None:
                axis.semilogy(np.arange(1, len(profile) + 1), np.clip(profile, 1e-12, None), marker="o",
                              markersize=3, label=f"{family} ({convention})", **_line_style(family, convention))
        axis.set_xlabel("unit / component (sorted)")
        axis.set_ylabel(ylabel)
        axis.set_title(f"{dataset}, beta={beta:g}: {title}")
        _legend(axis)
    return figure_png(figure)


def matched_curves_figure(title: str, family: str, by_seed: dict,
                          panels: list[tuple[str, str, Overlap | None]]) -> bytes:
    """One panel per (x metric, y metric, overlap): each seed's curve over the beta grid, pointwise (grey) and
    the neural `family`, x on a log axis (the curves are interpolated in log x); the range both families
    cover in every seed, over which the matched effect is averaged, is shaded."""
    figure, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.0), squeeze=False)
    figure.suptitle(title, fontsize=10)
    for axis, (x_metric, y_metric, overlap) in zip(axes[0], panels):
        for seed, (neural, baseline) in sorted(by_seed.items()):
            for name, runs in (("pointwise", baseline), (family, neural)):
                points = sorted((run.metric(x_metric), run.metric(y_metric)) for run in runs)
                points = [(x, y) for x, y in points if x is not None and y is not None and x > 0]
                if points:
                    axis.plot(*zip(*points), marker="o", markersize=3, linewidth=1, alpha=0.8,
                              color=FAMILY_COLORS.get(name, "black"), label=name if seed == min(by_seed) else None)
        if overlap is not None and overlap.low is not None:
            axis.axvspan(overlap.low, overlap.high, color="gold", alpha=0.25, label="both cover")
        axis.set_xscale("log")
        # plain numbers at 1, 2, 5 x 10^k: a rate grid spans less than a decade, where the default
        # minor labels (2x10^1, 3x10^1, ...) run into each other
        axis.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())
        axis.set_xlabel(quantity_of(x_metric).label)
        axis.set_ylabel(quantity_of(y_metric).label)
        axis.set_title("C1 at matched distortion" if x_metric == "distortion.mse" else "C4 at matched rate",
                       fontsize=9)
        _legend(axis)
    return figure_png(figure)


def _mean_probe_profiles(runs: list[RunRecord]) -> dict[str, np.ndarray] | None:
    """Mean over runs of the probe's per-unit profiles (units in each run's curvature order), or None."""
    keys = ("probe.actual_profile", "probe.predicted_profile", "probe.curvature_profile")
    profiles = [[np.asarray(run.analysis[key], dtype=float) for key in keys] for run in runs
                if all(isinstance(run.analysis.get(key), list) and run.analysis[key] for key in keys)]
    if not profiles or len({len(vector) for run in profiles for vector in run}) != 1:
        return None
    return {key: np.mean([run[index] for run in profiles], axis=0) for index, key in enumerate(keys)}


def mechanism_figure(records: list[RunRecord], dataset: str) -> bytes | None:
    """Per beta (columns): the probe's predicted (dotted, x) against the encoder's actual (solid, o) posterior
    variance per unit (top), and the curvature (J^T M J)_jj per unit (bottom); units in order of decreasing
    curvature, a curve per loss family and convention (mean over seeds). None without probe results."""
    curves = _curves(probe_runs(records), dataset)
    betas = sorted({beta for by_beta in curves.values() for beta in by_beta})
    if not betas:
        return None
    figure, axes = plt.subplots(2, len(betas), figsize=(3.8 * len(betas), 6.0), squeeze=False)
    for column, beta in enumerate(betas):
        top, bottom = axes[0][column], axes[1][column]
        for (family, convention), by_beta in curves.items():
            profiles = _mean_probe_profiles(by_beta.get(beta, []))
            if profiles is None:
                continue
            units = np.arange(1, len(profiles["probe.actual_profile"]) + 1)
            style, label = _line_style(family, convention), f"{family} ({convention})"
            top.semilogy(units, np.clip(profiles["probe.actual_profile"], 1e-12, None), marker="o", markersize=3,
                         label=label, **{**style, "linestyle": "-"})
            top.semilogy(units, np.clip(profiles["probe.predicted_profile"], 1e-12, None), marker="x",
                         markersize=4, **{**style, "linestyle": ":"})
            bottom.semilogy(units, np.clip(profiles["probe.curvature_profile"], 1e-12, None), marker="o",
                            markersize=3, label=label, **style)
        top.set_title(f"{dataset}, beta={beta:g}: E sigma_j^2", fontsize=9)
        top.set_ylabel("actual (o, solid) / predicted (x, dotted)")
        bottom.set_title(f"{dataset}, beta={beta:g}: curvature", fontsize=9)
        bottom.set_ylabel("E_x (J^T M J)_jj")
        bottom.set_xlabel("unit (by decreasing curvature)")
        _legend(top)
    return figure_png(figure)


def loss_curves_figure(records: list[RunRecord], dataset: str) -> bytes | None:
    """The logged training objective against the step, one panel per loss family and convention, a line per
    beta of its lowest seed (each run's metrics.jsonl). The last 20% of the steps, which the convergence figure
    judges, are shaded."""
    curves = _curves(records, dataset)
    panels = [(key, by_beta) for key, by_beta in curves.items()
              if any(run.log for runs in by_beta.values() for run in runs)]
    if not panels:
        return None
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 2.6 * rows), squeeze=False)
    colours = plt.get_cmap("viridis")
    for axis, ((family, convention), by_beta) in zip(axes.flat, panels):
        betas = sorted(by_beta)
        for index, beta in enumerate(betas):
            run = min(by_beta[beta], key=lambda record: record.seed if record.seed is not None else 0)
            logged = run.log
            key = INTERVAL_KEY if any(INTERVAL_KEY in record for record in logged) else "loss"
            log = [record for record in logged if key in record]
            if log:
                axis.plot([record["step"] for record in log], [record[key] for record in log], linewidth=0.9,
                          color=colours(index / max(1, len(betas) - 1)), label=f"beta={beta:g}")
        steps = run.setting("train.steps")
        if steps:
            axis.axvspan(0.8 * steps, steps, color="0.9", zorder=0)
        axis.set_title(f"{family} ({convention}), seed {run.seed}", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.set_xlabel("step", fontsize=7)
        axis.set_ylabel("logged loss", fontsize=7)
        _legend(axis)
    for axis in list(axes.flat)[len(panels):]:
        axis.set_visible(False)
    figure.suptitle(f"{dataset}: training objective", fontsize=9)
    return figure_png(figure)
