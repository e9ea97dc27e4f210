"""How many seeds the primary family needs: the power of its whole decision procedure (docs/planning.md).

Each primary endpoint's paired differences over seeds are taken as Normal(effect, sd^2), with the effect and sd a
pilot study measured (a claims.json's primary rows). A Monte Carlo replication draws n differences per endpoint,
independently, and runs what claims.json runs on them: the two-sided t test, the TOST equivalence test where a bound
is declared, one grouped Holm step-down over all the family's tests (`statistics.step_down_adjust`) and the outcome
rule (`statistics.verdict`). Two probabilities per endpoint and seed count:

- decide_effect: P(the difference is decided on the pilot effect's side) when the true effect is the pilot's;
- decide_no_effect: P(outcome "no effect") when the true effect is 0 (None without a bound).

In both, the other endpoints sit at their pilot effects: that is the family the decision will face, and the step-down
multiplier an endpoint meets depends on how many of the others are decided before it.

Replications are arrays (t statistics, p-values and the step-down at once over them), and every seed count reuses the
same standard-normal draws, so power curves over n are smooth and `seeds_needed` reads the first n reaching a target.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from vaelens.claims_design import ClaimsDesign
from vaelens.report.claim_rows import ClaimsReport

REPLICATIONS = 4000
"""Monte Carlo replications: a power near 0.8 is then within about +-0.013 (2 standard errors)."""
RNG_SEED = 0
"""Seed of the draws: a plan is reproducible, and two plans of one family share their draws."""
SEED_COUNTS = (3, 5, 8, 10, 20)
"""Seed counts a plan's table shows."""
TARGETS = (0.8, 0.9)
"""Powers a plan finds the seed count for."""
MAX_SEEDS = 60
"""Largest seed count `seeds_needed` searches; beyond it, a study is better redesigned than run longer."""
DIRECTIONS = {"negative": -1, "positive": 1, "non-zero": 0}
"""A row's predicted_sign -> the direction `statistics.verdict` takes (read from the row, so that the planner needs
nothing from vaelens.report.claims, which imports the planner)."""
ASSUMPTIONS = ("independent endpoints, normal differences, Monte Carlo with {replications} replications "
               "(rng seed {rng_seed}): power within +-2 sqrt(p(1-p)/R)")
"""What every plan assumes, filled with its replications R and rng seed."""


@dataclass(frozen=True)
class EndpointKey:
    """Which primary endpoint a spread, a power row or a seed count is about."""

    claim: str
    """C1 to C4."""
    comparison: str
    """matched_beta or matched_rate."""
    metric: str
    """The quantity compared."""
    setting: str
    """Data set, convention and neural family of the primary family, e.g. natural-32 additive +perceptual."""

    @property
    def name(self) -> str:
        return f"{self.claim} {self.comparison} {self.metric}"


@dataclass(frozen=True)
class EndpointSpread(EndpointKey):
    """A primary endpoint as a pilot measured it: the truth a plan simulates."""

    effect: float
    """Observed mean of the paired differences (neural minus pointwise), metric units."""
    sd: float
    """Seed-to-seed sample standard deviation (ddof 1) of the differences, metric units."""
    n_pilot: int
    """Seeds the effect and sd were estimated from (an sd from 5 seeds is uncertain by about +-35%)."""
    bound: float | None
    """Smallest effect of interest: the equivalence test's bound; None: no equivalence test."""
    direction: int
    """-1 / +1: the claim predicts a negative / positive effect; 0: a non-zero one."""

    @property
    def dz(self) -> float:
        """Standardised effect, effect / sd."""
        return self.effect / self.sd


@dataclass(frozen=True)
class Skipped(EndpointKey):
    """A primary row a plan cannot use, and why."""

    reason: str
    """What it lacks (no effect, no spread, one seed)."""


@dataclass(frozen=True)
class PowerRow(EndpointKey):
    """One endpoint's power at one seed count."""

    seed_count: int
    """Seeds per family (every endpoint of the family has this many)."""
    decide_effect: float
    """P(the difference is decided, on the pilot effect's side) when the true effect is the pilot's."""
    decide_no_effect: float | None
    """P(outcome "no effect") when the true effect is 0; None without a bound."""
    decided_outcome: str
    """What a decided difference on the pilot's side reads as: supported or contradicted."""
    replications: int
    """Monte Carlo replications behind both probabilities."""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SeedsNeeded(EndpointKey):
    """The fewest seeds (at least the design's min_seeds) at which an endpoint reaches a target power."""

    target: float
    """The power aimed at."""
    effect_seeds: int | None
    """For decide_effect; None: not reached within max_seeds."""
    no_effect_seeds: int | None
    """For decide_no_effect; None: not reached within max_seeds, or no bound."""
    max_seeds: int
    """Largest seed count searched."""


