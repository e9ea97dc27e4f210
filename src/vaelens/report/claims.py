"""The claims of PAPER.md tested on a sweep: paired effects, t-intervals over seeds, Holm-adjusted verdicts.

Three comparisons (PAPER.md section 7; exact formulas in docs/claims.md):
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
(vaelens.training.plateau) found still improving are left out of every comparison, and claims.json lists them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from vaelens.io import atomic_write_json
from vaelens.report import pairing
from vaelens.report.collect import RunRecord
from vaelens.report.matching import common_span, make_curve, matched_difference
from vaelens.report.statistics import ALPHA, CONFIDENCE, holm_adjust, t_interval, t_test, verdict

CLAIMS_VERSION = 3


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, the metrics that test it and the comparisons they are tested in."""

    claim_id: str
    """C1 to C4."""
    statement: str
    """What the paper says neural losses do."""
    direction: int
    """-1: the claim predicts neural minus pointwise < 0; +1: > 0; 0: != 0 (either sign)."""
    metrics: tuple[str, ...]
    """Report metrics (vaelens.report.collect.METRIC_KEYS) that test it; the first is the primary one."""
    comparisons: tuple[str, ...] = ("matched_beta",)
    """Which comparisons (COMPARISONS) test it."""

    @property
    def predicted_sign(self) -> str:
        return {-1: "negative", 0: "non-zero", 1: "positive"}[self.direction]


GEOMETRY_METRICS = ("isoscore_active", "participation_ratio_active", "variance_entropy")
CLAIMS = (
    Claim("C1", "neural terms reduce the information in the latents (rate, I(x;z))", -1,
          ("rate", "mutual_information"), ("matched_beta", "matched_distortion")),
    Claim("C2", "neural terms make posterior means more isotropic (IsoScore, participation ratio; active units)", +1,
          ("isoscore_active", "participation_ratio_active")),
    Claim("C3", "neural terms spread posterior variance more evenly (normalised entropy of E_x sigma_j^2)", +1,
          ("variance_entropy",)),
    Claim("C4", "at equal rate, neural-loss latents still differ in geometry (the C2 and C3 metrics compared "
          "along the metric-vs-rate curves): rate-distortion alone does not explain C2/C3", 0,
          GEOMETRY_METRICS, ("matched_rate",)),
)
COMPARISONS = {
    "matched_beta": "neural-loss run minus pointwise run at the same data set, beta, seed and setup; pooled "
                    "rows average each seed's differences over the betas it has in every beta of the group",
    "matched_rate": "per seed, the mean of m_neural(R) - m_pointwise(R) over the rate range every seed's "
                    "curves of both families cover, each curve piecewise linear in log R through the runs of "
                    "the beta grid, averaged uniformly in log R",
    "matched_distortion": "per seed, the mean of y_neural(D) - y_pointwise(D) over the pixel-MSE range every "
                          "seed's curves of both families cover, piecewise linear in log D, uniform in log D",
}
MATCHED_AXES = {"matched_rate": ("rate", "nats"), "matched_distortion": ("distortion.mse", "MSE per pixel")}
"""The x of each curve comparison: the report metric interpolated along, and its units."""
METRIC_UNITS = {"rate": "nats", "mutual_information": "nats"}
"""Units of the claim metrics; the others are dimensionless ratios."""
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


def plateau_exclusions(records: list[RunRecord]) -> list[dict]:
    """The usable runs the paired plateau check found still improving (plateau.json converged false), each with
    its setting and figure: a verdict must rest on trained models, so these leave the claims."""
    from vaelens.training.plateau import read_check

    excluded = []
    for run in records:
        check = read_check(run.run_dir) if run.usable else None
        if check and check.get("converged") is False:
            excluded.append({"run": run.run_id, "dataset": run.dataset, "convention": run.convention,
                             "neural_family": run.loss_family, "beta": run.beta, "seed": run.seed,
                             "relative_improvement": check.get("relative_improvement"),
                             "stretch": [check.get("from_step"), check.get("to_step")]})
    return excluded


