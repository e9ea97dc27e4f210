"""The reconstruction terms beside the pixel likelihood, each declared once: its name, the config field that
switches it on, whether the ensemble trainer can train it, and its builder.

A term's config fields (vaelens.config.sections) carry `term=<its name>`; `TERMS` declares the term itself.
Everything that depends on which terms a run has is derived from these two: the loss family a run belongs to
(losses/families.py), which fields a neural run and its pointwise baseline may differ in (report pairing), and
the ensemble's refusal. Adding a term is therefore its config fields and one `TermSpec` here with its builder.

A builder reads its LossConfig fields and returns a WeightedTerm: a per-image distance with a weight, which the
objective's weighting convention combines with the pixel term (conventions.py). The adversarial term has no
builder here: its weight is adaptive (a gradient-norm ratio at the decoder's last layer) and it trains a
network of its own, which the objective builds (losses/adversarial.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from vaelens.config.roles import config_fields
from vaelens.distances.structural import ms_ssim, ssim
from vaelens.losses.perceptual import build_perceptual

AUTO = "auto"
"""A weight measured before training by curvature matching (losses/calibration.py)."""
CONVEX_SHARE = "neural"
"""The `term=` of loss.neural_fraction: the convex mix's share of every mixed term, not a term of its own."""


@dataclass
class WeightedTerm:
    """One reconstruction term: d(x, x̂) per image, and how the convention weighs it."""

    name: str
    """Its name in metrics.jsonl and the objective's description (perceptual, structural)."""
    family: str
    """The declared term it computes (a TERMS name)."""
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


Builder = Callable[[object, tuple, object], "WeightedTerm | None"]
"""(LossConfig, image shape (C, H, W), device) -> the term, or None when the config leaves it off."""


@dataclass(frozen=True)
class TermSpec:
    """A reconstruction term as the rest of vaelens sees it."""

    name: str
    """Its name: its config fields say term=<name>, its runs' loss family is +<name> (or a combination)."""
    switch: str
    """The dotted config key that turns it on: the term is on when that value is set (not None, 0 or false)."""
    ensemble: bool
    """The ensemble trainer (vaelens.training.ensemble) can train runs that have it."""
    build: Builder | None
    """Its builder; None for a term the objective builds itself (the adversarial term)."""


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


def _build_perceptual(config, image_shape, device) -> WeightedTerm:
    perceptual = build_perceptual(config.perceptual, config.lpips_random_backbone, image_shape, device)
    return perceptual_term(perceptual, config.perceptual_weight)


def _build_structural(config, image_shape, device) -> WeightedTerm:
    return structural_term(config.ssim_kind, config.ssim_weight)


TERMS: dict[str, TermSpec] = {spec.name: spec for spec in (
    TermSpec("perceptual", "loss.perceptual", ensemble=False, build=_build_perceptual),
    TermSpec("adversarial", "loss.disc_weight", ensemble=False, build=None),
    TermSpec("structural", "loss.ssim_weight", ensemble=False, build=_build_structural),
)}
"""Every reconstruction term beside the pixel likelihood, in display order."""


def _setting(config, dotted: str):
    """A dotted config value of a RunConfig, a LossConfig or a nested config dict (as in config.yaml); a loss
    dict or LossConfig alone answers loss.* keys."""
    section, name = dotted.split(".", 1)
    if isinstance(config, dict):
        values = config.get(section, config)
        return values.get(name) if isinstance(values, dict) else None
    values = getattr(config, section, config)
    return getattr(values, name, None)


def active_terms(config) -> tuple[str, ...]:
    """The names of the terms a config switches on, in TERMS order (RunConfig, LossConfig or config dict)."""
    return tuple(name for name, spec in TERMS.items() if bool(_setting(config, spec.switch)))


def build_terms(config, image_shape, device) -> list[WeightedTerm]:
    """The weighted terms a LossConfig switches on, in TERMS order (the adversarial term is the objective's)."""
    on = active_terms(config)
    return [TERMS[name].build(config, image_shape, device) for name in on if TERMS[name].build is not None]


def ensemble_refusal(config) -> str | None:
    """Why the ensemble trainer cannot train `config` (a term it does not support is on), or None."""
    refused = [TERMS[name] for name in active_terms(config) if not TERMS[name].ensemble]
    if not refused:
        return None
    settings = ", ".join(f"{spec.switch}={_setting(config, spec.switch)!r}" for spec in refused)
    supported = [name for name, spec in TERMS.items() if spec.ensemble]
    scope = f"pointwise objectives and the {', '.join(supported)} term(s)" if supported else "pointwise objectives"
    return (f"the ensemble executor supports {scope} only: it cannot train the "
            f"{', '.join(spec.name for spec in refused)} term(s), and this config sets {settings}; train it with "
            "vaelens.training.train (the local executor)")


def compared_fields() -> tuple[str, ...]:
    """The term names a config field may declare: every registered term, and the convex share."""
    return (*TERMS, CONVEX_SHARE)


def undeclared_terms() -> list[str]:
    """Config fields whose term= names no registered term, and terms whose switch is not one of their own
    fields: each a line; a test keeps this empty, so a new term cannot be half declared."""
    problems = [f"{key}: term={item.metadata['term']!r} is not in vaelens.losses.terms.TERMS"
                for key, item in config_fields() if item.metadata.get("term") not in (None, *compared_fields())]
    own = {key: item.metadata.get("term") for key, item in config_fields()}
    problems += [f"TERMS[{name!r}].switch {spec.switch!r} is not a config field declared with term={name!r}"
                 for name, spec in TERMS.items() if own.get(spec.switch) != name]
    return problems
