"""The claims of the paper tested on a sweep: paired effects, t-intervals over seeds, Holm-adjusted verdicts.

Three comparisons (docs/science.md, "How a claim is tested"; exact formulas in docs/claims.md):
- matched_beta: neural-loss run minus pointwise run at the same data set, beta, seed and setup
  (vaelens.report.pairing), per beta and pooled over betas;
- matched_rate (C4): per seed, the mean difference of the geometry metric between the two families'
  metric-vs-rate curves over the rate range both cover (vaelens.report.matching);
- matched_distortion (C1): the same with rate (and I(x; z)) as functions of pixel MSE.
Every row with at least two seeds gets a Student t interval (raw) and a two-sided t-test p-value;
Holm's step-down method adjusts the p-values over all such rows of the report, and the verdict
reads the adjusted p-value (vaelens.report.statistics.verdict). A row whose estimates sit at an
estimator limit (saturated I(x; z), geometry bounded by the sample) or whose curves do not overlap
is `inconclusive` whatever its numbers, and `verdict_reason` says why. Runs that the paired plateau check
(vaelens.analysis.plateau) found still improving are left out of every comparison, and claims.json lists them.
The quantities each claim is tested with come from the registry (vaelens.quantities).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from vaelens.io import atomic_write_json
from vaelens.quantities import claim_quantities, quantity_of
from vaelens.report import pairing
from vaelens.report.claim_rows import POOLED, ClaimRow, ClaimsReport, LeftOutRun, Overlap, PlateauOutcome
from vaelens.report.matching import common_span, make_curve, matched_difference
from vaelens.report.statistics import ALPHA, CONFIDENCE, holm_adjust, t_interval, t_test, verdict
from vaelens.training.sweepdir import RunRecord

CLAIMS_VERSION = 3


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, the comparisons it is tested in; its metrics are the quantities that declare it."""

    claim_id: str
    """C1 to C4."""
    statement: str
    """What the paper says neural losses do."""
    direction: int
    """-1: the claim predicts neural minus pointwise < 0; +1: > 0; 0: != 0 (either sign)."""
    comparisons: tuple[str, ...] = ("matched_beta",)
    """Which comparisons (COMPARISONS names) test it."""

    @property
    def metrics(self) -> tuple[str, ...]:
        """The quantities (vaelens.quantities) that test it; the first is the primary one."""
        return claim_quantities(self.claim_id)

    @property
    def predicted_sign(self) -> str:
        return {-1: "negative", 0: "non-zero", 1: "positive"}[self.direction]


CLAIMS = (
    Claim("C1", "neural terms reduce the information in the latents (rate, I(x;z))", -1,
          ("matched_beta", "matched_distortion")),
    Claim("C2", "neural terms make posterior means more isotropic (IsoScore, participation ratio; active units)", +1),
    Claim("C3", "neural terms spread posterior variance more evenly (normalised entropy of E_x sigma_j^2)", +1),
    Claim("C4", "at equal rate, neural-loss latents still differ in geometry (the C2 and C3 metrics compared "
          "along the metric-vs-rate curves): rate-distortion alone does not explain C2/C3", 0, ("matched_rate",)),
)
@dataclass(frozen=True)
class Comparison:
    """A way of comparing a neural family with its pointwise baseline."""

    name: str
    """Its name in claims.json (a row's `comparison`) and in a Claim's comparisons."""
    title: str
    """How the report and STUDY.md head its table."""
    method: str
    """How its effect is computed, in words (claims.json's `comparisons`)."""
    along: str | None = None
    """The quantity a curve comparison interpolates along (each seed's runs over the beta grid); None: runs are
    paired at equal beta."""