def _lost_seeds(row: dict, excluded: list[dict]) -> list[int]:
    """Seeds of `row` whose neural or pointwise run at its betas is in `excluded`."""
    sides = {(row["convention"], row["neural_family"]), (row["baseline_convention"], "pointwise")}
    return sorted({run["seed"] for run in excluded if run["dataset"] == row["dataset"]
                   and (run["convention"], run["neural_family"]) in sides
                   and row["beta"] in ("all", run["beta"])})


def _limit_reason(runs: list[RunRecord], metric: str) -> tuple[str, str] | None:
    """(basis, reason) when any run's estimate of `metric` is at its estimator's limit."""
    limits = [run.estimate_limit(metric) for run in runs]
    hits = [limit for limit in limits if limit]
    if not hits:
        return None
    basis = "saturated" if hits[0].startswith("saturated") else "bounded_by_sample"
    return basis, f"{hits[0]} (in {len(hits)} of {len(runs)} runs)"


def _row(claim: Claim, comparison: str, metric: str, group: tuple, beta, differences: dict[int, float],
         runs: list[RunRecord], overlap: dict | None = None, withheld: tuple[str, str] | None = None) -> dict:
    """One result before the Holm pass; `_withheld` and `_runs` are dropped from claims.json."""
    dataset, convention, family = group
    effect, low, high = t_interval(list(differences.values()))
    keys = sorted({run.metric_key(metric) for run in runs} - {None})
    return {"claim": claim.claim_id, "comparison": comparison, "metric": metric,
            "metric_key": " | ".join(keys) if keys else None,
            "metric_units": METRIC_UNITS.get(metric, "dimensionless"), "dataset": dataset,
            "convention": convention, "baseline_convention": pairing.baseline_convention(convention),
            "neural_family": family, "beta": beta, "effect": effect, "ci_low": low, "ci_high": high,
            "p_value": t_test(list(differences.values())), "n_pairs": len(differences), "seeds": sorted(differences),
            "overlap": overlap, "predicted_sign": claim.predicted_sign,
            "_withheld": withheld or _limit_reason(runs, metric), "_direction": claim.direction}


def _matched_beta_rows(claim: Claim, metric: str, paired: dict) -> list[dict]:
    """Pooled ("all": per seed, the mean difference over the betas that seed has at every beta of the group)
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
        rows.append(_row(claim, "matched_beta", metric, group, "all", pooled, runs))
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


def _matched_curve_row(claim: Claim, comparison: str, metric: str, group: tuple, by_seed: dict) -> dict:
    """One pooled row of a curve comparison: every seed's neural and pointwise curves, the common range."""
    x_metric, x_units = MATCHED_AXES[comparison]
    curves = {seed: (_curve(neural, x_metric, metric), _curve(baseline, x_metric, metric))
              for seed, (neural, baseline) in by_seed.items()}
    curves = {seed: pair for seed, pair in curves.items() if None not in pair}
    overlap = {"variable": x_metric, "units": x_units, "low": None, "high": None}
    if not curves:
        reason = "fewer than 2 betas per curve: no seed has both curves through 2 distinct values of " + x_metric
        return _row(claim, comparison, metric, group, "all", {}, [], overlap, ("too_few_betas", reason))
    span = common_span([curve for pair in curves.values() for curve in pair])
    if span is None:
        reason = (f"no overlap: the {x_metric} ranges every seed's pointwise curve covers "
                  f"({_span_text([p[1] for p in curves.values()])}) and every seed's neural curve covers "
                  f"({_span_text([p[0] for p in curves.values()])}) share no range ({x_units})")
        return _row(claim, comparison, metric, group, "all", {}, [], overlap, ("no_overlap", reason))
    overlap.update(low=math.exp(span[0]), high=math.exp(span[1]))
    differences = {seed: matched_difference(neural, baseline, span) for seed, (neural, baseline) in curves.items()}
    runs = [run for seed in curves for side in by_seed[seed] for run in side]
    return _row(claim, comparison, metric, group, "all", differences, runs, overlap)


