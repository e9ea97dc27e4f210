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
| model.* | a pretrained model's description (e.g. diffusers AutoencoderKL); for a diffusers model also what its config.json declares for diffusion: configured_scaling_factor, and configured_shift_factor, configured_latents_mean, configured_latents_std where it sets them |
| data.* | the evaluation data (name, split, count, image shape, source) |
| num_images, log_num_images, seed | images encoded (a seeded random draw over the split: `vaelens.sampling.random_subset(data.num_images, num_images, seed)`), log N (ceiling of MI), seed |
| sample_size.* | how num_images was chosen: rule ("fixed": the requested count, capped at the split; "auto": log N >= rate + 1 nat, see analysis.sample_size), requested; for auto also pilot_images, pilot_rate (the rate on the pilot draw), target_log_num_images (pilot_rate + 1), reason (a sentence, naming any cap: the split size or 20,000) |
| latent_shape, latent_view | shape of one latent; "vector" for (d,), "element" for spatial latents |
| rate, rate_per_unit | closed-form E_x KL(q(z given x), N(0, I)) in total and per unit |
| mutual_information(_stderr) | full-data estimate of I(x; z) (<= log N) and its standard error |
| mutual_information_ceiling, mutual_information_saturated | log of the rows the estimator saw (log N; log channel.num_rows on the channel view) and whether the estimate lies within 0.5 nats of it: then it is a floor, not an estimate, and marginal_kl (= rate - MI) is inflated |
| marginal_kl(_stderr) | KL(q(z), p(z)) of the aggregate posterior q(z) |
| rate_monte_carlo(_stderr) | the rate on the same samples: = mutual_information + marginal_kl |
| total_correlation(_stderr), dimension_wise_kl(_stderr) | TC and sum_j KL(q(z_j), p(z_j)); they add up to marginal_kl |
| mi_num_samples | draws of z per image in those estimates |
| gaussian_mi_upper_bound | 0.5 logdet(Cov mu + E diag sigma^2) - 0.5 E sum log sigma^2 >= I |
| active_units, active_mask, active_threshold | units with Var_x(mu_j) > threshold (0.01), their mask |
| geometry.* | of the posterior means mu: covariance_spectrum (descending), participation_ratio, isoscore, effective_rank, condition_number (null if singular), partition_isotropy, num_points, num_dimensions; bounded_by_sample (num_points <= num_dimensions: the spectrum has at most N - 1 non-zero eigenvalues) and then participation_ratio_bound (N - 1, also bounding effective_rank) and isoscore_bound ((N - 2) / (d - 1)) |
| geometry_active.* | the same on the active units only |
| posterior_variance.* | profile of s_j = E_x sigma_j^2 (descending), log_profile (E_x log sigma_j^2), normalized_entropy, coefficient_of_variation, max_min_ratio (null if infinite), participation_ratio |
| mean_variance.* | the same statistics for the profile of Var_x(mu_j) |
| channel.* | spatial latents only: all the latent keys above on the channel view, plus channel.num_rows |
| latent_stats.* | the latent scale a diffusion model trained on these latents needs (vaelens.metrics.latent_stats), from posterior samples z = mu + sigma * eps of the num_images analysis images, eps standard normal drawn with the analysis seed (float64, in blocks of 256 images in encoded order, from one CPU generator seeded with seed), in raw latent units (no factor applied): sample_mean, sample_std (over every element of every image; unbiased std, as torch.std) with sample_mean_stderr, sample_std_stderr (delete-one-image jackknife); mean_mean, mean_std (the same of the posterior means mu); scaling_factor (1 / sample_std, Stable Diffusion's: z * scaling_factor has unit variance; null when z is constant) with scaling_factor_stderr; shift_factor (sample_mean, SD3/FLUX's: (z - shift_factor) * scaling_factor, whose scaling factor 1 / std(z - shift_factor) is the same 1 / sample_std); channel_mean, channel_std (lists: per channel, pooled over positions and images, for spatial latents; per unit for vector latents: diffusers' latents_mean / latents_std, which the pipelines use with scaling_factor 1); num_images, seed |
| distortion.* | posterior-mean reconstructions of num_images of the encoded images drawn with seed (`random_subset(num_images of the analysis, distortion.num_images, distortion.seed)` positions in the encoded set; their means from the one encoding pass are decoded, not encoded again): mse (per pixel), mse_sum (per image), psnr (dB), ssim, ms_ssim, effnet_lite0 (the uncalibrated LPIPS-style distance over the ImageNet EfficientNet-Lite0: always, offline; docs/perceptual.md), lpips_alex (where its backbone exists), training_<term> (the run's own perceptual term); distortion_skipped where the images leave [0, 1] (e.g. the gaussian source) |
| reconstructions.* | indices: the data-set indices of the images in reconstructions.png (16 drawn like the distortion images, hence among them) |
| run.* | for a run directory: status when analysed (finished, diverged, incomplete), checkpoint_step (the checkpoint measured), steps (what its config asks for) |
| disentanglement.* | with ground-truth factors: mig (on all num_codes encoded codes), dci_disentanglement, dci_completeness, dci_informativeness_train/test, sap (trained on num_train codes, tested on num_test: `disentanglement_split(num_codes, split_seed)`), factorvae_eval/train_accuracy, factorvae_num_active_dims; quick (true: fewer trees and votes) |
| probe.* | the mechanistic probe (docs/science.md, "Neural losses as metrics"; analysis.probe) on num_images encoded images drawn with seed like the distortion images, under the run's own loss (loss, metric_at "reconstruction", beta, scale 1): pearson_log, spearman_log (predicted vs encoder posterior variance over image-unit pairs, log scale), profile_pearson_log (over units), median_log_ratio, iqr_log_ratio (log actual / predicted), negative_curvature_count; per unit, ordered by mean curvature (unit_order): curvature_profile (E_x (J^T M J)_jj, descending), predicted_profile, actual_profile (E_x sigma_j^2); curvature_spread (normalised entropy of the curvature profile, 1 = even), curvature_cv |
| probe_skipped | why the probe did not run: not asked for (probe=false), no training objective, an L1 pixel loss (no curvature), beta = 0, too many latent units |

Figures in `analysis/` beside analysis.json: variance_profile.png (sorted posterior-variance and
Var(mu) profiles), covariance_spectrum.png (spectrum of Cov(mu)), kl_per_unit.png (per-unit rate
bars, inactive units grey), reconstructions.png (images above their reconstructions), probe.png (with
the probe: predicted and actual posterior-variance profiles, and the curvature profile).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vaelens.analysis.encode import EncodedSet, reconstruction_function
from vaelens.analysis.latents import latent_statistics
from vaelens.analysis.plots import (
    plot_covariance_spectrum,
    plot_kl_per_unit,
    plot_probe_profiles,
    plot_variance_profiles,
)
from vaelens.analysis.probe import run_probe
from vaelens.analysis.sample_size import DEFAULT_IMAGES, check_image_count, encode_for_analysis
from vaelens.dotted import flatten_dotted
from vaelens.io import atomic_folder, atomic_write_json, refuse_symlinks
from vaelens.locks import folder_lock
from vaelens.metrics.disentangle import dci, factorvae_score, mutual_information_gap, sap_score
from vaelens.metrics.distortion import distortion_report
from vaelens.models.base import VAE, PosteriorEncoder
from vaelens.sampling import random_subset
from vaelens.training.images import save_png

LPIPS_NET = "alex"
"""LPIPS backbone for evaluation (docs/science.md, "Reconstruction and disentanglement metrics"); skipped with a reason where its weights are absent."""
ANALYSIS_STAGES = ("encode", "latent statistics", "distortion", "disentanglement", "probe")
FIGURE_IMAGES = 16
"""Images in reconstructions.png."""


@torch.no_grad()
def _distortions(model, objective, data, encoded: EncodedSet, device, count: int, batch_size: int, seed: int,
                 lpips_net: str | None = LPIPS_NET) -> dict:
    """Mean distortions of posterior-mean reconstructions over `count` encoded images drawn with `seed`.

    A seeded draw, because storage order is not random: the dSprites test split is sorted by grid
    index, so its first images are all squares at the smallest scales. The posterior means are those of
    the encoded set (the images are not encoded again); only the decoder runs here."""
    reconstruct = reconstruction_function(model, objective)
    sums: dict[str, float] = {}
    notes: dict[str, str] = {}
    positions = random_subset(len(encoded.indices), count, seed)
    chosen = encoded.indices[positions]
    perceptual = getattr(objective, "perceptual", None)
    for start in range(0, len(chosen), batch_size):
        images = data.images(chosen[start:start + batch_size]).to(device)
        if float(images.min()) < 0 or float(images.max()) > 1:
            return {"distortion_skipped": f"{data.name} images leave [0, 1] (range [{float(images.min()):.3g}, "
                                          f"{float(images.max()):.3g}]): PSNR, SSIM and LPIPS assume [0, 1] images"}
        means = encoded.mu[positions[start:start + batch_size]].to(device)
        reconstructions = reconstruct(means).float().clamp(0, 1)
        report = distortion_report(images, reconstructions, lpips_net=lpips_net, imagenet_features=True)
        if perceptual is not None:
            report[f"training_{perceptual.name}"] = float(perceptual(images, reconstructions).mean())
        for key, value in report.items():
            if isinstance(value, str):
                notes[key] = value
            else:
                sums[key] = sums.get(key, 0.0) + value * len(images)
    return {"distortion.num_images": len(chosen), "distortion.seed": seed,
            **{f"distortion.{key}": value / len(chosen) for key, value in sums.items()},
            **{f"distortion.{key}": value for key, value in notes.items()}}


def disentanglement_split(num_codes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (in the encoded set) of the codes DCI and SAP train on and of those they are tested on:
    the two halves of one seeded permutation."""
    order = torch.randperm(num_codes, generator=torch.Generator().manual_seed(seed))
    return order[:num_codes // 2], order[num_codes // 2:]


def _disentanglement(model, data, encoded, device, seed: int, quick: bool) -> dict:
    """MIG on all encoded codes; DCI and SAP trained on a seeded random half, tested on the other (the
    encoded codes are in storage order, which on dSprites is sorted by factor); FactorVAE where the
    data can render images for any factors. A score the sample cannot support (e.g. a factor that
    does not vary in it) is recorded as `<score>_skipped` with the reason."""
    factors = data.factors.classes[encoded.indices]
    codes = encoded.mu.flatten(1)
    train, test = disentanglement_split(len(codes), seed)
    gbt = {"n_estimators": 20} if quick else None
    split = (codes[train], factors[train], codes[test], factors[test])
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
    results = {"quick": quick, "num_codes": len(codes), "num_train": len(train), "num_test": len(test),
               "split_seed": seed}
    for name, compute in scores.items():
        try:
            with torch.no_grad():
                results.update(compute().scores)
        except ValueError as error:
            results[f"{name}_skipped"] = str(error)
    return {f"disentanglement.{key}": value for key, value in results.items()}


def _header(model, data, objective, encoded, seed: int) -> dict:
    """What was measured: images, seed, latent shape, data, and the objective (or the pretrained model)."""
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
    figure = random_subset(len(encoded.indices), FIGURE_IMAGES, seed)
    results["reconstructions.indices"] = encoded.indices[figure].tolist()
    return results


def analyze(model: VAE | PosteriorEncoder, data, *, objective=None, max_images: int | str | None = DEFAULT_IMAGES,
            distortion_images: int = 512, disentanglement: bool = True, quick: bool = False, seed: int = 0,
            device="cpu", progress: bool = True, mi_samples: int = 1, probe: bool = False,
            probe_images: int = 256) -> dict:
    """Everything vaelens measures about a model's latents on `data`, as one flat JSON-ready dict (nats).

    `model` is a vaelens VAE (then give its `objective`) or any PosteriorEncoder (e.g. a
    DiffusersAutoencoder). `max_images`: a count, None for the whole split, or "auto" (enough that
    log N clears the rate; analysis.sample_size). Disentanglement runs where the data has
    ground-truth factors; the mechanistic probe when `probe` (analysis.probe). The keys are listed
    in this module's docstring.
    """
    if max_images is not None:
        check_image_count(max_images, "max_images")
    if data.num_images < 2:
        raise ValueError(f"{data.name} holds {data.num_images} image(s); the latent statistics need at least 2")
    model = model.to(device).eval()
    stages = tqdm(ANALYSIS_STAGES, desc="analyze", disable=not progress, leave=False)
    stages.set_postfix_str(ANALYSIS_STAGES[0])
    encoded, sample_size = encode_for_analysis(model, data, max_images, seed=seed, device=device, progress=progress)
    results = {**_header(model, data, objective, encoded, seed), **sample_size}
    stages.update()
    stages.set_postfix_str(ANALYSIS_STAGES[1])
    results.update(latent_statistics(encoded.mu, encoded.logvar, seed=seed, mi_samples=mi_samples))
    stages.update()
    stages.set_postfix_str(ANALYSIS_STAGES[2])
    results.update(_distortions(model, objective, data, encoded, device, distortion_images, 128, seed))
    stages.update()
    if disentanglement and data.factors is not None:
        stages.set_postfix_str(ANALYSIS_STAGES[3])
        results.update(_disentanglement(model, data, encoded, device, seed, quick))
    stages.update()
    stages.set_postfix_str(ANALYSIS_STAGES[4])
    results.update(run_probe(model, objective, data, encoded.indices, probe_images, seed, device) if probe
                   else {"probe_skipped": "not requested (analysis option probe=false)"})
    stages.update()
    stages.close()
    return results


def write_analysis(results: dict, folder: Path, model=None, objective=None, data=None) -> Path:
    """analysis.json plus its figures in `folder/analysis/`; returns the JSON path.

    Under the folder's lock (a run directory has one writer at a time), with no symbolic link followed: the
    figures are drawn into a staging folder that replaces analysis/ whole only once every one is written, and
    analysis.json comes last, so a failure part-way (a full disk) leaves the previous analysis as it was."""
    folder = Path(folder)
    with folder_lock(folder, "an analysis"):
        refuse_symlinks(folder, ("analysis", "analysis.json"), "output folder")
        with atomic_folder(folder / "analysis", replace=True) as plots:
            _write_figures(results, plots, model, objective, data)
        path = folder / "analysis.json"
        atomic_write_json(path, results)
    return path


def _write_figures(results: dict, plots: Path, model, objective, data) -> None:
    if "posterior_variance.profile" in results and "mean_variance.profile" in results:
        plot_variance_profiles(results["posterior_variance.profile"], results["mean_variance.profile"],
                               plots / "variance_profile.png")
    if "geometry.covariance_spectrum" in results:
        plot_covariance_spectrum(results["geometry.covariance_spectrum"], plots / "covariance_spectrum.png")
    plot_kl_per_unit(results["rate_per_unit"], plots / "kl_per_unit.png", results.get("active_mask"))
    if "probe.curvature_profile" in results:
        plot_probe_profiles(results["probe.curvature_profile"], results["probe.predicted_profile"],
                            results["probe.actual_profile"], plots / "probe.png")
    if model is not None and data is not None:
        with torch.no_grad():
            device = next(model.parameters()).device
            chosen = results.get("reconstructions.indices")
            if chosen is None:  # results of an older analysis: draw the same way over the whole split
                chosen = random_subset(data.num_images, FIGURE_IMAGES, results.get("seed", 0))
            images = data.images(chosen).to(device)
            reconstruct = reconstruction_function(model, objective)
            reconstructions = reconstruct(model.encode(images)[0]).float().clamp(0, 1)
            save_png(torch.cat([images, reconstructions]), plots / "reconstructions.png", rows_of=len(images))