COMPARISONS = {comparison.name: comparison for comparison in (
    Comparison("matched_beta", "Matched beta (pooled over the beta grid)",
               "neural-loss run minus pointwise run at the same data set, beta, seed and setup; pooled rows average "
               "each seed's differences over the betas it has in every beta of the group"),
    Comparison("matched_rate", "Matched rate (C4)",
               "per seed, the mean of m_neural(R) - m_pointwise(R) over the rate range every seed's curves of both "
               "families cover, each curve piecewise linear in log R through the runs of the beta grid, averaged "
               "uniformly in log R", along="rate"),
    Comparison("matched_distortion", "Matched distortion (C1)",
               "per seed, the mean of y_neural(D) - y_pointwise(D) over the pixel-MSE range every seed's curves of "
               "both families cover, piecewise linear in log D, uniform in log D", along="distortion.mse"),
)}
"""Every comparison, in the order the report and STUDY.md show them. A new one is an entry here and its name in
the claims it tests."""
MULTIPLICITY = {
    "method": "Holm step-down",
    "alpha": ALPHA,
    "family": "every result row of this report with a p-value (all claims, metrics, comparisons, data sets, "
              "conventions, families, per-beta and pooled rows), rows withheld at an estimator limit included",
    "p_value": "two-sided one-sample t test of mean 0 over seeds (df = n - 1), from the same t statistic as "
               "the interval; for a directional claim it is the pair of one-sided tests at alpha/2, one per "
               "verdict side",
    "adjustment": "with m p-values sorted ascending, p_holm(i) = max over j <= i of min(1, (m - j + 1) p(j))",
    "controls": "the probability of any false supported or contradicted verdict in the report is at most alpha",
}
VERDICT_RULE = ("directional claims (C1-C3): supported if the Holm-adjusted p < 0.05 with the effect on the predicted "
                "side, contradicted if p_holm < 0.05 on the other side; C4 (two-sided): supported if p_holm < 0.05 "
                "on either side, never contradicted (no equivalence margin is declared; the raw interval bounds "
                "the difference instead); inconclusive otherwise, with fewer than 2 seeds, when a run's estimate "
                "is at an estimator limit (saturated I(x;z), geometry bounded by N <= d) or when the curves of a "
                "matched comparison share no range")
PLATEAU_POLICY = ("a run whose plateau.json says it was still improving (the paired plateau check, `vaelens "
                  "plateau`) is left out of every comparison: its pairs and its point on its seed's curve are dropped, "
                  "so a matched-beta row has fewer seeds (n) and a curve fewer points, and each row lists the seeds "
                  "whose runs it lost in seeds_not_on_plateau; runs without a check take part")
PLATEAU_NOT_APPLIED = ("this sweep asked for every run to take part (a demonstration too short to reach the plateau): "
                       "runs still improving are listed in runs_still_improving but not left out, so the verdicts "
                       "are a smoke test of the pipeline, not evidence")


@dataclass
class _Tested:
    """A row before the Holm pass, with what decides it besides its p-value."""

    row: ClaimRow
    withheld: tuple[str, str] | None
    """(basis, reason) when an estimator limit or the curves' layout rules out a verdict."""
    direction: int


def plateau_exclusions(records: list[RunRecord]) -> list[LeftOutRun]:
    """The usable runs the paired plateau check found still improving, each with its setting and figure: a
    verdict must rest on trained models, so these leave the claims."""
    return [LeftOutRun(run.run_id, run.dataset, run.convention, run.loss_family, run.beta, run.seed,
                       run.plateau.get("relative_improvement"),
                       [run.plateau.get("from_step"), run.plateau.get("to_step")])
            for run in records if run.usable and run.still_improving]


def _lost_seeds(row: ClaimRow, excluded: list[LeftOutRun]) -> list[int]:
    """Seeds of `row` whose neural or pointwise run at its betas is in `excluded`."""
    sides = {(row.convention, row.neural_family), (row.baseline_convention, "pointwise")}
    return sorted({run.seed for run in excluded if run.dataset == row.dataset
                   and (run.convention, run.neural_family) in sides and row.beta in (POOLED, run.beta)})


def _limit_reason(runs: list[RunRecord], metric: str) -> tuple[str, str] | None:
    """(basis, reason) when any run's estimate of `metric` is at its estimator's limit."""
    hits = [limit for limit in (run.estimate_limit(metric) for run in runs) if limit]
    if not hits:
        return None
    basis = "saturated" if hits[0].startswith("saturated") else "bounded_by_sample"
    return basis, f"{hits[0]} (in {len(hits)} of {len(runs)} runs)"


