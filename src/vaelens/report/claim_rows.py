"""What claims.json holds, typed: one `ClaimRow` per tested result, the runs the plateau check left out, and the
whole `ClaimsReport` with the rules its rows were decided by. `to_json` writes claims.json's layout and
`from_json` reads it back, so the report, the terminal and STUDY.md all work on these objects."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

POOLED = "all"
"""The `beta` of a row pooled over the beta grid (matched beta) or compared along curves (matched rate and
distortion)."""


@dataclass
class Overlap:
    """The range a curve comparison averaged over: every compared seed's curves of both families cover it."""

    variable: str
    """The quantity interpolated along (rate, distortion.mse)."""
    units: str
    """Its units."""
    low: float | None = None
    """Lower end (None: the curves share no range)."""
    high: float | None = None
    """Upper end."""


@dataclass
class ClaimRow:
    """One tested result: a claim's metric in one comparison, data set, convention and neural family (and beta)."""

    claim: str
    """C1 to C4."""
    comparison: str
    """matched_beta, matched_rate or matched_distortion."""
    metric: str
    """The quantity compared (vaelens.quantities)."""
    metric_key: str | None
    """The analysis.json key(s) it was read from, joined by " | " when runs differ."""
    metric_units: str
    """Its units."""
    dataset: str
    """Data set and image size, e.g. natural-32."""
    convention: str
    """The neural runs' weighting setting."""
    baseline_convention: str
    """The pointwise runs' weighting setting (the convex mix is compared with additive pointwise runs)."""
    neural_family: str
    """+perceptual, +adversarial, +both, ..."""
    beta: float | str
    """The beta of a per-beta row, or POOLED."""
    effect: float | None
    """Mean over seeds of neural minus pointwise."""
    ci_low: float | None
    """Lower end of the raw 95% Student t interval."""
    ci_high: float | None
    """Upper end."""
    p_value: float | None
    """Two-sided t-test p of mean 0 (raw); None with fewer than 2 seeds or no spread."""
    n_pairs: int
    """Seeds compared."""
    seeds: list[int]
    """Which seeds."""
    overlap: Overlap | None
    """What a curve comparison averaged over; None at matched beta."""
    predicted_sign: str
    """negative, positive or non-zero: what the claim predicts."""
    test_family: str = "exploratory"
    """primary | secondary | exploratory (vaelens.claims_design): which family of tests the row belongs to."""
    sd: float | None = None
    """Sample standard deviation (ddof 1) of the paired differences over seeds: the noise a power plan reads."""
    p_adjusted: float | None = None
    """The difference p adjusted within its family (Holm in the primary, Benjamini-Hochberg in the secondary); None
    for exploratory rows and rows without a p-value."""
    p_sign_flip: float | None = None
    """Two-sided exact sign-flip p of mean 0 (raw), which assumes no normality."""
    p_sign_flip_adjusted: float | None = None
    """The sign-flip p adjusted like p_adjusted (a check on the t test's normality, not a second decision)."""
    bound: float | None = None
    """The declared smallest effect of interest (equivalence bound), metric units; None where none is declared."""
    p_equivalence: float | None = None
    """TOST p of |effect| >= bound (raw)."""
    p_equivalence_adjusted: float | None = None
    """The TOST p adjusted within the family, alongside the difference p."""
    verdict: str = "inconclusive"
    """supported | contradicted | no effect | inconclusive; exploratory for rows outside both families."""
    verdict_basis: str = ""
    """What decided it: adjusted, too_few_seeds, no_spread, saturated, bounded_by_sample, mixed_views, no_overlap,
    too_few_betas, exploratory."""
    verdict_reason: str = ""
    """The decision in words."""
    seeds_not_on_plateau: list[int] = field(default_factory=list)
    """Seeds whose runs at this row's betas the plateau check left out."""
    betas_pooled: list = field(default_factory=list)
    """The betas a pooled matched-beta row averaged over (each with at least 2 seeds); empty for other rows."""
    imputed: list = field(default_factory=list)
    """[seed, beta] cells of a pooled row filled from the additive seed + beta model (a run missing there)."""
    seeds_dropped: list = field(default_factory=list)
    """{"seed", "reason"} for each seed the row could not use: its curves miss the rate window, too few of its betas,
    a pair read from different views."""

    @property
    def pooled(self) -> bool:
        return self.beta == POOLED

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict) -> ClaimRow:
        """A row of claims.json; rows of an earlier version (3: Holm over every row) read with p_holm as p_adjusted."""
        values = dict(values)
        if "p_holm" in values:
            values["p_adjusted"] = values.pop("p_holm")
        overlap = values.get("overlap")
        return cls(**{**values, "overlap": Overlap(**overlap) if overlap is not None else None})


@dataclass
class LeftOutRun:
    """A run the paired plateau check found still improving."""

    run: str
    """Its id."""
    dataset: str
    convention: str
    neural_family: str
    beta: float | None
    seed: int | None
    relative_improvement: float | None
    """The check's figure: improvement over the judged stretch, relative to the objective's origin."""
    stretch: list
    """[from step, to step] of the judged stretch."""


@dataclass
class PlateauOutcome:
    """How the claims treated runs still improving."""

    policy: str
    """The rule, in words."""
    leave_out_still_improving: bool
    """Whether such runs were left out."""
    runs_still_improving: list[LeftOutRun]
    """Every usable run the check found still improving."""
    runs_left_out: list[LeftOutRun]
    """Those left out of the claims (all of them, or none when the sweep keeps them)."""


@dataclass
class ClaimsReport:
    """claims.json: the rows and the rules they were decided by."""

    version: int
    units: str
    confidence: float
    alpha: float
    comparisons: dict[str, str]
    """Comparison name -> how its effect is computed."""
    interval: str
    multiplicity: dict
    """The adjustment: method, alpha, family, p_value, adjustment, controls, tests."""
    verdict_rule: str
    plateau: PlateauOutcome
    claims: dict
    """Claim id -> statement, metrics, primary metric, predicted sign, comparisons."""
    results: list[ClaimRow]
    """Every row, per-beta rows included."""
    design: dict = field(default_factory=dict)
    """The declared design (vaelens.claims_design) with each family's size, recorded before any result."""
    power: list = field(default_factory=list)
    """Each primary endpoint's power at this study's seed count (vaelens.report.planner), from its own spread."""

    def pooled_rows(self) -> list[ClaimRow]:
        """The results pooled over betas (matched-beta pooled rows and every curve comparison): the claims table."""
        return [row for row in self.results if row.pooled]

    def family_rows(self, family: str) -> list[ClaimRow]:
        """The pooled rows of one test family (primary, secondary, exploratory), in report order."""
        return [row for row in self.pooled_rows() if row.test_family == family]

    def to_json(self) -> dict:
        values = dataclasses.asdict(self)
        # the design first: it was declared before the data
        return {"version": values.pop("version"), "design": values.pop("design"), **values}

    @classmethod
    def from_json(cls, values: dict) -> ClaimsReport:
        plateau = values["plateau"]
        outcome = PlateauOutcome(plateau["policy"], plateau["leave_out_still_improving"],
                                 [LeftOutRun(**run) for run in plateau["runs_still_improving"]],
                                 [LeftOutRun(**run) for run in plateau["runs_left_out"]])
        return cls(**{**values, "plateau": outcome, "results": [ClaimRow.from_json(row) for row in values["results"]]})