@dataclass
class Plan:
    """A power plan of one primary family: the spreads it assumed, power per seed count, seeds per target."""

    spreads: list[EndpointSpread]
    """The endpoints simulated, in claims.json's order."""
    skipped: list[Skipped]
    """Primary rows left out of the plan (and so out of the simulated family), with why."""
    alpha: float
    """The family-wise error rate the design adjusts to."""
    min_seeds: int
    """The design's fewest seeds for a decision: below it every power is 0."""
    replications: int
    """Monte Carlo replications per probability."""
    rng_seed: int
    """Seed of the draws."""
    seed_counts: list[int]
    """The table's seed counts."""
    rows: list[PowerRow]
    """One per endpoint x seed count, endpoint-major."""
    needed: list[SeedsNeeded]
    """One per endpoint x target, endpoint-major."""
    max_seeds: int = MAX_SEEDS
    """Largest seed count searched for `needed`."""
    assumptions: str = ""
    """ASSUMPTIONS, filled in."""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def primary_spreads(report: ClaimsReport, design: ClaimsDesign) -> tuple[list[EndpointSpread], list[Skipped]]:
    """The pooled primary rows as spreads, and those that cannot be one (no effect, no spread, under 2 seeds). The
    bound is the design's for that endpoint (the plan is for a study run under `design`), else the row's."""
    spreads, skipped = [], []
    for row in report.family_rows("primary"):
        where = (row.claim, row.comparison, row.metric, f"{row.dataset} {row.convention} {row.neural_family}")
        if row.effect is None or row.sd is None or row.n_pairs < 2:
            skipped.append(Skipped(*where, f"no effect and spread to plan from ({row.n_pairs} seed(s))"))
        elif not row.sd > 0:
            # a zero spread would make every t statistic infinite: nothing to simulate
            skipped.append(Skipped(*where, "the differences have no spread over seeds"))
        else:
            endpoint = design.endpoint(row.claim, row.comparison, row.metric)
            bound = endpoint.bound if endpoint is not None else row.bound
            spreads.append(EndpointSpread(*where, float(row.effect), float(row.sd), row.n_pairs, bound,
                                          DIRECTIONS[row.predicted_sign]))
    return spreads, skipped


def spreads_from_claims(report: ClaimsReport, design: ClaimsDesign) -> list[EndpointSpread]:
    """The primary family's pooled rows with an effect and a spread (`primary_spreads` says which were skipped)."""
    return primary_spreads(report, design)[0]


def grouped_step_down(p_values, groups=None) -> np.ndarray:
    """`statistics.step_down_adjust` of every row of a (replications, hypotheses) array at once: Holm's step-down
    where the multiplier at each step counts the groups still holding an unrejected hypothesis."""
    p_values = np.asarray(p_values, dtype=float)
    count = p_values.shape[1]
    codes = np.unique(list(range(count)) if groups is None else list(groups), return_inverse=True)[1].reshape(-1)
    # stable, as Python's sorted is in step_down_adjust: tied p-values keep their order, so the two agree exactly
    order = np.argsort(p_values, axis=1, kind="stable")
    ranked = np.take_along_axis(p_values, order, axis=1)
    positions = np.arange(count)
    member = codes[order][:, :, None] == np.arange(codes.max() + 1)[None, None, :]
    # a group still holds an unrejected hypothesis at rank j when its last hypothesis in p order is at j or later
    last = np.where(member, positions[None, :, None], -1).max(axis=1)
    multiplier = (last[:, None, :] >= positions[None, :, None]).sum(axis=2)
    stepped = np.maximum.accumulate(np.minimum(1.0, multiplier * ranked), axis=1)
    adjusted = np.empty_like(p_values)
    np.put_along_axis(adjusted, order, stepped, axis=1)
    return adjusted


