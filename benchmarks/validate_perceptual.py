"""Validate the perceptual distances vaelens offers as perceptual metrics, without human judgments: the tables and
figures of docs/perceptual.md.

1. Known properties (vaelens.distances.validation) on patches of the scikit-image photos the `natural` data set
   holds out (chelsea, rocket, coins, gravel), at 32 and 64 px: monotone in blur, noise, JPEG and contrast loss;
   a 1-2 px translation or a small warp judged closer than additive noise of the same pixel MSE. Distances:
   effnet-lite0, features:natural-denoising, features:dsprites-supervised (on the luma), 1 - SSIM, pixel MSE.
2. Which EfficientNet-Lite0 maps: the same checks for several layer sets of the ImageNet network.
0. The input normalisation of the ImageNet weights: (x - 0.5) / 0.5 against ImageNet's mean and std, by the
   classes of chelsea and coffee and by how well the stem's batch-norm statistics match.
3. The local metric: the pull-back metric E_x M_x (half the Hessian at x_hat = x, dense, vaelens.theory) of
   effnet-lite0 and of features:natural-denoising on grayscale 32 x 32 training patches, against a whitening of
   the patches' covariance C (a metric proportional to C^-1).

Writes docs/perceptual/validation.json, docs/perceptual/tables.md and the PNG figures; prints the tables. The
fitted networks are fitted on first use (minutes) and cached. `--smoke` runs everything on a handful of images.

    python benchmarks/validate_perceptual.py            # about half an hour on 1 CPU thread, most of it step 3
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import matplotlib
import numpy as np
import skimage.data
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.stats import spearmanr

from vaelens.data.base import to_grayscale
from vaelens.distances.efficientnet import (
    FEATURE_LAYERS,
    WEIGHTS_SHA256,
    build_efficientnet_lite0,
    efficientnet_distance,
)
from vaelens.distances.features import feature_distance
from vaelens.distances.structural import ssim
from vaelens.distances.validation import (
    LADDERS,
    RIVALS,
    central_crop,
    markdown_tables,
    noise_of_equal_mse,
    photo_contexts,
    pixel_mse,
    property_table,
)
from vaelens.features import resolve_feature_network
from vaelens.io import atomic_write_json
from vaelens.theory.metric import dataset_metric
from vaelens.theory.sources import natural_patch_images

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LAYER_SETS = {"stem": ("stem",), "stem, stage1, stage2": ("stem", "stage1", "stage2"),
              "stem, stage2, stage3": ("stem", "stage2", "stage3"), "stem, stage2-4 (chosen)": FEATURE_LAYERS,
              "stage2-4": ("stage2", "stage3", "stage4"), "stem, stage1-5": ("stem", "stage1", "stage2", "stage3",
                                                                                 "stage4", "stage5"),
              "stage3-6": ("stage3", "stage4", "stage5", "stage6")}
"""The layer sets compared in step 2."""
WELL_ESTIMATED = 0.9
"""Share of the covariance's eigen-directions (the largest) used for fits: the smallest eigenvalues of a sample
covariance are biased low."""
BANDS = ((0, 10), (10, 100), (100, 500), (500, 900), (900, None))
"""Ranges of the covariance's eigen-directions (largest variance first) over which the metric's profile is fitted
separately: a whitening has slope -1 in every band."""


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
NORMALISATIONS = {"(x - 0.5) / 0.5": ((0.5,) * 3, (0.5,) * 3), "ImageNet mean / std": (IMAGENET_MEAN, IMAGENET_STD)}


def _photo_224(photo: np.ndarray) -> torch.Tensor:
    resized = Image.fromarray(photo).resize((224, 224), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.array(resized)).permute(2, 0, 1).float().div(255)


@torch.no_grad()
def normalisation_check() -> dict:
    """Under each normalisation: the top class and its probability for chelsea and coffee (whole photo at 224 px),
    and how far the stem's pre-BN statistics over four photos are from the stored running statistics."""
    network = build_efficientnet_lite0()
    photos = {name: _photo_224(getattr(skimage.data, name)()) for name in ("chelsea", "coffee", "astronaut", "rocket")}
    stack = torch.stack(list(photos.values()))
    running_mean, running_var = network.stem.bn.running_mean, network.stem.bn.running_var
    alive = running_var > 1e-6
    results = {}
    for name, (mean, std) in NORMALISATIONS.items():
        x = (stack - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        probabilities = network(x[:2]).softmax(dim=1)
        # TensorFlow SAME padding of a 3x3 stride-2 convolution on 224 px: one row and column, below and right.
        before_bn = network.stem.conv(F.pad(x, (0, 1, 0, 1)))
        variance_ratio = before_bn.var(dim=(0, 2, 3)) / running_var
        mean_offset = (before_bn.mean(dim=(0, 2, 3)) - running_mean).abs() / running_var.sqrt()
        results[name] = {"classes": {photo: [int(p.argmax()), float(p.max())]
                                     for photo, p in zip(list(photos)[:2], probabilities)},
                         "median_abs_log_variance_ratio": float(variance_ratio[alive].log().abs().median()),
                         "median_abs_mean_offset_in_running_std": float(mean_offset[alive].median()),
                         "channels": int(alive.sum()), "photos": list(photos)}
    return results


def normalisation_section(results: dict) -> str:
    lines = ["## Input normalisation (whole photos resized to 224 x 224, bicubic)\n",
             "| normalisation | chelsea: class, p | coffee: class, p | stem: median abs log variance ratio | "
             "stem: median abs mean offset / running std |", "| --- | --- | --- | ---: | ---: |"]
    for name, found in results.items():
        chelsea, coffee = found["classes"]["chelsea"], found["classes"]["coffee"]
        lines.append(f"| {name} | {chelsea[0]}, {chelsea[1]:.3f} | {coffee[0]}, {coffee[1]:.3f} | "
                     f"{found['median_abs_log_variance_ratio']:.2f} | "
                     f"{found['median_abs_mean_offset_in_running_std']:.2f} |")
    first = next(iter(results.values()))
    return "\n".join(lines) + (f"\n\nStem statistics over {', '.join(first['photos'])}; {first['channels']} channels "
                               "with running variance > 1e-6.")


def distances_compared() -> dict:
    """The distances of step 1, each taking RGB images in [0, 1]."""
    natural, _ = resolve_feature_network("natural-denoising")
    dsprites, _ = resolve_feature_network("dsprites-supervised")
    return {"effnet-lite0": efficientnet_distance,
            "features:natural-denoising": lambda x, y: feature_distance(x, y, natural),
            "features:dsprites-supervised": lambda x, y: feature_distance(to_grayscale(x), to_grayscale(y), dsprites),
            "1 - SSIM": lambda x, y: 1 - ssim(x, y.clamp(0, 1)),
            "pixel MSE": pixel_mse}


def property_tables(distances: dict, count: int, seed: int) -> dict:
    """Step 1 (or 2) at 32 and 64 px: {side: {"images", "sources", "table"}}."""
    results = {}
    for side in (32, 64):
        contexts, sources = photo_contexts(side, count, seed)
        table = property_table(distances, contexts.float(), seed)
        results[side] = {"images": len(contexts), "sources": sources, "table": table}
    return results


def markdown_section(title: str, results: dict, names: list[str], seed: int) -> str:
    lines = [f"## {title}"]
    for side, result in results.items():
        monotone, equal_mse = markdown_tables(result["table"], names)
        origin = ", ".join(f"{name} {count}" for name, count in result["sources"].items())
        lines += [f"\n### {side} x {side} px: {result['images']} patches (seed {seed}) of {origin} candidates",
                  "\nImages ranked in strictly increasing order along the whole ladder:\n", monotone,
                  "\nMedian d(distortion) / d(Gaussian noise of the same pixel MSE), and (in brackets) the images "
                  "judged closer than that noise:\n", equal_mse]
    return "\n".join(lines)


def example_figure(path: Path, seed: int) -> None:
    """One held-out 64 px patch under each distortion, mid-ladder, and under noise of a 1-px shift's MSE."""
    contexts, _ = photo_contexts(64, 1, seed, photos=("chelsea.png",))
    panels = [("original", contexts)]
    panels += [(f"{ladder.name}\n{ladder.parameter} {ladder.levels[4]:g}", ladder.apply(contexts, ladder.levels[4],
                                                                                          seed)) for ladder in LADDERS]
    panels += [(rival.name, rival.apply(contexts, seed)) for rival in (RIVALS[0], RIVALS[3])]
    shifted = RIVALS[0].apply(contexts, seed)
    panels.append(("noise, MSE of\nthe 1-px shift", noise_of_equal_mse(
        contexts, pixel_mse(central_crop(contexts), central_crop(shifted)), seed)))
    figure, axes = plt.subplots(1, len(panels), figsize=(1.6 * len(panels), 2.1))
    for axis, (title, images) in zip(axes, panels):
        axis.imshow(central_crop(images)[0].permute(1, 2, 0).clamp(0, 1).numpy())
        axis.set_title(title, fontsize=7)
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def ladder_figure(path: Path, result: dict, names: list[str], side: int) -> None:
    """Mean distance along each ladder, each distance divided by its value at the strongest level."""
    figure, axes = plt.subplots(1, len(LADDERS), figsize=(3.2 * len(LADDERS), 2.8))
    rows = result["table"]["monotonicity"]
    for axis, ladder in zip(axes, LADDERS):
        for name in names:
            row = next(r for r in rows if r["distance"] == name and r["distortion"] == ladder.name)
            axis.plot(range(len(ladder.levels)), np.array(row["mean"]) / row["mean"][-1], marker="o", ms=3,
                      label=name)
        axis.set_xticks(range(len(ladder.levels)), [f"{level:g}" for level in ladder.levels], fontsize=7)
        axis.set_xlabel(ladder.parameter)
        axis.set_title(f"{ladder.name}, {side} px", fontsize=9)
    axes[0].set_ylabel("mean / mean at strongest")
    axes[-1].legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def equal_mse_figure(path: Path, results: dict, names: list[str]) -> None:
    """Median d(rival) / d(noise of equal MSE) per distance, one panel per image side."""
    figure, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 3.2), sharey=True)
    width = 0.8 / len(names)
    for axis, (side, result) in zip(np.atleast_1d(axes), results.items()):
        for index, name in enumerate(names):
            ratios = [next(r["median_ratio"] for r in result["table"]["equal_mse"]
                           if r["distance"] == name and r["distortion"] == rival.name) for rival in RIVALS]
            axis.bar(np.arange(len(RIVALS)) + (index - len(names) / 2 + 0.5) * width, ratios, width, label=name)
        axis.axhline(1.0, color="black", lw=0.8)
        axis.set_xticks(range(len(RIVALS)), [rival.name.replace(" (", "\n(") for rival in RIVALS], fontsize=7)
        axis.set_title(f"{side} x {side} px, {result['images']} patches", fontsize=9)
    np.atleast_1d(axes)[0].set_ylabel("median d(distortion) / d(noise, same MSE)")
    np.atleast_1d(axes)[0].legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def pullback_metrics(side: int, count: int, seed: int) -> tuple[dict, np.ndarray, int]:
    """Dense E_x M_x of effnet-lite0 and features:natural-denoising over `count` grayscale training patches
    (float64), and the covariance of all of them (with how many there are)."""
    natural, _ = resolve_feature_network("natural-denoising")
    natural = natural.double()

    def natural_on_gray(x, x_hat):
        return feature_distance(x.expand(-1, 3, -1, -1), x_hat.expand(-1, 3, -1, -1), natural)

    images = natural_patch_images(side, count, seed).double()
    metrics = {"effnet-lite0": dataset_metric(efficientnet_distance, images, chunk_size=64).numpy(),
               "features:natural-denoising": dataset_metric(natural_on_gray, images, chunk_size=64).numpy()}
    every = natural_patch_images(side, None, seed).double().flatten(1).numpy()
    return metrics, np.cov(every, rowvar=False), len(every)


