"""`vaelens theory`: linear VAEs trained with the project's own trainer against the closed form.

For each source (Gaussian with a chosen spectrum; flattened natural-image patches), each
distortion metric (pixel M = I, additive I + w G, convex (1 - a) I + a G; see `sources`) and each
beta, a `linear` model is trained by `vaelens.training.train` with the Gaussian likelihood under
loss.metric = M, i.e. the loss (x - x̂)^T M (x - x̂) / (2 sigma^2) + beta KL (water level
theta = beta sigma^2). Its rate, active units and posterior variances are measured on the training
vectors and compared with `linear_vae_optimum(Cov_train, M, beta, 1 / (2 sigma^2))`: the optimum
depends on the data through its first two moments only, so the empirical covariance (1/N) of the
training split is the exact prediction for a non-Gaussian source too. All rates in nats.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from vaelens.config import resolve
from vaelens.data import load_dataset
from vaelens.data.gaussian import write_gaussian_source
from vaelens.io import atomic_path, atomic_write_json
from vaelens.losses.objective import kl_per_unit
from vaelens.theory.config import SOURCES, TheoryConfig
from vaelens.theory.linear import linear_vae_optimum, scale_for_gaussian_likelihood
from vaelens.theory.plots import plot_theory
from vaelens.theory.sources import (
    CONVENTION_METRICS,
    convention_metrics,
    covariance_with_spectrum,
    feature_network,
    natural_patch_images,
    parse_spectrum,
    perceptual_metric,
)
from vaelens.training import train

ACTIVE_THRESHOLD = 0.01
"""Burda et al. (2016): unit j is active when Var_x(mu_j) exceeds this (trained and predicted alike)."""
RATE_TOLERANCE, VARIANCE_TOLERANCE = 0.02, 0.05
"""A trained run agrees with the closed form when its rate is within 2% and every sorted posterior
variance within 5% (relative)."""


def check_config(config: TheoryConfig) -> None:
    unknown = [name for name in config.sources if name not in SOURCES]
    if unknown or not config.sources:
        raise ValueError(f"unknown or empty sources {unknown or config.sources}; choose from {', '.join(SOURCES)}")
    for name in ("side", "num_samples", "latent_dim", "metric_images", "steps"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if config.side < 2:
        raise ValueError(f"side must be at least 2 (the feature network needs an image), got {config.side}")
    if config.num_samples < 2:
        raise ValueError(f"num_samples must be at least 2, got {config.num_samples}")
    for name in ("sigma", "lr"):
        if not getattr(config, name) > 0:
            raise ValueError(f"{name} must be positive, got {getattr(config, name)}")
    if config.betas is not None and (not config.betas or min(config.betas) <= 0):
        raise ValueError(f"betas must be a non-empty list of positive numbers, got {config.betas}")
    # Checked up front (they are used only after sources are written) so a typo writes nothing.
    convention_metrics(np.eye(1), config.perceptual_weight, config.neural_fraction)
    if "gaussian" in config.sources:
        parse_spectrum(config.spectrum, config.side**2)


def prepare_source(name: str, config: TheoryConfig, folder: Path) -> tuple[list[str], dict]:
    """Write the source's file into `folder`; return the trainer's data overrides and a description."""
    n = config.side**2
    common = ["data.test_fraction=0.0", f"data.seed={config.seed}", f"data.image_size={config.side}"]
    if name == "gaussian":
        eigenvalues = parse_spectrum(config.spectrum, n)
        covariance = covariance_with_spectrum(eigenvalues, config.seed)
        path = write_gaussian_source(folder / "gaussian.npz", covariance, np.full(n, 0.5), config.num_samples)
        description = {"kind": "Gaussian N(0.5, Q diag(spectrum) Q^T), Q a seeded random rotation",
                       "spectrum": config.spectrum, "population_eigenvalues": eigenvalues.tolist()}
        return ["data.name=gaussian", f"data.path={path}", *common], description
    images = natural_patch_images(config.side, config.num_samples, config.seed)
    path = folder / "natural.npz"
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, images=images.numpy())
    description = {"kind": f"natural-image patches (scikit-image training photos), grayscale, averaged down "
                           f"to {config.side}x{config.side}"}
    return ["data.name=npz", f"data.path={path}", *common], description


def default_betas(eigenvalues: np.ndarray, sigma: float) -> list[float]:
    """theta / lambda_1 log-spaced from 0.5 to 0.02 under the pixel metric, as beta = theta / sigma^2.

    Smaller water levels make many weak directions active, whose encoder gains sqrt(lambda - theta)
    / lambda are large and which plain Adam therefore needs many more steps to reach."""
    return [float(v) for v in eigenvalues[0] * np.geomspace(0.5, 0.02, 5) / sigma**2]


@torch.no_grad()
def measure_linear_vae(model, images: torch.Tensor) -> dict:
    """Rate (nats, exact given the vectors: no sampling), per-unit KL, posterior and mean variances,
    active units of a trained LinearVAE on `images`."""
    mu, logvar = model.encode(images)
    kl = kl_per_unit(mu, logvar)
    mean_variance = mu.double().var(0, unbiased=False)
    return {"rate": float(kl.sum(1).mean()), "rate_per_unit": kl.mean(0).tolist(),
            "posterior_variance": logvar.double().exp().mean(0).tolist(), "mean_variance": mean_variance.tolist(),
            "active_units": int((mean_variance > ACTIVE_THRESHOLD).sum())}


def compare(trained: dict, optimum) -> dict:
    """Relative errors of the trained rate and sorted posterior variances against the closed form."""
    predicted_variance = np.sort(optimum.posterior_variance)
    trained_variance = np.sort(np.asarray(trained["posterior_variance"]))
    variance_error = np.abs(trained_variance - predicted_variance) / predicted_variance
    rate_error = abs(trained["rate"] - optimum.rate) / optimum.rate if optimum.rate > 0 else abs(trained["rate"])
    return {"rate_relative_error": float(rate_error),
            "posterior_variance_max_relative_error": float(variance_error.max()),
            "active_units_difference": trained["active_units"] - int((optimum.mean_variance > ACTIVE_THRESHOLD).sum()),
            "within_tolerance": bool(rate_error < RATE_TOLERANCE and variance_error.max() < VARIANCE_TOLERANCE)}


def _predicted(optimum) -> dict:
    return {"rate": optimum.rate, "rate_per_unit": optimum.rate_per_unit.tolist(),
            "posterior_variance": optimum.posterior_variance.tolist(),
            "mean_variance": optimum.mean_variance.tolist(), "water_level": optimum.water_level,
            "active_units": int((optimum.mean_variance > ACTIVE_THRESHOLD).sum()),
            "active_units_theory": optimum.num_active, "distortion": optimum.distortion}


def _direction(change: float, tolerance: float) -> str:
    if abs(change) <= tolerance:
        return "unchanged"
    return "raised" if change > 0 else "lowered"


def perceptual_effect(runs: list[dict]) -> dict:
    """Per convention and beta: rate with the perceptual term minus the pixel-only rate, trained and
    predicted. A trained change smaller than the two runs' own distance from the closed form
    (|R_trained - R_predicted| summed) is reported as "unchanged": training error could explain it."""
    pixel = {run["beta"]: run for run in runs if run["convention"] == "pixel"}
    effect = {}
    for convention in ("additive", "convex"):
        rows = []
        for run in (r for r in runs if r["convention"] == convention):
            base = pixel[run["beta"]]
            trained = run["trained"]["rate"] - base["trained"]["rate"]
            predicted = run["predicted"]["rate"] - base["predicted"]["rate"]
            training_error = sum(abs(r["trained"]["rate"] - r["predicted"]["rate"]) for r in (run, base))
            rows.append({"beta": run["beta"], "pixel_rate_trained": base["trained"]["rate"],
                         "rate_trained": run["trained"]["rate"], "change_trained": trained,
                         "pixel_rate_predicted": base["predicted"]["rate"], "rate_predicted": run["predicted"]["rate"],
                         "change_predicted": predicted, "training_error": training_error,
                         "direction_trained": _direction(trained, training_error),
                         "direction_predicted": _direction(predicted, 1e-9)})
        effect[convention] = rows
    return effect


def _train_run(data_overrides: list[str], metric_path: Path, beta: float, config: TheoryConfig,
               run_dir: Path, batch_size: int):
    overrides = [*data_overrides, "model.name=linear", f"model.latent_dim={config.latent_dim}",
                 "loss.likelihood=gaussian", f"loss.sigma={config.sigma}", f"loss.beta={beta}",
                 f"loss.metric={metric_path}", f"train.steps={config.steps}", f"train.lr={config.lr}",
                 f"train.batch_size={batch_size}", f"train.seed={config.seed}", "train.device=cpu",
                 f"train.checkpoint_every={config.steps}", f"train.log_every={max(1, config.steps // 20)}",
                 "train.progress=false", f"train.eval_images={min(64, batch_size)}"]
    return train(resolve(None, None, overrides), run_dir)


def run_theory(config: TheoryConfig, out_dir: str | Path) -> dict:
    """Run the whole comparison into `out_dir` (theory.json, plots, sources/, runs/); returns theory.json."""
    check_config(config)
    # These models are tiny: with several threads, thread hand-offs cost far more than the arithmetic.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_theory(config, Path(out_dir).expanduser())
    finally:
        torch.set_num_threads(threads)


def _prepare_sources(config: TheoryConfig, out_dir: Path, network, network_description: dict) -> dict:
    """Per source: write its vectors and convention metrics under out_dir/sources; return
    (data overrides, images, covariance, metrics, betas, description) for the runs."""
    (out_dir / "sources").mkdir(parents=True, exist_ok=True)
    prepared = {}
    for name in config.sources:
        data_overrides, description = prepare_source(name, config, out_dir / "sources")
        images = load_dataset(resolve(None, None, data_overrides).data, "train").all_images().double()
        vectors = images.flatten(1)
        covariance = torch.cov(vectors.T, correction=0).numpy()
        metric, raw_trace = perceptual_metric(images[:config.metric_images], network)
        metrics = convention_metrics(metric, config.perceptual_weight, config.neural_fraction)
        for convention, matrix in metrics.items():
            np.save(out_dir / "sources" / f"{name}_{convention}_metric.npy", matrix)
        pixel_eigenvalues = np.linalg.eigvalsh(covariance)[::-1]
        betas = config.betas or default_betas(pixel_eigenvalues, config.sigma)
        prepared[name] = (data_overrides, images.float(), covariance, metrics, betas,
                          {**description, "num_vectors": len(vectors),
                           "empirical_eigenvalues": pixel_eigenvalues.tolist(),
                           "perceptual_metric": {**network_description, "raw_trace": raw_trace,
                                                 "metric_images": min(config.metric_images, len(images)),
                                                 "normalisation": "G * n / trace(G): mean eigenvalue 1"}})
    return prepared


def _report(config: TheoryConfig, results: dict) -> dict:
    """theory.json: the conventions it was computed under, the config, and the per-source results."""
    return {
        "units": "nats",
        "distortion": "(x - x_hat)^T M (x - x_hat) / (2 sigma^2): Gaussian likelihood with loss.metric = M",
        "water_level": "theta = beta * sigma^2",
        "weighting_conventions": CONVENTION_METRICS,
        "perceptual_metric": "G = E_x J^T W J of an LPIPS-style feature distance, normalised to mean eigenvalue 1",
        "active_units": f"Var_x(mu_j) > {ACTIVE_THRESHOLD} (trained and predicted alike)",
        "agreement": f"within_tolerance: rate within {RATE_TOLERANCE:.0%} and posterior variances within "
                     f"{VARIANCE_TOLERANCE:.0%} of the closed form",
        "config": asdict(config), "sources": results,
    }


def _run_theory(config: TheoryConfig, out_dir: Path) -> dict:
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty; choose a new output directory for vaelens theory")
    scale = scale_for_gaussian_likelihood(config.sigma)
    # Resolved before anything is written, so a bad --features leaves the output directory empty.
    network, network_description = feature_network(config.features, 1, config.side, config.seed)
    prepared = _prepare_sources(config, out_dir, network, network_description)
    total = sum(len(item[4]) * len(item[3]) for item in prepared.values())
    bar = tqdm(total=total, desc="theory: linear VAEs", disable=not config.progress, dynamic_ncols=True)
    results = {}
    try:
        for name, (data_overrides, images, covariance, metrics, betas, description) in prepared.items():
            runs = []
            for convention, matrix in metrics.items():
                metric_path = out_dir / "sources" / f"{name}_{convention}_metric.npy"
                for beta in betas:
                    run_dir = out_dir / "runs" / name / convention / f"beta_{beta:.6g}"
                    result = _train_run(data_overrides, metric_path, beta, config, run_dir, len(images))
                    trained = measure_linear_vae(result.model, images)
                    optimum = linear_vae_optimum(covariance, matrix, beta, scale, config.latent_dim)
                    runs.append({"convention": convention, "beta": beta, "run_dir": str(run_dir.relative_to(out_dir)),
                                 "trained": trained, "predicted": _predicted(optimum),
                                 "metric_eigenvalues": optimum.eigenvalues.tolist(),
                                 "agreement": compare(trained, optimum)})
                    bar.update(1)
            results[name] = {**description, "betas": betas, "runs": runs, "perceptual_effect": perceptual_effect(runs)}
    finally:
        bar.close()
    report = _report(config, results)
    atomic_write_json(out_dir / "theory.json", report)
    plot_theory(report, out_dir)
    return report
