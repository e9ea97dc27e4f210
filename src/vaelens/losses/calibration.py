"""Calibrated neural weights (docs/science.md, "Objectives and weighting conventions"): w such that w times a
neural term has the average curvature of the pixel term.

Near a good reconstruction every loss is a quadratic form d ≈ δ^T M δ with M half its Hessian in x̂.
The calibrated weight is

    w = E_x tr M_pixel(x) / E_x tr M_neural(x),

each trace a Hutchinson estimate (Rademacher probes v, tr M ≈ mean_v v^T M v) over a fixed seeded
batch of training images. Then the convex mix (1 - a) M_pixel + a w M_neural keeps the total curvature
and only redistributes it over directions (the linear theory's convex case), and the additive
M_pixel + w M_neural doubles it with equal shares. The neural term is measured at x̂ = x, where its
gradient vanishes and M is its pull-back metric; the pixel term where its curvature is finite (x̂ = x
for Gaussians, the batch's mean image for Bernoulli: the likelihood says which).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from vaelens.distances.curvature import hutchinson_trace
from vaelens.sampling import random_subset

CALIBRATION_IMAGES = 32
"""Training images the curvatures are averaged over."""
CALIBRATION_PROBES = 4
"""Rademacher probes per image (exact for a diagonal metric, such as a Gaussian pixel term's)."""
CALIBRATION_SEED = 0
"""Seed of the image draw and the probes: every run of a sweep with the same data and networks gets the
same weight, whatever its beta and seed."""
RULE = ("w = E_x tr M_pixel / E_x tr M_neural, M = half the Hessian in x_hat, traces by Hutchinson's "
        "estimator with Rademacher probes")


@dataclass(frozen=True)
class Calibration:
    """A calibrated weight and how it was measured."""

    weight: float
    """w: the factor on the neural term."""
    pixel_curvature: float
    """E_x tr M_pixel (per image, summed over pixels)."""
    neural_curvature: float
    """E_x tr M_neural of the unweighted neural term."""
    images: int
    """Calibration images (a seeded random draw of the training split)."""
    probes: int
    """Rademacher probes per image."""
    seed: int
    """Seed of the image draw and the probes."""
    pixel_point: str
    """Where the pixel term's curvature was measured."""
    neural_point: str
    """Where the neural term's curvature was measured."""
    rule: str = RULE
    """The rule, in words."""

    def describe(self) -> dict:
        return asdict(self)


def calibration_images(data, seed: int = CALIBRATION_SEED, count: int = CALIBRATION_IMAGES) -> torch.Tensor:
    """A seeded random draw of `count` training images (all of them when there are fewer)."""
    return data.images(random_subset(data.num_images, count, seed))


def calibrate_weight(pixel_term, neural_term, images: torch.Tensor, pixel_point: torch.Tensor, pixel_where: str,
                     probes: int = CALIBRATION_PROBES, seed: int = CALIBRATION_SEED) -> Calibration:
    """The weight making `neural_term(x, x̂)` match the average curvature of `pixel_term(x, x̂)` (both per image,
    in image space); the pixel curvature is taken at `pixel_point` (described by `pixel_where`)."""
    images = images.float()
    generator = torch.Generator(images.device).manual_seed(seed)
    pixel = float(hutchinson_trace(pixel_term, images, pixel_point.float(), probes, generator).mean())
    neural = float(hutchinson_trace(neural_term, images, images, probes, generator).mean())
    if not (neural > 0 and pixel > 0):
        raise ValueError(f"cannot calibrate the neural weight: the curvatures came out pixel {pixel:.4g}, neural "
                         f"{neural:.4g} (both must be positive); give loss.perceptual_weight a number instead")
    return Calibration(weight=pixel / neural, pixel_curvature=pixel, neural_curvature=neural, images=len(images),
                       probes=probes, seed=seed, pixel_point=pixel_where,
                       neural_point="x_hat = x (its gradient vanishes there: the pull-back metric)")
