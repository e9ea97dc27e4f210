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