def _row(claim: Claim, comparison: str, metric: str, group: tuple, beta, differences: dict[int, float],
         runs: list[RunRecord], overlap: Overlap | None = None, withheld: tuple[str, str] | None = None) -> _Tested:
    dataset, convention, family = group
    effect, low, high = t_interval(list(differences.values()))
    keys = sorted({run.metric_key(metric) for run in runs} - {None})
    row = ClaimRow(claim.claim_id, comparison, metric, " | ".join(keys) if keys else None, quantity_of(metric).units,
                   dataset, convention, pairing.baseline_convention(convention), family, beta, effect, low, high,
                   t_test(list(differences.values())), len(differences), sorted(differences), overlap,
                   claim.predicted_sign)
    return _Tested(row, withheld or _limit_reason(runs, metric), claim.direction)


def _matched_beta_rows(claim: Claim, metric: str, paired: dict) -> list[_Tested]:
    """Pooled (POOLED: per seed, the mean difference over the betas that seed has at every beta of the group)
    and per-beta rows of one metric."""
    by_group: dict[tuple, dict] = {}
    for (dataset, convention, family, beta), pairs in paired.items():
        usable = {seed: pair for seed, pair in pairs.items()
                  if pair[0].metric(metric) is not None and pair[1].metric(metric) is not None}
        if usable:
            by_group.setdefault((dataset, convention, family), {})[beta] = usable
    rows = []
    for group in sorted(by_group, key=str):
        per_beta = {beta: {seed: (n, b, n.metric(metric) - b.metric(metric)) for seed, (n, b) in pairs.items()}
                    for beta, pairs in by_group[group].items()}
        common = set.intersection(*(set(pairs) for pairs in per_beta.values()))
        pooled = {seed: sum(pairs[seed][2] for pairs in per_beta.values()) / len(per_beta) for seed in common}
        runs = [run for pairs in per_beta.values() for seed in common for run in pairs[seed][:2]]
        rows.append(_row(claim, "matched_beta", metric, group, POOLED, pooled, runs))
        for beta in sorted(per_beta):
            pairs = per_beta[beta]
            rows.append(_row(claim, "matched_beta", metric, group, beta, {s: p[2] for s, p in pairs.items()},
                             [run for p in pairs.values() for run in p[:2]]))
    return rows


def _curve(runs: list[RunRecord], x_metric: str, metric: str):
    return make_curve([(run.metric(x_metric), run.metric(metric)) for run in runs])


def _span_text(curves: list) -> str:
    span = common_span(curves)
    return "none" if span is None else f"[{math.exp(span[0]):.4g}, {math.exp(span[1]):.4g}]"


def _matched_curve_row(claim: Claim, comparison: str, metric: str, group: tuple, by_seed: dict) -> _Tested:
    """One pooled row of a curve comparison: every seed's neural and pointwise curves, the common range."""
    x_metric = COMPARISONS[comparison].along
    x_units = quantity_of(x_metric).units
    curves = {seed: (_curve(neural, x_metric, metric), _curve(baseline, x_metric, metric))
              for seed, (neural, baseline) in by_seed.items()}
    curves = {seed: pair for seed, pair in curves.items() if None not in pair}
    overlap = Overlap(x_metric, x_units)
    if not curves:
        reason = "fewer than 2 betas per curve: no seed has both curves through 2 distinct values of " + x_metric
        return _row(claim, comparison, metric, group, POOLED, {}, [], overlap, ("too_few_betas", reason))
    span = common_span([curve for pair in curves.values() for curve in pair])
    if span is None:
        reason = (f"no overlap: the {x_metric} ranges every seed's pointwise curve covers "
                  f"({_span_text([p[1] for p in curves.values()])}) and every seed's neural curve covers "
                  f"({_span_text([p[0] for p in curves.values()])}) share no range ({x_units})")
        return _row(claim, comparison, metric, group, POOLED, {}, [], overlap, ("no_overlap", reason))
    overlap.low, overlap.high = math.exp(span[0]), math.exp(span[1])
    differences = {seed: matched_difference(neural, baseline, span) for seed, (neural, baseline) in curves.items()}
    runs = [run for seed in curves for side in by_seed[seed] for run in side]
    return _row(claim, comparison, metric, group, POOLED, differences, runs, overlap)


