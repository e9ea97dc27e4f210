"""`vaelens.analyze`: encode an evaluation set once and measure everything; write analysis.json and plots.

analysis.json is one flat JSON object: every key is a string, every value a number, string,
boolean, null or list (no nesting; sections are dotted prefixes). Information is in nats.
A statistic that cannot be computed on this model or data is left out and a `<name>_skipped`
or `<prefix>skipped` key says why. For spatial latents (N, C, h, w) the unprefixed latent keys
are the per-element view (every one of the C*h*w elements is a unit) and the same keys again
under `channel.` are the per-channel view (positions pooled as samples of a C-unit latent).

| key | meaning |
| --- | --- |
| units | "nats": the unit of every information quantity |
| weighting_convention | additive / convex / ldm for a vaelens run; "unknown (pretrained model)" otherwise |
| objective.* | the run's objective (likelihood, beta, convention, terms and weights) |
| model.* | a pretrained model's description (e.g. diffusers AutoencoderKL) |
| data.* | the evaluation data (name, split, count, image shape, source) |
| num_images, log_num_images, seed | images encoded (a seeded subset when there are more), log N (ceiling of MI), seed |
| latent_shape, latent_view | shape of one latent; "vector" for (d,), "element" for spatial latents |
| rate, rate_per_unit | closed-form E_x KL(q(z given x), N(0, I)) in total and per unit |
| mutual_information(_stderr) | full-data estimate of I(x; z) (<= log N) and its standard error |
| marginal_kl(_stderr) | KL(q(z), p(z)) of the aggregate posterior q(z) |
| rate_monte_carlo(_stderr) | the rate on the same samples: = mutual_information + marginal_kl |
| total_correlation(_stderr), dimension_wise_kl(_stderr) | TC and sum_j KL(q(z_j), p(z_j)); they add up to marginal_kl |
| mi_num_samples | draws of z per image in those estimates |
| gaussian_mi_upper_bound | 0.5 logdet(Cov mu + E diag sigma^2) - 0.5 E sum log sigma^2 >= I |
| active_units, active_mask, active_threshold | units with Var_x(mu_j) > threshold (0.01), their mask |
| geometry.* | of the posterior means mu: covariance_spectrum (descending), participation_ratio, isoscore, effective_rank, condition_number (null if singular), partition_isotropy, num_points, num_dimensions |
| geometry_active.* | the same on the active units only |
| posterior_variance.* | profile of s_j = E_x sigma_j^2 (descending), log_profile (E_x log sigma_j^2), normalized_entropy, coefficient_of_variation, max_min_ratio (null if infinite), participation_ratio |
| mean_variance.* | the same statistics for the profile of Var_x(mu_j) |
| channel.* | spatial latents only: all the latent keys above on the channel view, plus channel.num_rows |
| distortion.* | posterior-mean reconstructions: mse (per pixel), mse_sum (per image), psnr (dB), ssim, ms_ssim, lpips_alex (where its backbone exists), training_<term> (the run's own perceptual term) |
| run.* | for a run directory: status when analysed (finished, diverged, incomplete), checkpoint_step (the checkpoint measured), steps (what its config asks for) |
| disentanglement.* | with ground-truth factors: mig, dci_disentanglement, dci_completeness, dci_informativeness_train/test, sap, factorvae_eval/train_accuracy, factorvae_num_active_dims; quick (true: fewer trees and votes) |

Figures in `analysis/` beside analysis.json: variance_profile.png (sorted posterior-variance and
Var(mu) profiles), covariance_spectrum.png (spectrum of Cov(mu)), kl_per_unit.png (per-unit rate
bars, inactive units grey), reconstructions.png (images above their reconstructions).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vaelens.analysis.encode import encode_images, reconstruction_function
from vaelens.analysis.latents import latent_statistics
from vaelens.analysis.plots import plot_covariance_spectrum, plot_kl_per_unit, plot_variance_profiles
from vaelens.dotted import flatten_dotted
from vaelens.io import atomic_write_json
from vaelens.metrics.distortion import distortion_report
from vaelens.models.base import VAE, PosteriorEncoder
from vaelens.training.images import save_png

LPIPS_NET = "alex"
"""LPIPS backbone for evaluation (PAPER.md section 5); skipped with a reason where its weights are absent."""
ANALYSIS_STAGES = ("encode", "latent statistics", "distortion", "disentanglement")


@torch.no_grad()
def _distortions(model, objective, data, indices, device, count: int, batch_size: int,
                 lpips_net: str | None = LPIPS_NET) -> dict:
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
        report = distortion_report(images, reconstructions, lpips_net=lpips_net)
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
    """MIG on all encoded codes; DCI and SAP trained on one half, tested on the other; FactorVAE
    where the data can render images for any factors. A score the sample cannot support (e.g. a
    factor that does not vary in it) is recorded as `<score>_skipped` with the reason."""
    from vaelens.metrics.disentangle import dci, factorvae_score, mutual_information_gap, sap_score

    factors = data.factors.classes[encoded.indices]
    codes = encoded.mu.flatten(1)
    half = len(codes) // 2
    gbt = {"n_estimators": 20} if quick else None
    split = (codes[:half], factors[:half], codes[half:], factors[half:])
    scores = {
        "mig": lambda: mutual_information_gap(codes, factors),
        "dci": lambda: dci(*split, gbt_params=gbt, seed=seed),
        "sap": lambda: sap_score(*split, seed=seed),
    }
    if hasattr(data, "images_for_factors"):
        def represent(classes):
            return model.encode(data.images_for_factors(classes).to(device))[0].flatten(1).float().cpu()

        counts = {"num_train": 1000, "num_eval": 500, "num_variance_estimate": 2000} if quick else {}
        scores["factorvae"] = lambda: factorvae_score(represent, data.factors.sizes, seed=seed, **counts)
    results = {"quick": quick}
    for name, compute in scores.items():
        try:
            with torch.no_grad():
                results.update(compute().scores)
        except ValueError as error:
            results[f"{name}_skipped"] = str(error)
    return {f"disentanglement.{key}": value for key, value in results.items()}


def analyze(model: VAE | PosteriorEncoder, data, *, objective=None, max_images: int | None = 5000,
            distortion_images: int = 512, disentanglement: bool = True, quick: bool = False, seed: int = 0,
            device="cpu", progress: bool = True, mi_samples: int = 1) -> dict:
    """Everything vaelens measures about a model's latents on `data`, as one flat JSON-ready dict (nats).

    `model` is a vaelens VAE (then give its `objective`) or any PosteriorEncoder (e.g. a
    DiffusersAutoencoder). Disentanglement runs where the data has ground-truth factors. The keys
    are listed in this module's docstring.
    """
    if max_images is not None and max_images < 2:
        raise ValueError(f"the latent statistics need at least 2 images, got max_images={max_images}")
    if data.num_images < 2:
        raise ValueError(f"{data.name} holds {data.num_images} image(s); the latent statistics need at least 2")
    model = model.to(device).eval()
    stages = tqdm(ANALYSIS_STAGES, desc="analyze", disable=not progress, leave=False)
    stages.set_postfix_str(ANALYSIS_STAGES[0])
    encoded = encode_images(model, data, max_images, seed=seed, device=device, progress=progress)
    results = {"units": "nats", "num_images": len(encoded.indices), "log_num_images": math.log(len(encoded.indices)),
               "seed": seed, "latent_shape": list(encoded.mu.shape[1:]), **flatten_dotted(data.describe(), "data.")}
    if objective is not None and hasattr(objective, "describe"):
        description = objective.describe()
        results["weighting_convention"] = description["convention"]
        results.update(flatten_dotted(description, "objective."))
    else:
        results["weighting_convention"] = "unknown (pretrained model)"
        if hasattr(model, "describe"):
            results.update(flatten_dotted(model.describe(), "model."))
    stages.update()
    stages.set_postfix_str(ANALYSIS_STAGES[1])
    results.update(latent_statistics(encoded.mu, encoded.logvar, seed=seed, mi_samples=mi_samples))
    stages.update()
    stages.set_postfix_str(ANALYSIS_STAGES[2])
    results.update(_distortions(model, objective, data, encoded.indices, device, distortion_images, 128))
    stages.update()
    if disentanglement and data.factors is not None:
        stages.set_postfix_str(ANALYSIS_STAGES[3])
        results.update(_disentanglement(model, data, encoded, device, seed, quick))
    stages.update()
    stages.close()
    return results


def write_analysis(results: dict, folder: Path, model=None, objective=None, data=None) -> Path:
    """analysis.json plus its figures in `folder`; returns the JSON path."""
    folder = Path(folder)
    plots = folder / "analysis"
    if "posterior_variance.profile" in results and "mean_variance.profile" in results:
        plot_variance_profiles(results["posterior_variance.profile"], results["mean_variance.profile"],
                               plots / "variance_profile.png")
    if "geometry.covariance_spectrum" in results:
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
