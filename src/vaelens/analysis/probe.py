"""The mechanistic probe (docs/science.md, "Neural losses as metrics") on a trained run, under the run's own loss
metric.

For each image of a seeded random draw from the encoded set and each latent unit j, the probe
predicts the posterior variance sigma_j^2 = 1 / (1 + (2 / beta) (J^T M J)_jj) from the decoder
Jacobian J at mu(x) and M = half the Hessian of the run's reconstruction loss
(`objective.per_image_distortion`, adversarial term excluded) in the decoder's raw output space,
and compares it with the encoder's. The training loss is mean_b distortion + beta * KL, so the
loss scale is 1 and beta is the run's KL weight.

M is evaluated at the reconstruction g(mu(x)), not at x: for a Bernoulli decoder on binary data
the curvature at x (logits of +-infinity) is zero, while at g(mu) it is the Fisher information
p (1 - p) per pixel, finite. For a fixed-sigma Gaussian both points give the same M.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vaelens.metrics.variance import profile_uniformity
from vaelens.sampling import random_subset
from vaelens.theory.probe import ProbeResult, mechanistic_probe

PROBE_MAX_UNITS = 64
"""Above this many latent units (e.g. spatial latents) the probe is skipped: it costs one decoder JVP
and one Hessian-vector product of the loss per unit and image."""
PROBE_BATCH_SIZE = 64
"""Images per probe batch (each unit's JVP and Hessian-vector product run on a whole batch)."""
METRIC_AT = "reconstruction"
LOSS_DESCRIPTION = ("objective.per_image_distortion: the run's reconstruction loss per image (adversarial term "
                    "excluded) as a function of the raw decoder output (logits for bernoulli)")


def probe_skip_reason(model, objective, latent_units: int) -> str | None:
    """Why the probe cannot describe this model and loss, or None when it can."""
    if objective is None or not hasattr(objective, "per_image_distortion"):
        return "no training objective (e.g. a pretrained model): the probe needs the loss the model was trained with"
    if not hasattr(model, "decode"):
        return "the model has no decode(z): the probe needs the decoder's Jacobian"
    if objective.convention == "ldm" or objective.likelihood.name == "laplace":
        return ("the |x - x_hat| pixel term (laplace likelihood, ldm convention) has zero curvature away from "
                "x_hat = x and a kink at it: the second-order probe does not describe this loss")
    if not objective.beta > 0:
        return f"beta = {objective.beta}: without a KL term the optimal posterior variance is 0 for every unit"
    if latent_units > PROBE_MAX_UNITS:
        return (f"{latent_units} latent units > {PROBE_MAX_UNITS}: the probe costs one decoder JVP and one "
                "Hessian-vector product per unit and image")
    return None


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def probe_summary(result: ProbeResult) -> dict:
    """The `probe.*` keys of one ProbeResult; per-unit profiles ordered by mean curvature, descending."""
    curvature = result.metric_column_norms.mean(0)
    order = np.argsort(-curvature, kind="stable")
    summary = {f"probe.{name}": _finite_or_none(getattr(result, name)) for name in
               ("pearson_log", "spearman_log", "profile_pearson_log", "median_log_ratio", "iqr_log_ratio")}
    summary.update({
        "probe.negative_curvature_count": result.negative_curvature_count, "probe.beta": result.beta,
        "probe.scale": result.scale, "probe.metric_at": result.metric_at,
        "probe.unit_order": order.tolist(), "probe.curvature_profile": curvature[order].tolist(),
        "probe.predicted_profile": result.predicted_profile[order].tolist(),
        "probe.actual_profile": result.actual_profile[order].tolist(),
    })
    try:
        # Negative mean curvature (an indefinite Hessian) is clamped as the prediction clamps it.
        uniformity = profile_uniformity(np.clip(curvature, 0.0, None))
        summary["probe.curvature_spread"] = uniformity["normalized_entropy"]
        summary["probe.curvature_cv"] = uniformity["coefficient_of_variation"]
    except ValueError as error:
        summary["probe.curvature_spread_skipped"] = str(error)
    return summary


def run_probe(model, objective, data, encoded_indices: torch.Tensor, count: int, seed: int, device) -> dict:
    """`probe.*` keys for `count` images drawn (seeded) from the encoded ones, or `probe_skipped` with why."""
    units = math.prod(model.latent_shape) if hasattr(model, "latent_shape") else 0
    reason = probe_skip_reason(model, objective, units)
    if reason is not None:
        return {"probe_skipped": reason}
    chosen = encoded_indices[random_subset(len(encoded_indices), count, seed)]
    images = data.images(chosen).to(device)

    def decode(z):
        # Forward-mode AD does not need the parameters' backward graph.
        with torch.no_grad():
            return model.decode(z)

    result = mechanistic_probe(model.encode, decode, images, objective.beta, 1.0,
                               loss_fn=objective.per_image_distortion, metric_at=METRIC_AT,
                               batch_size=PROBE_BATCH_SIZE)
    return {"probe.num_images": len(chosen), "probe.seed": seed, "probe.loss": LOSS_DESCRIPTION,
            **probe_summary(result)}