def _decide(tested: _Tested) -> None:
    """Fill verdict, verdict_basis and verdict_reason of a row whose p_holm is set."""
    row = tested.row
    if tested.withheld:
        row.verdict, (row.verdict_basis, row.verdict_reason) = "inconclusive", tested.withheld
        return
    if row.p_holm is None:
        row.verdict, row.verdict_basis = "inconclusive", "single_seed"
        row.verdict_reason = f"{row.n_pairs} seed(s): no interval or p-value"
        return
    row.verdict = verdict(row.p_holm, row.effect, tested.direction)
    row.verdict_basis = "holm"
    reason = f"Holm-adjusted p = {row.p_holm:.3g} {'<' if row.p_holm < ALPHA else '>='} {ALPHA}"
    if row.verdict == "supported":
        reason += ", effect on the predicted side" if tested.direction else ", effect non-zero"
    elif row.verdict == "contradicted":
        reason += ", effect on the side opposite to the prediction"
    elif tested.direction == 0 and row.ci_low is not None:
        bound = max(abs(row.ci_low), abs(row.ci_high))
        reason += f"; the raw 95% interval bounds |effect| by {bound:.3g} (no equivalence margin is declared)"
    row.verdict_reason = reason


def apply_holm(tested: list[_Tested]) -> None:
    """Set p_holm on every row with a p-value (Holm over all of them), then each row's verdict."""
    with_p = [item.row for item in tested if item.row.p_value is not None]
    for row, adjusted in zip(with_p, holm_adjust([row.p_value for row in with_p])):
        row.p_holm = adjusted
    for item in tested:
        _decide(item)


def _tested_rows(records: list[RunRecord]) -> list[_Tested]:
    paired, curves = pairing.paired_runs(records), pairing.curve_runs(records)
    tested = []
    for claim in CLAIMS:
        for comparison in claim.comparisons:
            for metric in claim.metrics:
                if COMPARISONS[comparison].along is None:
                    tested += _matched_beta_rows(claim, metric, paired)
                else:
                    tested += [_matched_curve_row(claim, comparison, metric, group, curves[group])
                               for group in sorted(curves, key=str)]
    return tested


def evaluate_claims(records: list[RunRecord], leave_out_still_improving: bool = True) -> ClaimsReport:
    """claims.json: one row per claim x metric x comparison x data set x convention x neural family (and per beta
    at matched beta), every verdict Holm-adjusted over all rows. Runs the plateau check found still improving are
    left out (PLATEAU_POLICY) unless `leave_out_still_improving` is False."""
    still_improving = plateau_exclusions(records)
    excluded = still_improving if leave_out_still_improving else []
    left_out = {run.run for run in excluded}
    tested = _tested_rows([record for record in records if record.run_id not in left_out])
    apply_holm(tested)
    rows = [item.row for item in tested]
    for row in rows:
        row.seeds_not_on_plateau = _lost_seeds(row, excluded)
    return ClaimsReport(
        version=CLAIMS_VERSION, units="nats", confidence=CONFIDENCE, alpha=ALPHA,
        comparisons={name: comparison.method for name, comparison in COMPARISONS.items()},
        interval="two-sided Student t interval of the paired differences over seeds (raw: not adjusted)",
        multiplicity={**MULTIPLICITY, "tests": sum(row.p_value is not None for row in rows)},
        verdict_rule=VERDICT_RULE,
        plateau=PlateauOutcome(PLATEAU_POLICY if leave_out_still_improving else PLATEAU_NOT_APPLIED,
                               leave_out_still_improving, still_improving, excluded),
        claims={claim.claim_id: {"statement": claim.statement, "metrics": list(claim.metrics),
                                 "primary_metric": claim.metrics[0], "predicted_sign": claim.predicted_sign,
                                 "comparisons": list(claim.comparisons)} for claim in CLAIMS},
        results=rows)


def write_claims(report: ClaimsReport, path: Path) -> Path:
    """claims.json, atomically; every result names its weighting convention and units."""
    atomic_write_json(Path(path), report.to_json())
    return Path(path)
