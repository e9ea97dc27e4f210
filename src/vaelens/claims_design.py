"""The claims' design, declared before the data: which endpoint decides each claim, in which setting, within what
bound an effect is too small to matter, over which rate window matched-rate effects are averaged, and how each
family of tests is adjusted (docs/claims.md, "Families").

- The *primary* family is one endpoint per claim in one setting (data set, convention, neural family): Holm over
  those endpoints (each with its difference test and, where a bound is declared, its equivalence test; the two
  cannot both be false alarms, so the step-down multiplier counts endpoints, not tests).
- The *secondary* family is the same endpoints in every other setting the sweep has: Benjamini-Hochberg within it,
  which bounds the expected share of false decisions among the secondary ones (not the chance of any).
- Everything else (per-beta rows, the second isotropy statistic, I(x; z), matched distortion, the entropy at matched
  rate) is exploratory: raw intervals, no decision.

A sweep spec declares its design (its `claims` section; vaelens.study declares the study's) and the sweep index
records it, so `vaelens report` decides
by the same rule; a sweep that declares none gets DEFAULT_DESIGN, whose primary setting is picked from the sweep's
layout (never from its numbers) by `resolve_primary`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

ALPHA = 0.05
"""Family-wise error rate of the primary family (false-discovery rate of the secondary one)."""
MIN_SEEDS = 3
"""Fewest seeds a decided row rests on: with two, the t test has one degree of freedom and a sign-flip test cannot
go below 0.5, so no family's threshold is within reach by anything but chance agreement."""


@dataclass(frozen=True)
class Endpoint:
    """The one result that decides a claim."""

    claim: str
    """C1 to C4."""
    comparison: str
    """matched_beta or matched_rate (the claims' COMPARISONS)."""
    metric: str
    """The quantity compared (vaelens.quantities)."""
    bound: float | None
    """Smallest effect of interest, in the metric's units: |effect| below it is "no effect" when the equivalence
    test decides so; None: no equivalence test, a null result stays inconclusive."""
    bound_reason: str = ""
    """Why this bound: what a difference of that size would mean."""
    key: str | None = None
    """The analysis.json key the endpoint must be read from in every run it uses (a fixed unit set: the active-unit
    view, with no fall-back to all units); pairs read from another key are withheld. None: the quantity's keys."""


@dataclass(frozen=True)
class Setting:
    """Where the primary family is tested."""

    dataset: str | None
    """Data set and image size as rows name it (natural-32); None: picked by `resolve_primary` from the layout."""
    convention: str = "additive"
    """The neural runs' weighting setting."""
    neural_family: str = "+perceptual"
    """The neural family compared with pointwise."""

    def label(self) -> str:
        return f"{self.dataset} {self.convention} {self.neural_family}"


ENDPOINTS = (
    Endpoint("C1", "matched_beta", "rate", 0.5,
             "half a nat per image (0.72 bits), a few percent of the 10-55 nats the published study's models "
             "reach"),
    Endpoint("C2", "matched_beta", "isoscore_active", 0.05,
             "5% of IsoScore's [0, 1] range, a third of the largest C2 effect the published study measured (-0.15)",
             key="geometry_active.isoscore"),
    Endpoint("C3", "matched_beta", "variance_entropy", 0.02,
             "2% of the normalised entropy's [0, 1] range, under half the largest C3 effect the published study "
             "measured (+0.044)"),
    Endpoint("C4", "matched_rate", "isoscore_active", 0.05, "the C2 bound, at equal rate",
             key="geometry_active.isoscore"),
)
"""One endpoint per claim. IsoScore is the one isotropy statistic: with equal active-unit counts the participation
ratio is an affine function of it (IsoScore = (PR - 1) / (n - 1)), so testing both would count one test twice."""