def compare_with_whitening(metric: np.ndarray, variances: np.ndarray, directions: np.ndarray) -> dict:
    """How close a metric is to a whitening of the covariance (eigenvalues `variances`, descending, eigenvectors
    the columns of `directions`): the log-log slope of u_i^T M u_i against lambda_i (whitening -1, pixel MSE 0),
    its rank correlation with 1 / lambda_i, and how much of M's top tenth lies in C's bottom tenth."""
    n = len(variances)
    normalised = metric * n / np.trace(metric)
    along = np.einsum("ji,jk,ki->i", directions, normalised, directions)
    kept = int(WELL_ESTIMATED * n)
    slope = float(np.polyfit(np.log(variances[:kept]), np.log(along[:kept]), 1)[0])
    eigenvalues, eigenvectors = np.linalg.eigh(normalised)
    tenth = n // 10
    top = eigenvectors[:, ::-1][:, :tenth]
    overlap = float(np.sum((top.T @ directions[:, -tenth:]) ** 2) / tenth)
    eigenvalues = eigenvalues[::-1]
    bands = []
    for start, stop in BANDS:
        stop = n if stop is None else min(stop, n)
        if stop - start >= 2:
            bands.append({"directions": f"{start + 1}-{stop}", "mean": float(along[start:stop].mean()),
                          "slope": float(np.polyfit(np.log(variances[start:stop]), np.log(along[start:stop]), 1)[0])})
    return {"slope_vs_variance": slope, "spearman_with_inverse_variance": float(spearmanr(along, 1 / variances)[0]),
            "top_tenth_overlap_with_lowest_variance_tenth": overlap, "chance_overlap": tenth / n,
            "effective_rank": float(eigenvalues.sum() ** 2 / np.sum(eigenvalues ** 2)),
            "top_tenth_share_of_trace": float(eigenvalues[:tenth].sum() / n), "bands": bands,
            "eigenvalues": _rounded(eigenvalues), "along_covariance_directions": _rounded(along)}


