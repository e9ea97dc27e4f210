"""Which loss family a configuration belongs to, derived from the terms it switches on (losses/terms.py): the
one rule the objective, the ensemble and the report all use to name it, so a new term cannot be forgotten."""

from __future__ import annotations

from vaelens.losses.terms import TERMS, active_terms

POINTWISE = "pointwise"
"""The family of a run with no term beside its pixel likelihood: every claim's baseline."""
BOTH = ("perceptual", "adversarial")
"""The terms of the paper's combined neural loss, whose family is named +both."""


def family_name(terms) -> str:
    """The family of a run with these terms on: pointwise; +<term> for one; +both for perceptual with
    adversarial; other terms appended in TERMS order (e.g. +perceptual+structural, +both+structural)."""
    terms = [name for name in TERMS if name in set(terms)]
    if not terms:
        return POINTWISE
    if all(name in terms for name in BOTH):
        terms = ["both", *(name for name in terms if name not in BOTH)]
    return "".join(f"+{name}" for name in terms)


def _families() -> tuple[str, ...]:
    singles = [family_name([name]) for name in TERMS]
    after = max(singles.index(family_name([name])) for name in BOTH) + 1
    return (POINTWISE, *singles[:after], family_name(BOTH), *singles[after:])


FAMILIES = _families()
"""Display order: pointwise, each single term's family in TERMS order, +both right after its two members.
Combinations (e.g. +perceptual+structural) sort after these."""


def loss_family(config) -> str:
    """The family of a RunConfig, a LossConfig or a nested config dict (as in config.yaml)."""
    return family_name(active_terms(config))


def family_order(family: str) -> int:
    """Sort key placing known families in display order and combinations after them."""
    return FAMILIES.index(family) if family in FAMILIES else len(FAMILIES)


LEARNED_SIGMA_SUFFIX = "+learned-sigma"
"""Appended to the convention's name for a learned-sigma Gaussian pixel term: its learned sigma rescales the
pixel term against the rate and every other term during training (the normalisation that lets a neural term
lower the rate; docs/science.md), so such runs are a weighting setting of their own and are compared only with
each other."""


def convention_label(convention: str, likelihood: str | None) -> str:
    """The weighting setting a run is grouped and paired under: its convention, plus LEARNED_SIGMA_SUFFIX
    when the pixel likelihood is gaussian_learned."""
    return convention + LEARNED_SIGMA_SUFFIX if likelihood == "gaussian_learned" else convention


def split_convention_label(label: str) -> tuple[str, bool]:
    """(loss.convention, learned sigma?) of a convention label."""
    if label.endswith(LEARNED_SIGMA_SUFFIX):
        return label[: -len(LEARNED_SIGMA_SUFFIX)], True
    return label, False