def _decide(row: dict) -> None:
    """Fill verdict, verdict_basis and verdict_reason of a row whose p_holm is set."""
    withheld, p_holm = row["_withheld"], row["p_holm"]
    if withheld:
        row["verdict_basis"], row["verdict_reason"] = withheld
        row["verdict"] = "inconclusive"
        return
    if p_holm is None:
        row["verdict"], row["verdict_basis"] = "inconclusive", "single_seed"
        row["verdict_reason"] = f"{row['n_pairs']} seed(s): no interval or p-value"
        return
    row["verdict"] = verdict(p_holm, row["effect"], row["_direction"])
    row["verdict_basis"] = "holm"
    reason = f"Holm-adjusted p = {p_holm:.3g} {'<' if p_holm < ALPHA else '>='} {ALPHA}"
    if row["verdict"] == "supported":
        reason += ", effect on the predicted side" if row["_direction"] else ", effect non-zero"
    elif row["verdict"] == "contradicted":
        reason += ", effect on the side opposite to the prediction"
    elif row["_direction"] == 0 and row["ci_low"] is not None:
        bound = max(abs(row["ci_low"]), abs(row["ci_high"]))
        reason += f"; the raw 95% interval bounds |effect| by {bound:.3g} (no equivalence margin is declared)"
    row["verdict_reason"] = reason


def apply_holm(rows: list[dict]) -> None:
    """Set p_holm on every row with a p-value (Holm over all of them), then each row's verdict."""
    tested = [row for row in rows if row["p_value"] is not None]
    for row, adjusted in zip(tested, holm_adjust([row["p_value"] for row in tested])):
        row["p_holm"] = adjusted
    for row in rows:
        row.setdefault("p_holm", None)
        _decide(row)
        del row["_withheld"], row["_direction"]


def evaluate_claims(records: list[RunRecord], leave_out_still_improving: bool = True) -> dict:
    """The claims.json payload: one row per claim x metric x comparison x data set x convention x neural
    family (and per beta at matched beta), every verdict Holm-adjusted over all rows. Runs the plateau check
    found still improving are left out (PLATEAU_POLICY) unless `leave_out_still_improving` is False."""
    still_improving = plateau_exclusions(records)
    excluded = still_improving if leave_out_still_improving else []
    left_out = {run["run"] for run in excluded}
    trained = [record for record in records if record.run_id not in left_out]
    paired, curves = pairing.paired_runs(trained), pairing.curve_runs(trained)
    rows = []
    for claim in CLAIMS:
        for comparison in claim.comparisons:
            for metric in claim.metrics:
                if comparison == "matched_beta":
                    rows += _matched_beta_rows(claim, metric, paired)
                else:
                    rows += [_matched_curve_row(claim, comparison, metric, group, curves[group])
                             for group in sorted(curves, key=str)]
    apply_holm(rows)
    for row in rows:
        row["seeds_not_on_plateau"] = _lost_seeds(row, excluded)
    return {
        "version": CLAIMS_VERSION, "units": "nats", "confidence": CONFIDENCE, "alpha": ALPHA,
        "comparisons": COMPARISONS,
        "interval": "two-sided Student t interval of the paired differences over seeds (raw: not adjusted)",
        "multiplicity": {**MULTIPLICITY, "tests": sum(row["p_value"] is not None for row in rows)},
        "verdict_rule": VERDICT_RULE,
        "plateau": {"policy": PLATEAU_POLICY if leave_out_still_improving else PLATEAU_NOT_APPLIED,
                    "leave_out_still_improving": leave_out_still_improving, "runs_still_improving": still_improving,
                    "runs_left_out": excluded},
        "claims": {claim.claim_id: {"statement": claim.statement, "metrics": list(claim.metrics),
                                    "primary_metric": claim.metrics[0], "predicted_sign": claim.predicted_sign,
                                    "comparisons": list(claim.comparisons)} for claim in CLAIMS},
        "results": rows,
    }