def _rounded(values: np.ndarray) -> list[float]:
    """Four significant digits: enough to redraw the figures, a quarter of the JSON."""
    return [float(f"{value:.4g}") for value in values]


def metric_figures(folder: Path, metrics: dict, variances: np.ndarray, directions: np.ndarray, side: int) -> None:
    """Spectra against the whitening's, u_i^T M u_i against lambda_i, and the top eigenvectors as images."""
    n = len(variances)
    whitening = (1 / variances) * n / np.sum(1 / variances)
    figure, (spectra, along) = plt.subplots(1, 2, figsize=(10, 3.6))
    spectra.loglog(np.arange(1, n + 1), whitening, "k--", label="whitening C^-1")
    spectra.loglog(np.arange(1, n + 1), np.ones(n), "k:", label="pixel MSE (identity)")
    for name, metric in metrics.items():
        values = np.linalg.eigvalsh(metric * n / np.trace(metric))[::-1]
        spectra.loglog(np.arange(1, n + 1), np.clip(values, 1e-8, None), label=name)
        quotients = np.einsum("ji,jk,ki->i", directions, metric * n / np.trace(metric), directions)
        along.loglog(variances, quotients, ".", ms=2, label=name)
    along.loglog(variances, whitening, "k--", lw=1, label="whitening (slope -1)")
    spectra.set_xlabel("rank")
    spectra.set_ylabel("eigenvalue (metric scaled to trace n)")
    spectra.set_title(f"pull-back metric spectra, {side} x {side} gray", fontsize=9)
    along.set_xlabel("patch variance lambda_i along C's eigenvector u_i")
    along.set_ylabel("u_i^T M u_i")
    along.set_title("metric along the covariance's eigenvectors", fontsize=9)
    spectra.legend(fontsize=7)
    along.legend(fontsize=7, markerscale=4)
    figure.tight_layout()
    figure.savefig(folder / "metric-spectra.png", dpi=110)
    plt.close(figure)

    rows = {name.removeprefix("features:"): np.linalg.eigh(metric)[1][:, ::-1][:, :6]
            for name, metric in metrics.items()}
    rows["C^-1 (C's lowest)"] = directions[:, ::-1][:, :6]
    figure, axes = plt.subplots(len(rows), 6, figsize=(7, 1.3 * len(rows)))
    for row, (name, vectors) in zip(axes, rows.items()):
        for index, axis in enumerate(row):
            limit = np.abs(vectors[:, index]).max()
            axis.imshow(vectors[:, index].reshape(side, side), cmap="RdBu", vmin=-limit, vmax=limit)
            axis.set_xticks([])
            axis.set_yticks([])
        row[0].set_ylabel(name, fontsize=6)
    figure.suptitle("top eigenvectors of each metric (red and blue: opposite signs)", fontsize=9)
    figure.tight_layout()
    figure.savefig(folder / "metric-eigenvectors.png", dpi=110)
    plt.close(figure)


