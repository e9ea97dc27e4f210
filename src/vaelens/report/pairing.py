"""Which pointwise run each neural-loss run is compared with (docs/science.md, "How a claim is tested").

A neural run and its baseline share the data set, the seed and every result setting of the config
except the compared terms' own fields (vaelens.config.pairing_setup); the convex convention, which
has no pointwise-only form, is compared with the additive pointwise run. At matched beta they also
share beta; at matched rate or distortion each seed's runs over the beta grid are compared as curves.
Where a sweep holds several variants of one family (say two perceptual weights) at the same data set,
convention, beta and seed, the first run in sweep order is the one compared.
"""

from __future__ import annotations

import json
from collections import defaultdict

from vaelens.config import pairing_setup, to_dict
from vaelens.losses.terms import compared_fields
from vaelens.training.sweepdir import RunRecord

Pair = tuple[RunRecord, RunRecord]
"""(neural run, its pointwise baseline)."""


def baseline_convention(convention: str) -> str:
    """Convention of the pointwise run a neural run is compared with: the convex mix has no pointwise-only
    form (its a = 0 end is the additive pointwise loss), the others compare within the convention."""
    return "additive" if convention == "convex" else convention


def _setup_key(record: RunRecord, convention: str, per_beta: bool) -> str:
    """Every result setting that must match between a neural run and its pointwise baseline (from the config
    fields' roles): all but the compared terms' fields, the seed (paired on), the convention (given) and,
    for curves over the beta grid, beta."""
    exclude = ("train.seed", "loss.convention") + (() if per_beta else ("loss.beta",))
    # The fields of every registered term (and the convex share) are what a neural run and its baseline differ in.
    setup = pairing_setup(to_dict(record.config) if record.config is not None else {}, compared_fields(),
                          exclude=exclude)
    return json.dumps({**setup, "convention": convention}, sort_keys=True, default=str)


def _split(records: list[RunRecord]) -> tuple[list[RunRecord], list[RunRecord]]:
    usable = [record for record in records if record.usable and record.beta is not None]
    return ([record for record in usable if record.loss_family == "pointwise"],
            [record for record in usable if record.loss_family != "pointwise"])


def paired_runs(records: list[RunRecord]) -> dict[tuple, dict[int, Pair]]:
    """(dataset, convention, family, beta) -> {seed: (neural, pointwise)} for every pair at matched beta."""
    pointwise, neural = _split(records)
    baselines: dict[tuple, RunRecord] = {}
    for record in pointwise:
        baselines.setdefault((_setup_key(record, record.convention, True), record.seed), record)
    pairs: dict[tuple, dict[int, Pair]] = defaultdict(dict)
    for record in neural:
        baseline = baselines.get((_setup_key(record, baseline_convention(record.convention), True), record.seed))
        if baseline is not None:
            group = (record.dataset, record.convention, record.loss_family, record.beta)
            pairs[group].setdefault(record.seed, (record, baseline))
    return dict(pairs)


def _by_beta(runs: list[RunRecord]) -> list[RunRecord]:
    """One run per beta (the first), in increasing beta."""
    first: dict[float, RunRecord] = {}
    for run in runs:
        first.setdefault(run.beta, run)
    return [first[beta] for beta in sorted(first)]


def curve_runs(records: list[RunRecord]) -> dict[tuple, dict[int, tuple[list[RunRecord], list[RunRecord]]]]:
    """(dataset, convention, family) -> {seed: (neural runs, pointwise runs)}: each seed's runs over the
    beta grid of a neural family and of its baseline setting, one run per beta, in increasing beta."""
    pointwise, neural = _split(records)
    baselines: dict[tuple, list[RunRecord]] = defaultdict(list)
    for record in pointwise:
        baselines[(_setup_key(record, record.convention, False), record.seed)].append(record)
    curves: dict[tuple, dict[int, tuple[tuple, list[RunRecord]]]] = defaultdict(dict)
    for record in neural:
        key = (_setup_key(record, baseline_convention(record.convention), False), record.seed)
        if key in baselines:
            group = (record.dataset, record.convention, record.loss_family)
            setting, runs = curves[group].setdefault(record.seed, (key, []))
            if setting == key:  # a second setting of the same family and seed is not mixed into the curve
                runs.append(record)
    return {group: {seed: (_by_beta(runs), _by_beta(baselines[key])) for seed, (key, runs) in by_seed.items()}
            for group, by_seed in curves.items()}
