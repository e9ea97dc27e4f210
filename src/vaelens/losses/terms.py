"""Reconstruction terms beside the pixel likelihood: each a named per-image distance with a weight and a family.

The objective holds a list of them and its weighting convention combines them with the pixel term
(conventions.py). Adding a term is one builder here and one entry in TERM_BUILDERS: the builder reads
its LossConfig fields and returns a WeightedTerm, or None when the term is off. The adversarial term is
not one of them: its weight is adaptive (a gradient-norm ratio at the decoder's last layer) and it
trains a network of its own (losses/adversarial.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from vaelens.distances.structural import ms_ssim, ssim

AUTO = "auto"
"""A weight measured before training by curvature matching (losses/calibration.py)."""


@dataclass
class WeightedTerm:
    """One reconstruction term: d(x, x̂) per image, and how the convention weighs it."""

    name: str
    """Its name in metrics.jsonl and the objective's description (perceptual, structural)."""
    family: str
    """The config-field term it belongs to (vaelens.config.fields: perceptual, structural)."""
    distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    """(x, x̂) in image space -> (B,) per-image distance."""
    weight: float | str
    """Its weight, or "auto" for a calibrated one."""
    mixed: bool
    """Inside the convex mix (the neural share a) rather than added outside it."""
    autocast: bool = False
    """May run under bf16 autocast (train.bf16 on CUDA): a network, not a pixel formula."""
    description: dict = field(default_factory=dict)
    """What a reader needs to know about it (network, backbone, ...)."""
    source: object = None
    """The object computing the distance (e.g. the PerceptualTerm), for callers that need its name."""
    weight_key: str = ""
    """The LossConfig field holding the weight (perceptual_weight, ssim_weight): its name in descriptions."""

    @property
    def calibrated(self) -> bool:
        return self.weight == AUTO


def structural_distance(kind: str):
    """1 - SSIM (or 1 - MS-SSIM) per image, differentiable."""
    measure = {"ssim": ssim, "ms_ssim": ms_ssim}[kind]
    return lambda x, x_hat: 1.0 - measure(x, x_hat.clamp(0, 1))


def perceptual_term(perceptual, weight: float | str) -> WeightedTerm:
    """A perceptual distance (LPIPS or a feature network; losses/perceptual.py) as a weighted term."""
    return WeightedTerm("perceptual", "perceptual", perceptual, weight if weight == AUTO else float(weight),
                        mixed=True, autocast=True, description=perceptual.describe(), source=perceptual,
                        weight_key="perceptual_weight")


def structural_term(kind: str, weight: float) -> WeightedTerm:
    """1 - SSIM per image (added outside the convex mix, with its own weight, in every convention)."""
    return WeightedTerm("structural", "structural", structural_distance(kind), float(weight), mixed=False,
                        description={"structural": f"1 - {kind}"}, weight_key="ssim_weight")


def _build_perceptual(config, image_shape, device) -> WeightedTerm | None:
    if not config.perceptual:
        return None
    from vaelens.losses.perceptual import build_perceptual

    perceptual = build_perceptual(config.perceptual, config.lpips_random_backbone, image_shape, device)
    return perceptual_term(perceptual, config.perceptual_weight)


def _build_structural(config, image_shape, device) -> WeightedTerm | None:
    return structural_term(config.ssim_kind, config.ssim_weight) if config.ssim_weight > 0 else None


TERM_BUILDERS: dict[str, Callable] = {"perceptual": _build_perceptual, "structural": _build_structural}
"""Term name -> builder(LossConfig, image_shape, device) -> WeightedTerm or None (off)."""


def build_terms(config, image_shape, device) -> list[WeightedTerm]:
    """The reconstruction terms a LossConfig switches on, in TERM_BUILDERS order."""
    return [term for build in TERM_BUILDERS.values() if (term := build(config, image_shape, device)) is not None]
