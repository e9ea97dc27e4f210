"""`vaelens.analyze`: encode an evaluation set once and measure everything; write analysis.json and plots."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from vaelens.analysis.encode import encode_images, reconstruction_function
from vaelens.analysis.latents import latent_statistics
from vaelens.analysis.plots import plot_covariance_spectrum, plot_kl_per_unit, plot_variance_profiles
from vaelens.io import atomic_write_json
from vaelens.metrics.distortion import distortion_report
from vaelens.training.images import save_png


@torch.no_grad()
def _distortions(model, objective, data, indices, device, count: int, batch_size: int) -> dict:
    """Mean distortions of posterior-mean reconstructions over `count` of the encoded images."""
    reconstruct = reconstruction_function(model, objective)
    sums: dict[str, float] = {}
    notes: dict[str, str] = {}
    seen = 0
    chosen = indices[:count]
    perceptual = getattr(objective, "perceptual", None)
    for start in range(0, len(chosen), batch_size):
        images = data.images(chosen[start:start + batch_size]).to(device)
        reconstructions = reconstruct(model.encode(images)[0]).float().clamp(0, 1)
        report = distortion_report(images, reconstructions)
        if perceptual is not None:
            report[f"training_{perceptual.name}"] = float(perceptual(images, reconstructions).mean())
        for key, value in report.items():
            if isinstance(value, str):
                notes[key] = value
            else:
                sums[key] = sums.get(key, 0.0) + value * len(images)
        seen += len(images)
    return {**{f"distortion.{key}": value / seen for key, value in sums.items()},
            **{f"distortion.{key}": value for key, value in notes.items()}}


def _disentanglement(model, data, encoded, device, seed: int, quick: bool) -> dict:
    from vaelens.metrics.disentangle import dci, factorvae_score, mutual_information_gap, sap_score

    factors = data.factors.classes[encoded.indices]
    codes = encoded.mu.flatten(1)
    half = len(codes) // 2
    results = {}
    results.update(mutual_information_gap(codes, factors).scores)
    gbt = {"n_estimators": 20} if quick else None
    results.update(dci(codes[:half], factors[:half], codes[half:], factors[half:], gbt_params=gbt, seed=seed).scores)
    results.update(sap_score(codes[:half], factors[:half], codes[half:], factors[half:], seed=seed).scores)
    if hasattr(data, "images_for_factors"):
        def represent(classes):
            return model.encode(data.images_for_factors(classes).to(device))[0].flatten(1).float().cpu()

        sizes = data.factors.sizes
        counts = {"num_train": 1000, "num_eval": 500, "num_variance_estimate": 2000} if quick else {}
        with torch.no_grad():
            results.update(factorvae_score(represent, sizes, seed=seed, **counts).scores)
    return {f"disentanglement.{key}": value for key, value in results.items()}


def analyze(model, data, *, objective=None, max_images: int | None = 5000, distortion_images: int = 512,
            disentanglement: bool = True, quick: bool = False, seed: int = 0, device="cpu",
            progress: bool = True, mi_samples: int = 1) -> dict:
    """Everything vaelens measures about a model's latents on `data`, as one flat JSON-ready dict (nats).

    `model` is a vaelens VAE (then give its `objective`) or any PosteriorEncoder (e.g. a
    DiffusersAutoencoder). Disentanglement runs where the data has ground-truth factors.
    """
    model = model.to(device).eval()
    encoded = encode_images(model, data, max_images, seed=seed, device=device, progress=progress)
    results = {"num_images": len(encoded.indices), "latent_shape": list(encoded.mu.shape[1:]),
               "log_num_images": math.log(len(encoded.indices)), "units": "nats", "seed": seed,
               "data": data.describe()}
    if objective is not None and hasattr(objective, "describe"):
        description = objective.describe()
        results["weighting_convention"] = description["convention"]
        results["objective"] = description
    else:
        results["weighting_convention"] = "unknown (pretrained model)"
        if hasattr(model, "describe"):
            results["model"] = model.describe()
    results.update(latent_statistics(encoded.mu, encoded.logvar, seed=seed, mi_samples=mi_samples))
    results.update(_distortions(model, objective, data, encoded.indices, device, distortion_images, 128))
    if disentanglement and data.factors is not None:
        results.update(_disentanglement(model, data, encoded, device, seed, quick))
    return results


def write_analysis(results: dict, folder: Path, model=None, objective=None, data=None) -> Path:
    """analysis.json plus its figures in `folder`; returns the JSON path."""
    folder = Path(folder)
    plots = folder / "analysis"
    plot_variance_profiles(results["posterior_variance.profile"], results["mean_variance.profile"],
                           plots / "variance_profile.png")
    plot_covariance_spectrum(results["geometry.covariance_spectrum"], plots / "covariance_spectrum.png")
    plot_kl_per_unit(results["rate_per_unit"], plots / "kl_per_unit.png", results.get("active_mask"))
    if model is not None and data is not None:
        with torch.no_grad():
            device = next(model.parameters()).device
            images = data.images(torch.arange(min(16, data.num_images))).to(device)
            reconstruct = reconstruction_function(model, objective)
            reconstructions = reconstruct(model.encode(images)[0]).float().clamp(0, 1)
            save_png(torch.cat([images, reconstructions]), plots / "reconstructions.png", rows_of=len(images))
    path = folder / "analysis.json"
    atomic_write_json(path, results)
    return path
