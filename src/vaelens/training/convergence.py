"""Has a run reached its plateau? The training objective's relative improvement over the last 20% of steps.

Each end of that stretch is a window mean of metrics.jsonl records: those in (0.75 T, 0.85 T] stand for
step 0.8 T and those in (0.9 T, T] for the end. A run counts as converged when the objective improved by
less than 2% of its value at 0.8 T, the value measured from the objective's origin: the likelihood's
normalising constant (`vaelens.losses.objective.objective_constant`) is not part of what training
reduces, and a Gaussian's D (log sigma + log(2 pi) / 2) would otherwise set the figure's scale (natural
patches at sigma 0.1: -4,250 nats on an objective of a few thousand). Objectives with a learned scale
(learned-sigma Gaussian, ldm) have no fixed origin; their figure is taken on the raw value and says so.

Records carry `loss_interval_mean`, the mean objective over every step since the previous record (the
training loop's `IntervalMean`); older runs only have `loss`, the objective of one batch, which is several
percent noisy on small batches. Either way the figure states its standard error, from the scatter of the
records in each window, so a reader can tell a slope from noise.
"""

from __future__ import annotations

import math
import statistics

TAIL = 0.2
"""The stretch judged: the last 20% of the steps."""
THRESHOLD = 0.02
"""Relative improvement below which the run is on its plateau."""
INTERVAL_KEY = "loss_interval_mean"
"""The metrics.jsonl field with the mean objective since the previous record."""
RULE = ("(mean logged objective over steps (0.75T, 0.85T] minus mean over (0.9T, T]) / |the first, less the "
        f"objective's parameter-free constant|; converged when below {THRESHOLD:g}")
NO_ORIGIN = ("the objective has a learned scale and so no fixed origin: the figure is relative to its raw value, "
             "whose zero is arbitrary; read the improvement in nats per image beside it")


def _window(records: list[dict], low: float, high: float, key: str) -> tuple[float | None, float | None, int]:
    """Mean, standard error of the mean (None below 2 values) and count of `key` in (low, high]."""
    values = [record[key] for record in records if low < record["step"] <= high and key in record
              and isinstance(record[key], (int, float)) and math.isfinite(record[key])]
    if not values:
        return None, None, 0
    error = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None
    return statistics.fmean(values), error, len(values)


def convergence(records: list[dict], steps: int, key: str | None = None, origin: float | None = 0.0) -> dict:
    """The convergence figure of one run from its metrics.jsonl records (summary.json `convergence`).
    `key`: the logged field judged; by default the interval means where the records have them. `origin`:
    the objective's parameter-free constant per image (None: it has none, see NO_ORIGIN)."""
    if key is None:
        key = INTERVAL_KEY if any(INTERVAL_KEY in record for record in records) else "loss"
    start, start_error, start_count = _window(records, (1 - TAIL - 0.05) * steps, (1 - TAIL + 0.05) * steps, key)
    end, end_error, end_count = _window(records, (1 - TAIL / 2) * steps, steps, key)
    figure = {"rule": RULE, "key": key, "records_at_80_percent": start_count, "records_at_end": end_count,
              "origin": origin}
    if origin is None:
        figure["note"] = NO_ORIGIN
    scale = abs(start - (origin or 0.0)) if start is not None else None
    if start is None or end is None or not scale:
        return {**figure, "relative_improvement": None, "standard_error": None, "converged": None,
                "reason": f"too few {key} records near 0.8 T and T: set train.log_every <= train.steps / 20"}
    improvement = (start - end) / scale
    error = (math.hypot(start_error, end_error) / scale
             if start_error is not None and end_error is not None else None)
    return {**figure, "loss_at_80_percent": start, "loss_at_end": end, "improvement_nats": start - end,
            "relative_improvement": improvement,
            "standard_error": error, "converged": improvement < THRESHOLD}