def write_claims(payload: dict, path: Path) -> Path:
    """claims.json, atomically; every result names its weighting convention and units."""
    atomic_write_json(Path(path), payload)
    return Path(path)


def summary_rows(payload: dict) -> list[dict]:
    """The results pooled over betas (matched-beta pooled rows and every curve comparison): the claims table."""
    return [result for result in payload["results"] if result["beta"] == "all"]


def seeds_text(row: dict, number=str) -> str:
    """A row's seed count, with the seeds whose runs the plateau check left out of it: a matched-beta row loses
    those seeds, a curve row their runs' points: '4 (seed 2 left out)'; the claims' plateau paragraph says why."""
    lost = row.get("seeds_not_on_plateau") or []
    if not lost:
        return number(row["n_pairs"])
    return f"{number(row['n_pairs'])} (seed{'s' if len(lost) > 1 else ''} {', '.join(map(str, lost))} left out)"


def plateau_exclusion_text(payload: dict) -> str:
    """One paragraph: which runs the claims leave out as still improving, or that none were."""
    plateau = payload.get("plateau") or {}
    left_out = plateau.get("runs_left_out") or []
    improving = plateau.get("runs_still_improving") or []
    if improving and not plateau.get("leave_out_still_improving", True):
        return (f"{len(improving)} run{'s' if len(improving) > 1 else ''} still improving by the paired plateau "
                f"check, none left out: {plateau['policy']}.")
    if not left_out:
        return ("Every run the claims use is on the plateau by the paired plateau check (or has no check); none "
                "was left out.")
    groups: dict[tuple, list[str]] = {}
    for run in left_out:
        figure = run["relative_improvement"]
        groups.setdefault((run["dataset"], run["convention"], run["neural_family"]), []).append(
            f"beta {run['beta']:g} seed {run['seed']}" + ("" if figure is None else f" ({100 * figure:.2f}%)"))
    listed = "; ".join(f"{dataset} {convention} {family}: {', '.join(runs)}"
                       for (dataset, convention, family), runs in groups.items())
    return (f"{len(left_out)} run{'s' if len(left_out) > 1 else ''} still improving by the paired plateau check "
            f"{'are' if len(left_out) > 1 else 'is'} left out of the claims: {listed}. Rule: {plateau['policy']}.")


def _number(value) -> str:
    return "n/a" if value is None else f"{value:+.3g}"


def _p(value) -> str:
    return "n/a" if value is None else f"{value:.2g}"


def format_claims_table(payload: dict) -> str:
    """A plain-text table of the pooled results, for the terminal: raw 95% CI, raw and Holm-adjusted p."""
    header = ("claim", "comparison", "metric", "dataset", "convention", "family", "effect", "95% CI (raw)",
              "p", "p_holm", "n", "verdict", "basis")
    rows = [(row["claim"], row["comparison"], row["metric"], row["dataset"], row["convention"], row["neural_family"],
             _number(row["effect"]), f"[{_number(row['ci_low'])}, {_number(row['ci_high'])}]", _p(row["p_value"]),
             _p(row["p_holm"]), str(row["n_pairs"]), row["verdict"], row["verdict_basis"])
            for row in summary_rows(payload)]
    if not rows:
        if (payload.get("plateau") or {}).get("runs_left_out"):
            return "no claim could be tested. " + plateau_exclusion_text(payload)
        return "no claim could be tested: the sweep has no neural-loss run with a matching pointwise run"
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)) for line in (header, *rows)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    multiplicity = payload.get("multiplicity", {})
    if (payload.get("plateau") or {}).get("runs_still_improving"):
        lines.append(plateau_exclusion_text(payload))
    lines.append(f"verdicts: {multiplicity.get('method', 'Holm')}-adjusted p over all "
                 f"{multiplicity.get('tests', '?')} rows with a p-value (per-beta rows in claims.json)")
    return "\n".join(lines)
