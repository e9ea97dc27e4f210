"""Which loss family a configuration belongs to: the one function the objective, the ensemble and the
report all use to name it."""

from __future__ import annotations

FAMILIES = ("pointwise", "+perceptual", "+adversarial", "+both", "+structural")
"""Display order. +both is perceptual and adversarial together; a structural (SSIM) term alone is
+structural, beside another neural term it is appended (e.g. +perceptual+structural)."""

NEURAL_FAMILIES = tuple(family for family in FAMILIES if family != "pointwise")


def _loss_values(config) -> dict:
    """The loss settings of a RunConfig, a LossConfig or a nested config dict (as in config.yaml)."""
    if isinstance(config, dict):
        loss = config.get("loss", config)
        return loss if isinstance(loss, dict) else {}
    loss = getattr(config, "loss", config)
    return {key: getattr(loss, key, None) for key in ("perceptual", "disc_weight", "ssim_weight")}


def loss_family(config) -> str:
    """pointwise, +perceptual, +adversarial, +both, +structural (or a combination such as
    +perceptual+structural) from the reconstruction terms a config switches on."""
    loss = _loss_values(config)
    perceptual = bool(loss.get("perceptual"))
    adversarial = float(loss.get("disc_weight") or 0.0) > 0
    structural = float(loss.get("ssim_weight") or 0.0) > 0
    if perceptual and adversarial:
        family = "+both"
    elif perceptual:
        family = "+perceptual"
    elif adversarial:
        family = "+adversarial"
    else:
        family = ""
    if structural:
        family += "+structural"
    return family or "pointwise"


def family_order(family: str) -> int:
    """Sort key placing known families in display order and combinations after them."""
    return FAMILIES.index(family) if family in FAMILIES else len(FAMILIES)


LEARNED_SIGMA_SUFFIX = "+learned-sigma"
"""Appended to the convention's name for a learned-sigma Gaussian pixel term: its learned sigma rescales the
pixel term against the rate and every other term during training (the normalisation PAPER.md section 1
names), so such runs are a weighting setting of their own and are compared only with each other."""


def convention_label(convention: str, likelihood: str | None) -> str:
    """The weighting setting a run is grouped and paired under: its convention, plus LEARNED_SIGMA_SUFFIX
    when the pixel likelihood is gaussian_learned."""
    return convention + LEARNED_SIGMA_SUFFIX if likelihood == "gaussian_learned" else convention


def split_convention_label(label: str) -> tuple[str, bool]:
    """(loss.convention, learned sigma?) of a convention label."""
    if label.endswith(LEARNED_SIGMA_SUFFIX):
        return label[: -len(LEARNED_SIGMA_SUFFIX)], True
    return label, False
