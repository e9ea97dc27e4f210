"""Which seeds a pooled row keeps, and what it averages over (docs/claims.md, "Pooling that keeps seeds").

Matched beta: a seed's pooled difference is its mean difference over the betas of the group. A run missing at one
beta (left out as still improving, failed, read from another view) would otherwise cost the row that whole seed, so
the missing cell is filled from the additive seed + beta model d(s, b) = mu + a_s + c_b fitted by least squares to
the observed cells: the seed's own level plus that beta's offset, learned from the other seeds. With every cell
observed the fit is exact and nothing changes.

Matched rate / distortion: each seed's curves must cover the window the row averages over. A declared window keeps
the seeds whose curves cover it and lists the rest; without one, the window is the range every seed covers, and
only when the seeds share none are the seeds that prevent it dropped, one at a time (the one whose removal leaves the
widest common range), so that one seed cannot blank a row that the others support.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vaelens.report.matching import Curve, common_span

MIN_SHARE_OBSERVED = 0.5
"""A seed joins a pooled matched-beta row when it has runs at no fewer than this share of the row's betas: the rest
is imputed, and a seed mostly imputed would be the model's guess, not a measurement."""


@dataclass
class Pooled:
    """A pooled matched-beta row's per-seed differences and how they were made."""

    per_seed: dict[int, float]
    """Seed -> mean difference over `betas` (observed and imputed cells)."""
    betas: list[float]
    """The betas averaged over: those with at least 2 seeds observed (an offset needs two to be estimated)."""
    imputed: list[list]
    """[seed, beta] cells filled from the additive model."""
    dropped: list[dict] = field(default_factory=list)
    """{"seed", "reason"} for seeds with too few observed betas."""


def _additive_fit(cells: dict[tuple[int, float], float], seeds: list[int], betas: list[float]) -> np.ndarray | None:
    """Fitted mu + a_s + c_b for every (seed, beta), shape (seeds, betas); None when the observed cells do not
    identify the model (a seed or a beta linked to the others by no observed cell)."""
    columns = 1 + (len(seeds) - 1) + (len(betas) - 1)
    rows, targets = [], []
    for (seed, beta), value in cells.items():
        row = np.zeros(columns)
        row[0] = 1.0
        if seeds.index(seed) > 0:
            row[seeds.index(seed)] = 1.0
        if betas.index(beta) > 0:
            row[len(seeds) - 1 + betas.index(beta)] = 1.0
        rows.append(row)
        targets.append(value)
    design = np.array(rows)
    if np.linalg.matrix_rank(design) < columns:
        return None
    coefficients, *_ = np.linalg.lstsq(design, np.array(targets), rcond=None)
    seed_effect = np.concatenate(([0.0], coefficients[1:len(seeds)]))
    beta_effect = np.concatenate(([0.0], coefficients[len(seeds):]))
    return coefficients[0] + seed_effect[:, None] + beta_effect[None, :]


def pool_over_betas(differences: dict[float, dict[int, float]]) -> Pooled:
    """Pool beta -> {seed: difference} over betas, keeping seeds with a missing cell (module docstring)."""
    betas = sorted(beta for beta, by_seed in differences.items() if len(by_seed) >= 2)
    if not betas:
        return Pooled({}, [], [])
    counts: dict[int, int] = {}
    for beta in betas:
        for seed in differences[beta]:
            counts[seed] = counts.get(seed, 0) + 1
    needed = max(1, math.ceil(MIN_SHARE_OBSERVED * len(betas)))
    seeds = sorted(seed for seed, count in counts.items() if count >= needed)
    dropped = [{"seed": seed, "reason": f"runs at {count} of the {len(betas)} pooled betas (fewer than {needed})"}
               for seed, count in sorted(counts.items()) if count < needed]
    cells = {(seed, beta): differences[beta][seed] for beta in betas for seed in seeds if seed in differences[beta]}
    missing = [[seed, beta] for seed in seeds for beta in betas if (seed, beta) not in cells]
    fitted = _additive_fit(cells, seeds, betas) if missing else None
    if missing and fitted is None:  # not identified: keep only the seeds observed at every pooled beta
        complete = [seed for seed in seeds if all((seed, beta) in cells for beta in betas)]
        dropped += [{"seed": seed, "reason": "a missing run the additive model cannot fill (no observed cell links "
                                             "it to the other seeds)"} for seed in seeds if seed not in complete]
        seeds, missing = complete, []
    per_seed = {}
    for i, seed in enumerate(seeds):
        values = [cells[(seed, beta)] if (seed, beta) in cells else float(fitted[i, j]) for j, beta in enumerate(betas)]
        per_seed[seed] = sum(values) / len(values)
    return Pooled(per_seed, betas, missing, sorted(dropped, key=lambda item: item["seed"]))


@dataclass
class Window:
    """The range a curve row averages over, and the seeds it keeps."""

    span: tuple[float, float] | None
    """(low, high) in log x; None: no range."""
    seeds: list[int]
    """Seeds whose curves (both families) cover the span."""
    dropped: list[dict]
    """{"seed", "reason"} for the others."""
    declared: bool
    """Whether the span was declared in the design."""


def _covered(pair: tuple[Curve, Curve]) -> str:
    span = common_span(list(pair))
    return "none" if span is None else f"[{math.exp(span[0]):.4g}, {math.exp(span[1]):.4g}]"


def curve_window(curves: dict[int, tuple[Curve, Curve]], declared: tuple[float, float] | None) -> Window:
    """The window of a curve row over `curves` (seed -> (neural, baseline)); `declared` is (low, high) in x units."""
    if declared is not None:
        span = (math.log(declared[0]), math.log(declared[1]))
        kept = [seed for seed, pair in sorted(curves.items()) if all(
            curve.span[0] <= span[0] and span[1] <= curve.span[1] for curve in pair)]
        dropped = [{"seed": seed, "reason": f"its curves share {_covered(pair)}, not the whole declared window"}
                   for seed, pair in sorted(curves.items()) if seed not in kept]
        return Window(span, kept, dropped, True)
    kept = sorted(curves)
    dropped: list[dict] = []
    span = common_span([curve for seed in kept for curve in curves[seed]])
    while span is None and len(kept) > 2:
        def remaining_width(seed):
            rest = common_span([curve for other in kept if other != seed for curve in curves[other]])
            return (-math.inf if rest is None else rest[1] - rest[0], seed)
        worst = max(kept, key=remaining_width)
        kept.remove(worst)
        dropped.append({"seed": worst, "reason": f"its curves share {_covered(curves[worst])}, which leaves the other "
                                                 "seeds no common range"})
        span = common_span([curve for seed in kept for curve in curves[seed]])
    return Window(span, kept if span is not None else [], dropped, False)
