"""From tested rows to outcomes under the declared design (vaelens.claims_design): each pooled row's family, the
adjustment within each family, and each row's outcome with the reason in words (docs/claims.md)."""

from __future__ import annotations

from dataclasses import dataclass

from vaelens.claims_design import ClaimsDesign, Endpoint, Setting
from vaelens.report.claim_rows import ClaimRow
from vaelens.report.statistics import EXPLORATORY, bh_adjust, step_down_adjust, verdict

PRIMARY, SECONDARY = "primary", "secondary"
FAMILIES = (PRIMARY, SECONDARY, EXPLORATORY)
FAMILY_RULES = {
    PRIMARY: "one endpoint per claim in the primary setting; Holm step-down over their difference and equivalence "
             "tests, where a difference and an equivalence null of one endpoint cannot both hold, so the multiplier "
             "counts the endpoints still holding an unrejected test (Shaffer's restriction): the probability of any "
             "false decision in the family is at most alpha",
    SECONDARY: "the same endpoints in every other setting; Benjamini-Hochberg over their difference and equivalence "
               "tests: the expected share of false decisions among the family's decisions is at most alpha (not the "
               "probability of any)",
    EXPLORATORY: "every other row (per-beta rows, the other metrics of a claim, matched distortion, the entropy at "
                 "matched rate): raw intervals and p-values, no decision",
}


@dataclass
class Tested:
    """A row before its family's adjustment, with what decides it besides its p-values."""

    row: ClaimRow
    withheld: tuple[str, str] | None
    """(basis, reason) when an estimator limit or the curves' layout rules out a verdict."""
    direction: int
    """-1, +1 or 0: the sign the claim predicts."""
    endpoint: Endpoint | None = None
    """The declared endpoint the row measures (in some setting); None: not an endpoint."""


def assign_families(tested: list[Tested], primary: Setting) -> None:
    """Set each row's test_family: an endpoint's pooled row in the primary setting is primary, in another setting
    secondary; every other row exploratory. The endpoint's bound goes onto its decided rows."""
    for item in tested:
        row = item.row
        if item.endpoint is None or not row.pooled:
            row.test_family = EXPLORATORY
            continue
        in_primary = (row.dataset, row.convention, row.neural_family) == (
            primary.dataset, primary.convention, primary.neural_family)
        row.test_family = PRIMARY if in_primary else SECONDARY
        row.bound = item.endpoint.bound


def _decidable(item: Tested, min_seeds: int) -> bool:
    """Rows whose p-values join their family: enough seeds and a p-value (withheld rows join too: it only makes the
    adjustment more conservative, and their numbers stay on record)."""
    return item.row.p_value is not None and item.row.n_pairs >= min_seeds


def adjust(tested: list[Tested], design: ClaimsDesign) -> None:
    """Adjust each decided family's difference and equivalence p-values together (FAMILY_RULES)."""
    for family, method in ((PRIMARY, "holm"), (SECONDARY, "bh")):
        members = [item.row for item in tested if item.row.test_family == family and _decidable(item, design.min_seeds)]
        tests = [(index, "difference", row.p_value) for index, row in enumerate(members)]
        tests += [(index, "equivalence", row.p_equivalence) for index, row in enumerate(members)
                  if row.p_equivalence is not None]
        p_values = [p for _, _, p in tests]
        adjusted = (step_down_adjust(p_values, [index for index, _, _ in tests]) if method == "holm"
                    else bh_adjust(p_values))
        for (index, kind, _), value in zip(tests, adjusted):
            setattr(members[index], "p_adjusted" if kind == "difference" else "p_equivalence_adjusted", value)
        if family == PRIMARY:  # the sign-flip p beside the t p, adjusted alike: a check on normality
            flips = [row for row in members if row.p_sign_flip is not None]
            for row, value in zip(flips, step_down_adjust([row.p_sign_flip for row in flips])):
                row.p_sign_flip_adjusted = value


def _reason(row: ClaimRow, alpha: float) -> str:
    name = "Holm" if row.test_family == PRIMARY else "BH"
    text = f"{name}-adjusted p = {row.p_adjusted:.3g} {'<' if row.p_adjusted < alpha else '>='} {alpha}"
    if row.p_equivalence_adjusted is not None:
        text += (f"; equivalence within +/-{row.bound:g}: adjusted TOST p = {row.p_equivalence_adjusted:.3g} "
                 f"{'<' if row.p_equivalence_adjusted < alpha else '>='} {alpha}")
    elif row.bound is None:
        text += "; no bound is declared, so a null result cannot be read as no effect"
    return text


def _outcome_reason(row: ClaimRow, direction: int, alpha: float) -> str:
    reason = _reason(row, alpha)
    if row.verdict == "supported":
        reason += ": a difference, on the predicted side" if direction else ": a difference"
    elif row.verdict == "contradicted":
        reason += ": a difference, on the side opposite to the prediction"
    elif row.verdict == "no effect":
        reason += ": the effect is within the bound"
        if row.p_adjusted < alpha:
            reason += " (a difference from 0 is detected, smaller than the smallest effect of interest)"
    return reason


def decide(item: Tested, design: ClaimsDesign) -> None:
    """Fill a row's verdict, verdict_basis and verdict_reason (after `adjust`)."""
    row = item.row
    if row.test_family == EXPLORATORY:  # not decided; what would withhold it is still said
        row.verdict = EXPLORATORY
        row.verdict_basis, row.verdict_reason = item.withheld or (EXPLORATORY, "exploratory: raw interval and p only")
        return
    if item.withheld:
        row.verdict, (row.verdict_basis, row.verdict_reason) = "inconclusive", item.withheld
        return
    if row.n_pairs < design.min_seeds:
        row.verdict, row.verdict_basis = "inconclusive", "too_few_seeds"
        row.verdict_reason = f"{row.n_pairs} seed(s): a decision needs at least {design.min_seeds}"
        return
    if row.p_value is None:
        row.verdict, row.verdict_basis = "inconclusive", "no_spread"
        row.verdict_reason = ("the differences have no spread over seeds: the noise is not estimated, so neither is "
                              "a p-value")
        return
    row.verdict = verdict(row.p_adjusted, row.effect, item.direction, design.alpha, row.p_equivalence_adjusted)
    row.verdict_basis = "adjusted"
    row.verdict_reason = _outcome_reason(row, item.direction, design.alpha)


def family_sizes(tested: list[Tested], design: ClaimsDesign) -> dict[str, int]:
    """Rows per family, and how many of them have p-values in their family's adjustment."""
    sizes = {}
    for family in FAMILIES:
        members = [item for item in tested if item.row.test_family == family]
        sizes[family] = {"rows": len(members),
                         "adjusted_rows": sum(_decidable(item, design.min_seeds) for item in members)
                         if family != EXPLORATORY else 0}
    return sizes
