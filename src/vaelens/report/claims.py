"""The claims of the paper tested on a sweep under a declared design: paired effects, t intervals over seeds, and
decisions within declared families of tests.

Three comparisons (docs/science.md, "How a claim is tested"; exact formulas in docs/claims.md):
- matched_beta: neural-loss run minus pointwise run at the same data set, beta, seed and setup
  (vaelens.report.pairing), per beta and pooled over betas (a missing run imputed, vaelens.report.pooling);
- matched_rate (C4): per seed, the mean difference of the geometry metric between the two families'
  metric-vs-rate curves over the declared rate window (vaelens.report.matching, vaelens.report.pooling);
- matched_distortion (C1): the same with rate (and I(x; z)) as functions of pixel MSE.
The design (vaelens.claims_design) names one endpoint per claim, its smallest effect of interest and the primary
setting; vaelens.report.decide puts each row in the primary, secondary or exploratory family, adjusts each family
(Holm, Benjamini-Hochberg) and reads the outcome: supported, contradicted, no effect (equivalence within the bound)
or inconclusive. A row whose estimates sit at an estimator limit, or whose curves share no range, is withheld
(`inconclusive`, the reason in `verdict_reason`). Runs that the paired plateau check (vaelens.analysis.plateau) found
still improving are left out of every comparison, and claims.json lists them. The quantities each claim is tested
with come from the registry (vaelens.quantities).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from vaelens.claims_design import DEFAULT_DESIGN, ClaimsDesign, Endpoint, resolve_primary
from vaelens.io import atomic_write_json
from vaelens.quantities import claim_quantities, quantity_of
from vaelens.report import pairing
from vaelens.report.claim_rows import POOLED, ClaimRow, ClaimsReport, LeftOutRun, Overlap, PlateauOutcome
from vaelens.report.decide import FAMILY_RULES, Tested, adjust, assign_families, decide, family_sizes
from vaelens.report.matching import common_span, make_curve, matched_difference
from vaelens.report.pooling import curve_window, pool_over_betas
from vaelens.report.statistics import (
    CONFIDENCE,
    equivalence_test,
    mean_and_sd,
    sign_flip_test,
    t_interval,
    t_test,
)
from vaelens.training.sweepdir import RunRecord

CLAIMS_VERSION = 4


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
P_VALUES = ("difference: two-sided one-sample t test of mean 0 over seeds (df = n - 1), from the same t statistic "
            "as the interval (a directional claim's two outcomes are the one-sided tests at alpha/2); equivalence: "
            "two one-sided t tests (TOST) of |mean| >= the declared bound; sign-flip: the exact two-sided "
            "permutation p over the 2^n sign patterns of the differences, which assumes no normality")
VERDICT_RULE = ("in the primary and secondary families: supported if the adjusted difference p < alpha with the effect "
                "on the predicted side (either side for C4), contradicted if on the other side; otherwise no effect if "
                "the adjusted equivalence p < alpha (the effect is within the declared bound); otherwise inconclusive, "
                "and inconclusive with fewer seeds than the design's minimum, without spread, when a run's estimate is "
                "at an estimator limit (saturated I(x;z), geometry bounded by N <= d) or when the curves of a matched "
                "comparison share no range; exploratory rows are not decided")
PLATEAU_POLICY = ("a run whose plateau.json says it was still improving (the paired plateau check, `vaelens "
                  "plateau`) is left out of every comparison: its pairs and its point on its seed's curve are dropped, "
                  "so a matched-beta row has fewer seeds (n) and a curve fewer points, and each row lists the seeds "
                  "whose runs it lost in seeds_not_on_plateau; runs without a check take part")
PLATEAU_NOT_APPLIED = ("this sweep asked for every run to take part (a demonstration too short to reach the plateau): "
                       "runs still improving are listed in runs_still_improving but not left out, so the verdicts "
                       "are a smoke test of the pipeline, not evidence")


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
         runs: list[RunRecord], overlap: Overlap | None = None, withheld: tuple[str, str] | None = None,
         endpoint: Endpoint | None = None) -> Tested:
    dataset, convention, family = group
    values = list(differences.values())
    effect, low, high = t_interval(values)
    keys = sorted({run.metric_key(metric) for run in runs} - {None})
    row = ClaimRow(claim.claim_id, comparison, metric, " | ".join(keys) if keys else None, quantity_of(metric).units,
                   dataset, convention, pairing.baseline_convention(convention), family, beta, effect, low, high,
                   t_test(values), len(differences), sorted(differences), overlap, claim.predicted_sign)
    row.sd = mean_and_sd(values)[1] if values else None
    row.p_sign_flip = sign_flip_test(values)
    if endpoint is not None and endpoint.bound is not None and beta == POOLED:
        row.p_equivalence = equivalence_test(values, endpoint.bound)
    return Tested(row, withheld or _limit_reason(runs, metric), claim.direction, endpoint)


def _one_view(runs, metric: str, endpoint: Endpoint | None) -> bool:
    """Whether `runs` read `metric` from one analysis key (the endpoint's, where it declares one): an IsoScore of the
    active units against one of all units would measure the view, not the loss."""
    keys = {run.metric_key(metric) for run in runs} - {None}
    return len(keys) == 1 and (endpoint is None or endpoint.key is None or keys == {endpoint.key})


def _view_reason(metric: str, endpoint: Endpoint | None) -> str:
    if endpoint is not None and endpoint.key is not None:
        return f"a run's {metric} is not read from {endpoint.key} (the endpoint's unit set)"
    return f"its runs read {metric} from different analysis keys (views)"


def _usable_pairs(paired: dict, metric: str, endpoint: Endpoint | None) -> tuple[dict, dict]:
    """(group -> beta -> {seed: pair} with the metric in both runs of one view, group -> the pairs withheld)."""
    by_group: dict[tuple, dict] = {}
    withheld: dict[tuple, list] = {}
    for (dataset, convention, family, beta), pairs in paired.items():
        group, usable = (dataset, convention, family), {}
        for seed, pair in pairs.items():
            if pair[0].metric(metric) is None or pair[1].metric(metric) is None:
                continue
            if _one_view(pair, metric, endpoint):
                usable[seed] = pair
            else:
                withheld.setdefault(group, []).append({"seed": seed, "beta": beta,
                                                       "reason": _view_reason(metric, endpoint)})
        if usable:
            by_group.setdefault(group, {})[beta] = usable
    return by_group, withheld


def _matched_beta_rows(claim: Claim, metric: str, paired: dict, endpoint: Endpoint | None) -> list[Tested]:
    """Pooled (POOLED: per seed, the mean difference over the group's betas, a missing run imputed; pooling) and
    per-beta rows of one metric."""
    by_group, withheld = _usable_pairs(paired, metric, endpoint)
    rows = []
    for group in sorted(set(withheld) - set(by_group), key=str):  # every pair withheld: the row says so
        tested = _row(claim, "matched_beta", metric, group, POOLED, {}, [], None,
                      ("mixed_views", f"every pair withheld: {withheld[group][0]['reason']}"), endpoint)
        tested.row.seeds_dropped = withheld[group]
        rows.append(tested)
    for group in sorted(by_group, key=str):
        per_beta = by_group[group]
        differences = {beta: {seed: neural.metric(metric) - baseline.metric(metric)
                              for seed, (neural, baseline) in pairs.items()} for beta, pairs in per_beta.items()}
        pooled = pool_over_betas(differences)
        runs = [run for beta in pooled.betas for seed, pair in per_beta[beta].items() if seed in pooled.per_seed
                for run in pair]
        tested = _row(claim, "matched_beta", metric, group, POOLED, pooled.per_seed, runs, endpoint=endpoint)
        tested.row.betas_pooled, tested.row.imputed = pooled.betas, pooled.imputed
        tested.row.seeds_dropped = withheld.get(group, []) + pooled.dropped
        rows.append(tested)
        for beta in sorted(per_beta):
            pairs = per_beta[beta]
            tested = _row(claim, "matched_beta", metric, group, beta, differences[beta],
                          [run for pair in pairs.values() for run in pair], endpoint=endpoint)
            tested.row.seeds_dropped = [cell for cell in withheld.get(group, []) if cell["beta"] == beta]
            rows.append(tested)
    return rows


def _curve(runs: list[RunRecord], x_metric: str, metric: str):
    return make_curve([(run.metric(x_metric), run.metric(metric)) for run in runs])


def _span_text(curves: list) -> str:
    span = common_span(curves)
    return "none" if span is None else f"[{math.exp(span[0]):.4g}, {math.exp(span[1]):.4g}]"


def _no_window_reason(x_metric: str, x_units: str, curves: dict, declared) -> str:
    if declared is not None:
        return (f"no overlap: no seed's curves cover the declared {x_metric} window [{declared[0]:g}, {declared[1]:g}] "
                f"({x_units})")
    return (f"no overlap: the {x_metric} ranges every seed's pointwise curve covers "
            f"({_span_text([p[1] for p in curves.values()])}) and every seed's neural curve covers "
            f"({_span_text([p[0] for p in curves.values()])}) share no range ({x_units})")


def _matched_curve_row(claim: Claim, comparison: str, metric: str, group: tuple, by_seed: dict,
                       design: ClaimsDesign, endpoint: Endpoint | None) -> Tested:
    """One pooled row of a curve comparison: each seed's neural and pointwise curves over the row's window."""
    x_metric = COMPARISONS[comparison].along
    x_units = quantity_of(x_metric).units
    curves, dropped = {}, []
    for seed, (neural, baseline) in by_seed.items():
        pair = (_curve(neural, x_metric, metric), _curve(baseline, x_metric, metric))
        if None in pair:
            continue
        if _one_view([*neural, *baseline], metric, endpoint):
            curves[seed] = pair
        else:
            dropped.append({"seed": seed, "reason": _view_reason(metric, endpoint)})
    overlap = Overlap(x_metric, x_units)
    if not curves:
        reason = "fewer than 2 betas per curve: no seed has both curves through 2 distinct values of " + x_metric
        tested = _row(claim, comparison, metric, group, POOLED, {}, [], overlap, ("too_few_betas", reason), endpoint)
        tested.row.seeds_dropped = dropped
        return tested
    declared = design.rate_window(group[0]) if x_metric == "rate" else None
    window = curve_window(curves, declared)
    dropped += window.dropped
    if window.span is None or not window.seeds:
        tested = _row(claim, comparison, metric, group, POOLED, {}, [], overlap,
                      ("no_overlap", _no_window_reason(x_metric, x_units, curves, declared)), endpoint)
    else:
        overlap.low, overlap.high = math.exp(window.span[0]), math.exp(window.span[1])
        differences = {seed: matched_difference(*curves[seed], window.span) for seed in window.seeds}
        runs = [run for seed in window.seeds for side in by_seed[seed] for run in side]
        tested = _row(claim, comparison, metric, group, POOLED, differences, runs, overlap, endpoint=endpoint)
    tested.row.seeds_dropped = sorted(dropped, key=lambda item: item["seed"])
    return tested


def _tested_rows(records: list[RunRecord], design: ClaimsDesign) -> list[Tested]:
    paired, curves = pairing.paired_runs(records), pairing.curve_runs(records)
    tested = []
    for claim in CLAIMS:
        for comparison in claim.comparisons:
            for metric in claim.metrics:
                endpoint = design.endpoint(claim.claim_id, comparison, metric)
                if COMPARISONS[comparison].along is None:
                    tested += _matched_beta_rows(claim, metric, paired, endpoint)
                else:
                    tested += [_matched_curve_row(claim, comparison, metric, group, curves[group], design, endpoint)
                               for group in sorted(curves, key=str)]
    return tested


def _design_record(design: ClaimsDesign, tested: list[Tested]) -> dict:
    """The design as claims.json records it: as declared, the primary setting it resolved to, each family's rule and
    size."""
    settings = [(item.row.dataset, item.row.convention, item.row.neural_family) for item in tested if item.endpoint]
    primary, chosen_by = resolve_primary(design, settings)
    assign_families(tested, primary)
    sizes = family_sizes(tested, design)
    return {**design.to_json(), "primary_setting": vars(primary), "primary_setting_chosen_by": chosen_by,
            "families": {family: {"rule": rule, **sizes[family]} for family, rule in FAMILY_RULES.items()}}


def evaluate_claims(records: list[RunRecord], leave_out_still_improving: bool = True,
                    design: ClaimsDesign | None = None) -> ClaimsReport:
    """claims.json: one row per claim x metric x comparison x data set x convention x neural family (and per beta
    at matched beta), each in its family of `design` (DEFAULT_DESIGN when None) and decided there. Runs the plateau
    check found still improving are left out (PLATEAU_POLICY) unless `leave_out_still_improving` is False."""
    design = design or DEFAULT_DESIGN
    still_improving = plateau_exclusions(records)
    excluded = still_improving if leave_out_still_improving else []
    left_out = {run.run for run in excluded}
    tested = _tested_rows([record for record in records if record.run_id not in left_out], design)
    design_record = _design_record(design, tested)
    adjust(tested, design)
    for item in tested:
        decide(item, design)
    rows = [item.row for item in tested]
    for row in rows:
        row.seeds_not_on_plateau = _lost_seeds(row, excluded)
    return ClaimsReport(
        version=CLAIMS_VERSION, units="nats", confidence=CONFIDENCE, alpha=design.alpha,
        comparisons={name: comparison.method for name, comparison in COMPARISONS.items()},
        interval="two-sided Student t interval of the paired differences over seeds (raw: not adjusted)",
        multiplicity={"families": {family: FAMILY_RULES[family] for family in FAMILY_RULES}, "p_values": P_VALUES,
                      "alpha": design.alpha, "tests": sum(row.p_adjusted is not None for row in rows)},
        verdict_rule=VERDICT_RULE,
        plateau=PlateauOutcome(PLATEAU_POLICY if leave_out_still_improving else PLATEAU_NOT_APPLIED,
                               leave_out_still_improving, still_improving, excluded),
        claims={claim.claim_id: {"statement": claim.statement, "metrics": list(claim.metrics),
                                 "primary_metric": claim.metrics[0], "predicted_sign": claim.predicted_sign,
                                 "comparisons": list(claim.comparisons),
                                 "endpoint": next((dataclasses.asdict(endpoint) for endpoint in design.endpoints
                                                   if endpoint.claim == claim.claim_id), None)} for claim in CLAIMS},
        results=rows, design=design_record)


def write_claims(report: ClaimsReport, path: Path) -> Path:
    """claims.json, atomically; every result names its weighting convention and units."""
    atomic_write_json(Path(path), report.to_json())
    return Path(path)
