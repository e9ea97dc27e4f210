"""The three claims of PAPER.md tested on a sweep: paired effects, t-intervals over seeds, verdicts.

Effect = (neural-loss run) minus (pointwise run) at the same data set, beta, seed and otherwise
equal setup. The 95% interval is the Student t interval of those paired differences over seeds.
The verdict looks only at the interval: `supported` when it excludes 0 on the side the claim
predicts, `contradicted` when it excludes 0 on the other side, `inconclusive` otherwise (and
always with fewer than two seeds, where no interval exists).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from scipy import stats

from vaelens.config import pairing_setup
from vaelens.io import atomic_write_json
from vaelens.report.collect import RunRecord

CLAIMS_VERSION = 1
CONFIDENCE = 0.95
VERDICTS = ("supported", "contradicted", "inconclusive")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, and the metrics that test it."""

    claim_id: str
    """C1, C2 or C3."""
    statement: str
    """What the paper says neural losses do."""
    direction: int
    """-1: the claim predicts neural minus pointwise < 0; +1: > 0."""
    metrics: tuple[str, ...]
    """Report metrics (vaelens.report.collect.METRIC_KEYS) that test it; the first is the primary one."""


CLAIMS = (
    Claim("C1", "neural terms reduce the information in the latents (rate, I(x;z))", -1,
          ("rate", "mutual_information")),
    Claim("C2", "neural terms make posterior means more isotropic (IsoScore, participation ratio; active units)", +1,
          ("isoscore_active", "participation_ratio_active")),
    Claim("C3", "neural terms spread posterior variance more evenly (normalised entropy of E_x sigma_j^2)", +1,
          ("variance_entropy",)),
)
METRIC_UNITS = {"rate": "nats", "mutual_information": "nats"}
"""Units of the claim metrics; the others are dimensionless ratios."""