def family_p_values(means, sds, seed_count: int, bounds) -> tuple[np.ndarray, np.ndarray]:
    """(difference p, TOST p) arrays of the same shape as `means` (replications, endpoints): what `statistics.t_test`
    and `statistics.equivalence_test` give each replication's differences; TOST p is NaN where the bound is None."""
    degrees = seed_count - 1
    error = np.asarray(sds) / math.sqrt(seed_count)
    means = np.asarray(means)
    p_difference = np.minimum(1.0, 2 * stats.t.sf(np.abs(means / error), degrees))
    # a NaN bound (None) gives NaN p's through the arithmetic, and np.maximum keeps NaN: no TOST there
    bounds = np.array([np.nan if bound is None else bound for bound in bounds])
    above_lower = stats.t.sf((means + bounds) / error, degrees)
    below_upper = stats.t.cdf((means - bounds) / error, degrees)
    p_equivalence = np.maximum(above_lower, below_upper)
    return p_difference, p_equivalence


def adjust_family(p_difference, p_equivalence, claims: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Both tests of every endpoint adjusted together, grouped by claim (an endpoint's difference and equivalence
    nulls cannot both hold), as the primary family is; NaN TOST p's (no bound) stay NaN and out of the family."""
    bounded = [k for k in range(p_difference.shape[1]) if not np.isnan(p_equivalence[0, k])]
    adjusted = grouped_step_down(np.hstack([p_difference, p_equivalence[:, bounded]]),
                                 list(claims) + [claims[k] for k in bounded])
    adjusted_equivalence = np.full(p_equivalence.shape, np.nan)
    adjusted_equivalence[:, bounded] = adjusted[:, p_difference.shape[1]:]
    return adjusted[:, :p_difference.shape[1]], adjusted_equivalence


def standard_draws(replications: int, endpoints: int, seed_count: int, rng_seed: int = RNG_SEED) -> np.ndarray:
    """(seed_count, replications, endpoints) standard normals; seed j's slice is the same for every seed_count (the
    generator fills the array seed-major), so power at different seed counts shares its randomness."""
    return np.random.default_rng(rng_seed).standard_normal((seed_count, replications, endpoints))


def _decided(adjusted, means, sides, alpha: float) -> np.ndarray:
    """Replications where the difference is decided on the pilot's side (either side where the pilot effect is 0)."""
    on_side = np.where(sides == 0, True, np.sign(means) == sides)
    return (adjusted < alpha) & (means != 0) & on_side


def _outcome(spread: EndpointSpread) -> str:
    side = int(np.sign(spread.effect))
    if spread.direction == 0 or side == spread.direction:
        return "supported"
    return "contradicted" if side else "supported or contradicted"


def _power_at(spreads: list[EndpointSpread], z_mean, z_sd, seed_count: int, design: ClaimsDesign) -> list[PowerRow]:
    """Power rows at one seed count from the standard draws' per-replication means and sds (replications, endpoints)."""
    effects = np.array([spread.effect for spread in spreads])
    sds = np.array([spread.sd for spread in spreads])
    bounds, claims = [spread.bound for spread in spreads], [spread.claim for spread in spreads]
    alpha = design.alpha
    observed = effects + sds * z_mean, sds * z_sd
    at_zero = sds * z_mean, sds * z_sd  # the same draws with every true effect 0: column k serves scenario (b) of k
    p_observed, p_zero = family_p_values(*observed, seed_count, bounds), family_p_values(*at_zero, seed_count, bounds)
    adjusted, adjusted_equivalence = adjust_family(*p_observed, claims)
    # an equivalence decided reads "no effect" even where the difference is decided too (statistics.verdict)
    within_bound = np.nan_to_num(adjusted_equivalence, nan=1.0) < alpha
    decide_effect = (_decided(adjusted, observed[0], np.sign(effects), alpha) & ~within_bound).mean(axis=0)
    rows = []
    for k, spread in enumerate(spreads):
        no_effect = None
        if spread.bound is not None:
            # scenario (b): only endpoint k moves to 0; the others keep their pilot effects and their draws
            p_difference, p_equivalence = (np.array(p) for p in p_observed)
            p_difference[:, k], p_equivalence[:, k] = p_zero[0][:, k], p_zero[1][:, k]
            equivalence = adjust_family(p_difference, p_equivalence, claims)[1]
            no_effect = float(np.mean(equivalence[:, k] < alpha))
        rows.append(PowerRow(*_key(spread), seed_count, float(decide_effect[k]), no_effect, _outcome(spread),
                             z_mean.shape[0]))
    return rows


def _undecidable(spreads: list[EndpointSpread], seed_count: int, replications: int) -> list[PowerRow]:
    """Below the design's min_seeds the family decides nothing: every power is 0."""
    return [PowerRow(*_key(spread), seed_count, 0.0, None if spread.bound is None else 0.0, _outcome(spread),
                     replications) for spread in spreads]


def power_curve(spreads: list[EndpointSpread], seed_counts, design: ClaimsDesign, replications: int = REPLICATIONS,
                rng_seed: int = RNG_SEED) -> dict[int, list[PowerRow]]:
    """Seed count -> `power` rows, every count from one set of draws (common random numbers)."""
    seed_counts = sorted({int(count) for count in seed_counts})
    if not spreads or not seed_counts:
        return {count: [] for count in seed_counts}
    if seed_counts[0] < 1 or replications < 1:
        raise ValueError(f"seed counts and replications must be positive, got {seed_counts} and {replications}")
    draws = standard_draws(replications, len(spreads), seed_counts[-1], rng_seed)
    # running sums give every seed count's mean and sd in one pass over the draws
    sums, squares = np.cumsum(draws, axis=0), np.cumsum(draws ** 2, axis=0)
    curve = {}
    for count in seed_counts:
        if count < max(design.min_seeds, 2):
            curve[count] = _undecidable(spreads, count, replications)
            continue
        z_mean = sums[count - 1] / count
        z_sd = np.sqrt(np.maximum(squares[count - 1] - count * z_mean ** 2, 0.0) / (count - 1))
        curve[count] = _power_at(spreads, z_mean, z_sd, count, design)
    return curve


def power(spreads: list[EndpointSpread], seed_count: int, design: ClaimsDesign, replications: int = REPLICATIONS,
          rng_seed: int = RNG_SEED) -> list[PowerRow]:
    """Each endpoint's decide_effect and decide_no_effect (module docstring) with `seed_count` seeds per endpoint."""
    return power_curve(spreads, [seed_count], design, replications, rng_seed)[int(seed_count)]


def seeds_needed(spreads: list[EndpointSpread], design: ClaimsDesign, target: float, max_seeds: int = MAX_SEEDS,
                 replications: int = REPLICATIONS, rng_seed: int = RNG_SEED,
                 curve: dict[int, list[PowerRow]] | None = None) -> list[SeedsNeeded]:
    """Per endpoint, the first seed count from min_seeds to max_seeds whose power reaches `target`, for decide_effect
    and decide_no_effect. Power rises with n up to Monte Carlo noise (smoothed by the shared draws), so the first
    crossing is the answer to within that noise. `curve`: a `power_curve` over that range, to reuse."""
    if not 0 < target < 1:
        raise ValueError(f"a target power lies in (0, 1), got {target}")
    counts = range(design.min_seeds, max_seeds + 1)
    if curve is None:
        curve = power_curve(spreads, counts, design, replications, rng_seed)

    def first(k: int, field_name: str) -> int | None:
        return next((count for count in counts if (getattr(curve[count][k], field_name) or 0) >= target), None)

    return [SeedsNeeded(*_key(spread), target, first(k, "decide_effect"),
                        first(k, "decide_no_effect") if spread.bound is not None else None, max_seeds)
            for k, spread in enumerate(spreads)]


def plan(report: ClaimsReport, design: ClaimsDesign | None = None, seed_counts=SEED_COUNTS, targets=TARGETS,
         replications: int = REPLICATIONS, max_seeds: int = MAX_SEEDS, rng_seed: int = RNG_SEED) -> Plan:
    """The power plan of `report`'s primary family under `design` (None: the design the report records) at
    `seed_counts`, with the seeds each endpoint needs for `targets`."""
    design = ClaimsDesign.from_json(report.design or None) if design is None else design
    spreads, skipped = primary_spreads(report, design)
    if not spreads:
        raise ValueError("no primary row has an effect and a spread over seeds to plan from"
                         + "".join(f"; {item.claim} {item.metric}: {item.reason}" for item in skipped)
                         + " (a claims.json written by `vaelens report` with the primary family, from 2+ seeds)")
    counts = sorted({int(count) for count in seed_counts})
    curve = power_curve(spreads, set(counts) | set(range(design.min_seeds, max_seeds + 1)), design, replications,
                        rng_seed)
    rows = [curve[count][k] for k in range(len(spreads)) for count in counts]
    by_target = [seeds_needed(spreads, design, target, max_seeds, curve=curve) for target in targets]
    needed = [needs[k] for k in range(len(spreads)) for needs in by_target]
    return Plan(spreads, skipped, design.alpha, design.min_seeds, replications, rng_seed, counts, rows, needed,
                max_seeds, ASSUMPTIONS.format(replications=replications, rng_seed=rng_seed))


def mc_error(probability: float, replications: int) -> float:
    """Two Monte Carlo standard errors of an estimated probability."""
    return 2 * math.sqrt(probability * (1 - probability) / replications)


def _key(item: EndpointKey) -> tuple[str, str, str, str]:
    return item.claim, item.comparison, item.metric, item.setting


def _table(header: list[str], lines: list[list[str]], text_columns: int) -> list[str]:
    """Aligned columns: the first `text_columns` left-aligned, the numbers right-aligned."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines)]
    return ["  ".join(cell.ljust(width) if i < text_columns else cell.rjust(width)
                      for i, (cell, width) in enumerate(zip(line, widths))).rstrip() for line in [header, *lines]]


def _cell(value, missing: str = "-") -> str:
    """A probability to 2 decimals or a seed count; `missing` for None."""
    return missing if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def plan_text(plan: Plan) -> str:
    """The plan as three terminal tables (the pilot spreads, power per seed count, seeds per target), every number
    named in the line above its table."""
    count, per_target = len(plan.spreads), len(plan.needed) // max(len(plan.spreads), 1)
    rows = [plan.rows[k * len(plan.seed_counts):(k + 1) * len(plan.seed_counts)] for k in range(count)]
    needs = [plan.needed[k * per_target:(k + 1) * per_target] for k in range(count)]
    targets = [need.target for need in needs[0]] if needs else []
    pilot = [[s.name, s.setting, f"{s.effect:+.4g}", f"{s.sd:.4g}", f"{s.dz:+.2f}", str(s.n_pilot),
              _cell(s.bound and f"{s.bound:.4g}"), _outcome(s)] for s in plan.spreads]
    powers = [[s.name] + [f"{_cell(r.decide_effect)} / {_cell(r.decide_no_effect)}" for r in rows[k]]
              for k, s in enumerate(plan.spreads)]
    beyond = f">{plan.max_seeds}"
    seeds = [[s.name] + [_cell(need.effect_seeds, beyond) for need in needs[k]]
             + [_cell(need.no_effect_seeds, beyond) if s.bound is not None else "no bound" for need in needs[k]]
             for k, s in enumerate(plan.spreads)]
    lines = [f"Power plan of the primary family: {count} endpoints, grouped Holm step-down at alpha {plan.alpha:g}, "
             f"no decision below {plan.min_seeds} seeds.", f"Assumes {plan.assumptions}",
             f"(+-{mc_error(0.8, plan.replications):.3f} at p = 0.8).", "",
             "Pilot: effect = mean paired difference (neural - pointwise); sd = its seed-to-seed sd; dz = effect / sd;",
             "pilot n = seeds measured; bound = smallest effect of interest (equivalence test); if decided = outcome",
             *_table(["endpoint", "setting", "effect", "sd", "dz", "pilot n", "bound", "if decided"], pilot, 2), "",
             "Power by seeds: P(difference decided on the pilot's side | true effect = pilot effect) /",
             "P(outcome \"no effect\" | true effect 0), the other endpoints at their pilot effects; '-': no bound",
             *_table(["endpoint"] + [f"{n} seeds" for n in plan.seed_counts], powers, 1), "",
             f"Seeds needed: fewest seeds (>= {plan.min_seeds}) whose power reaches the target; {beyond}: not within "
             f"{plan.max_seeds}", *_table(["endpoint"] + [f"effect {t:.0%}" for t in targets]
                                          + [f"no effect {t:.0%}" for t in targets], seeds, 1)]
    return "\n".join(lines + [f"skipped {item.name} ({item.setting}): {item.reason}" for item in plan.skipped])