def metric_section(comparisons: dict, side: int, count: int, patches: int, seed: int) -> str:
    header = ["metric", "slope of u_i^T M u_i vs lambda_i", "Spearman with 1/lambda_i", "top-tenth overlap",
              "effective rank", "top tenth's share of trace"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, found in comparisons.items():
        lines.append(f"| {name} | {found['slope_vs_variance']:.3f} | {found['spearman_with_inverse_variance']:.3f} | "
                     f"{found['top_tenth_overlap_with_lowest_variance_tenth']:.3f} (chance "
                     f"{found['chance_overlap']:.3f}) | {found['effective_rank']:.1f} | "
                     f"{found['top_tenth_share_of_trace']:.3f} |")
    return (f"## Pull-back metric, {side} x {side} grayscale, {count} training patches (seed {seed}); "
            f"covariance of all {patches}\n\n" + "\n".join(lines) + "\n\n" + band_table(comparisons))


def band_table(comparisons: dict) -> str:
    """Mean u_i^T M u_i (metric scaled to trace n) and its log-log slope against lambda_i, band by band."""
    names = list(comparisons)
    bands = [band["directions"] for band in comparisons[names[0]]["bands"]]
    lines = ["| covariance directions (largest variance first) | " + " | ".join(
        f"{name}: mean, slope" for name in names) + " |", "|" + " --- |" * (len(names) + 1)]
    for index, band in enumerate(bands):
        cells = [f"{comparisons[name]['bands'][index]['mean']:.3g}, {comparisons[name]['bands'][index]['slope']:.2f}"
                 for name in names]
        lines.append(f"| {band} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/perceptual", help="folder for the JSON, tables and figures")
    parser.add_argument("--images", type=int, default=128, help="patches per side for the property tables")
    parser.add_argument("--metric-images", type=int, default=16, help="patches the pull-back metrics average")
    parser.add_argument("--metric-side", type=int, default=32, help="side of the grayscale metric patches")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="4 images, 8 px metric patches: checks it all runs")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.metric_images, args.metric_side = 4, 2, 8
    torch.set_num_threads(1)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    normalisation = normalisation_check()
    distances = distances_compared()
    names = list(distances)
    results = property_tables(distances, args.images, args.seed)
    layer_distances = {name: functools.partial(efficientnet_distance, layers=layers)
                       for name, layers in LAYER_SETS.items()}
    layer_results = property_tables(layer_distances, args.images, args.seed)
    example_figure(folder / "distortions.png", args.seed)
    for side, result in results.items():
        ladder_figure(folder / f"ladders-{side}.png", result, names, side)
    equal_mse_figure(folder / "equal-mse.png", results, names)

    metrics, covariance, patches = pullback_metrics(args.metric_side, args.metric_images, args.seed)
    variances, directions = np.linalg.eigh(covariance)
    variances, directions = variances[::-1], directions[:, ::-1]
    comparisons = {name: compare_with_whitening(metric, variances, directions) for name, metric in metrics.items()}
    metric_figures(folder, metrics, variances, directions, args.metric_side)

    text = "\n\n".join([normalisation_section(normalisation), markdown_section("Distances", results, names, args.seed),
                        markdown_section("EfficientNet-Lite0 layer sets", layer_results, list(LAYER_SETS), args.seed),
                        metric_section(comparisons, args.metric_side, args.metric_images, patches, args.seed)])
    (folder / "tables.md").write_text(text + "\n")
    print(text)
    atomic_write_json(folder / "validation.json", {
        "weights_sha256": WEIGHTS_SHA256, "seed": args.seed, "smoke": args.smoke, "normalisation": normalisation,
        "distances": {str(side): result for side, result in results.items()},
        "layer_sets": {name: list(layers) for name, layers in LAYER_SETS.items()},
        "layer_set_tables": {str(side): result for side, result in layer_results.items()},
        "pullback_metric": {"side": args.metric_side, "images": args.metric_images, "covariance_patches": patches,
                            "whitening_eigenvalues": (1 / variances * len(variances) / np.sum(1 / variances)).tolist(),
                            "comparisons": comparisons}})
    print(f"wrote {folder}/tables.md, validation.json and the figures")


if __name__ == "__main__":
    main()