def t_interval(values, confidence: float = CONFIDENCE) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high) of the Student t interval of the mean; low/high None with fewer than 2 values."""
    values = [float(value) for value in values]
    if not values:
        return None, None, None
    if any(not math.isfinite(value) for value in values):
        raise ValueError(f"paired differences must be finite, got {values}")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None, None
    deviation = math.sqrt(sum((value - mean) ** 2 for value in values) / (len(values) - 1))
    half_width = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * deviation / math.sqrt(len(values))
    return mean, mean - half_width, mean + half_width


def verdict(low: float | None, high: float | None, direction: int) -> str:
    """The verdict of an interval for a claim predicting the sign `direction` (+1 or -1)."""
    if direction not in (-1, 1):
        raise ValueError(f"direction must be +1 or -1, got {direction}")
    if low is None or high is None:
        return "inconclusive"
    if low > high:
        raise ValueError(f"interval low {low} exceeds high {high}")
    if low > 0:
        return "supported" if direction > 0 else "contradicted"
    if high < 0:
        return "supported" if direction < 0 else "contradicted"
    return "inconclusive"


def baseline_convention(convention: str) -> str:
    """Convention of the pointwise run a neural run is compared with: the convex mix has no pointwise-only
    form (its a = 0 end is the additive pointwise loss), the others compare within the convention."""
    return "additive" if convention == "convex" else convention


COMPARED_TERMS = ("perceptual", "adversarial", "structural", "neural")
"""Config fields of these terms (vaelens.config.fields) are what a neural run and its baseline differ in."""


def _setup_key(record: RunRecord, convention: str) -> str:
    """Every result setting that must match between a neural run and its pointwise baseline (from the config
    fields' roles): all but the compared terms' fields, the seed (paired on) and the convention (given)."""
    setup = pairing_setup(record.config, COMPARED_TERMS, exclude=("train.seed", "loss.convention"))
    return json.dumps({**setup, "convention": convention}, sort_keys=True, default=str)


def paired_differences(records: list[RunRecord], metric: str) -> dict[tuple, dict[int, float]]:
    """(dataset, convention, family, beta) -> {seed: neural - pointwise} for every matched pair."""
    usable = [record for record in records if record.usable and record.metric(metric) is not None]
    baselines = {}
    for record in usable:
        if record.loss_family == "pointwise":
            baselines.setdefault((_setup_key(record, record.convention), record.seed), record)
    pairs: dict[tuple, dict[int, float]] = defaultdict(dict)
    for record in usable:
        if record.loss_family == "pointwise":
            continue
        key = (_setup_key(record, baseline_convention(record.convention)), record.seed)
        baseline = baselines.get(key)
        if baseline is not None:
            group = (record.dataset, record.convention, record.loss_family, record.beta)
            pairs[group][record.seed] = record.metric(metric) - baseline.metric(metric)
    return dict(pairs)


def _result(claim: Claim, metric: str, group: tuple, beta, differences: dict, metric_key: str | None) -> dict:
    dataset, convention, family = group
    effect, low, high = t_interval(list(differences.values()))
    return {"claim": claim.claim_id, "metric": metric, "metric_key": metric_key,
            "metric_units": METRIC_UNITS.get(metric, "dimensionless"), "dataset": dataset,
            "convention": convention, "baseline_convention": baseline_convention(convention),
            "neural_family": family, "beta": beta, "effect": effect, "ci_low": low, "ci_high": high,
            "n_pairs": len(differences), "seeds": sorted(differences),
            "predicted_sign": "negative" if claim.direction < 0 else "positive",
            "verdict": verdict(low, high, claim.direction)}


def _metric_key(records: list[RunRecord], metric: str) -> str | None:
    keys = sorted({record.metric_key(metric) for record in records if record.usable} - {None})
    return " | ".join(keys) if keys else None


def evaluate_claims(records: list[RunRecord]) -> dict:
    """The claims.json payload: one result per claim x metric x data set x convention x neural family,
    per beta and pooled over betas ("all": per seed, the mean difference over the betas that seed has
    at every beta of the group)."""
    results = []
    for claim in CLAIMS:
        for metric in claim.metrics:
            key = _metric_key(records, metric)
            by_group: dict[tuple, dict] = defaultdict(dict)
            for (dataset, convention, family, beta), differences in paired_differences(records, metric).items():
                by_group[(dataset, convention, family)][beta] = differences
            for group in sorted(by_group, key=str):
                per_beta = by_group[group]
                common_seeds = set.intersection(*(set(d) for d in per_beta.values()))
                pooled = {seed: sum(d[seed] for d in per_beta.values()) / len(per_beta) for seed in common_seeds}
                results.append(_result(claim, metric, group, "all", pooled, key))
                for beta in sorted(per_beta):
                    results.append(_result(claim, metric, group, beta, per_beta[beta], key))
    return {
        "version": CLAIMS_VERSION, "units": "nats", "confidence": CONFIDENCE,
        "effect": "neural-loss run minus pointwise run at matched data set, beta, seed and setup",
        "interval": "two-sided Student t interval of the paired differences over seeds",
        "verdict_rule": "supported if the interval excludes 0 on the predicted side, contradicted if it "
                        "excludes 0 on the other side, inconclusive otherwise or with fewer than 2 seeds",
        "claims": {claim.claim_id: {"statement": claim.statement, "metrics": list(claim.metrics),
                                    "primary_metric": claim.metrics[0],
                                    "predicted_sign": "negative" if claim.direction < 0 else "positive"}
                   for claim in CLAIMS},
        "results": results,
    }


def write_claims(payload: dict, path: Path) -> Path:
    """claims.json, atomically; every result names its weighting convention and units."""
    atomic_write_json(Path(path), payload)
    return Path(path)


def summary_rows(payload: dict) -> list[dict]:
    """The results pooled over betas: the rows of the claims table."""
    return [result for result in payload["results"] if result["beta"] == "all"]


def _number(value) -> str:
    return "n/a" if value is None else f"{value:+.3g}"


def format_claims_table(payload: dict) -> str:
    """A plain-text table of the pooled results, for the terminal."""
    header = ("claim", "metric", "dataset", "convention", "family", "effect", "95% CI", "n", "verdict")
    rows = [(row["claim"], row["metric"], row["dataset"], row["convention"], row["neural_family"],
             _number(row["effect"]), f"[{_number(row['ci_low'])}, {_number(row['ci_high'])}]",
             str(row["n_pairs"]), row["verdict"]) for row in summary_rows(payload)]
    if not rows:
        return "no claim could be tested: the sweep has no neural-loss run with a matching pointwise run"
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)) for line in (header, *rows)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