@dataclass(frozen=True)
class ClaimsDesign:
    """The declared families, endpoints, bounds and windows (module docstring)."""

    primary_setting: Setting = field(default_factory=lambda: Setting(None))
    """Where the primary family is tested."""
    endpoints: tuple[Endpoint, ...] = ENDPOINTS
    """One per claim."""
    rate_windows: dict = field(default_factory=dict)
    """Data set -> (low, high) rate in nats over which matched-rate rows average; a seed whose curves do not cover it
    leaves the row (and is listed). A data set not listed: the range every seed covers, dropping the seeds that
    leave no common range."""
    alpha: float = ALPHA
    """Family-wise error rate of the primary family and false-discovery rate of the secondary one."""
    min_seeds: int = MIN_SEEDS
    """Fewest seeds a decided row rests on."""
    declared_by: str = "the default design (no design was declared for this sweep)"
    """Who declared it: a study spec, or the default."""

    def endpoint(self, claim: str, comparison: str, metric: str) -> Endpoint | None:
        """The endpoint of (claim, comparison, metric), or None: an exploratory row."""
        return next((endpoint for endpoint in self.endpoints
                     if (endpoint.claim, endpoint.comparison, endpoint.metric) == (claim, comparison, metric)), None)

    def rate_window(self, dataset: str) -> tuple[float, float] | None:
        window = self.rate_windows.get(dataset)
        return None if window is None else (float(window[0]), float(window[1]))

    def to_json(self) -> dict:
        values = dataclasses.asdict(self)
        values["endpoints"] = list(values["endpoints"])
        values["rate_windows"] = {name: list(window) for name, window in self.rate_windows.items()}
        return values

    @classmethod
    def from_json(cls, values: dict | None) -> ClaimsDesign:
        """A design from its JSON (sweep.json's claims.design or claims.json's design); None: DEFAULT_DESIGN.
        An unknown key names itself and the valid ones."""
        if values is None:
            return DEFAULT_DESIGN
        known = {item.name for item in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known - set(RECORDED_KEYS))
        if unknown:
            raise ValueError(f"unknown claims design key(s) {unknown}; valid: {sorted(known)}")
        values = {key: value for key, value in values.items() if key in known}
        if "primary_setting" in values:
            values["primary_setting"] = Setting(**values["primary_setting"])
        if "endpoints" in values:
            values["endpoints"] = tuple(Endpoint(**endpoint) for endpoint in values["endpoints"])
        if "rate_windows" in values:
            values["rate_windows"] = {name: tuple(window) for name, window in values["rate_windows"].items()}
        return validated(cls(**values))


def validated(design: ClaimsDesign) -> ClaimsDesign:
    """`design`, after checking it declares one endpoint per claim, positive bounds and increasing windows."""
    claims = [endpoint.claim for endpoint in design.endpoints]
    if len(set(claims)) != len(claims):
        raise ValueError(f"a design declares one endpoint per claim; got {claims}")
    for endpoint in design.endpoints:
        if endpoint.bound is not None and not endpoint.bound > 0:
            raise ValueError(f"{endpoint.claim}: the smallest effect of interest must be positive, "
                             f"got {endpoint.bound}")
    for name, (low, high) in design.rate_windows.items():
        if not 0 < low < high:
            raise ValueError(f"rate window of {name} must be 0 < low < high nats, got ({low}, {high})")
    if design.min_seeds < 2:
        raise ValueError(f"min_seeds must be at least 2, got {design.min_seeds}")
    return design


RECORDED_KEYS = ("families", "primary_setting_chosen_by")
"""Keys claims.json adds to a design's record (each family's rule and size, how the primary setting was chosen); a
design read back from claims.json ignores them."""

DEFAULT_DESIGN = ClaimsDesign()
"""The design of a sweep that declares none: ENDPOINTS, the additive +perceptual setting of the first data set that
has one, no rate window."""


def resolve_primary(design: ClaimsDesign, settings: list[tuple[str, str, str]]) -> tuple[Setting, str]:
    """(primary setting, how it was chosen) given the (dataset, convention, neural family) settings the sweep pairs.
    A declared data set is used as declared (even where the sweep lacks it: the primary family is then empty, and the
    report says so); an undeclared one is the first data set, in sorted order, with the declared convention and
    family, else the first setting in sorted order. Only the layout decides, never a number."""
    declared = design.primary_setting
    if declared.dataset is not None:
        return declared, "declared"
    ordered = sorted(set(settings))
    matching = [setting for setting in ordered if setting[1:] == (declared.convention, declared.neural_family)]
    if matching:
        return Setting(*matching[0]), f"the first data set with {declared.convention} {declared.neural_family}"
    if ordered:
        return Setting(*ordered[0]), "the first setting in sorted order (none has " \
                                     f"{declared.convention} {declared.neural_family})"
    return Setting(None, declared.convention, declared.neural_family), "no setting"
