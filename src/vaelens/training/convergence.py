"""Has a run reached its plateau? The training objective's relative improvement over the last 20% of steps.

The logged loss of one batch is noisy, so each end of that stretch is a window mean: the records in
(0.75 T, 0.85 T] stand for step 0.8 T and those in (0.9 T, T] for the end. A run counts as converged when
the objective improved by less than 2% of its value at 0.8 T.
"""

from __future__ import annotations

import math

TAIL = 0.2
"""The stretch judged: the last 20% of the steps."""
THRESHOLD = 0.02
"""Relative improvement below which the run is on its plateau."""
RULE = ("(mean logged loss over steps (0.75T, 0.85T] minus mean over (0.9T, T]) / |the first|; "
        f"converged when below {THRESHOLD:g}")


def _window_mean(records: list[dict], low: float, high: float, key: str) -> tuple[float | None, int]:
    values = [record[key] for record in records if low < record["step"] <= high and key in record
              and isinstance(record[key], (int, float)) and math.isfinite(record[key])]
    return (sum(values) / len(values), len(values)) if values else (None, 0)


def convergence(records: list[dict], steps: int, key: str = "loss") -> dict:
    """The convergence figure of one run from its metrics.jsonl records (summary.json `convergence`)."""
    start, start_count = _window_mean(records, (1 - TAIL - 0.05) * steps, (1 - TAIL + 0.05) * steps, key)
    end, end_count = _window_mean(records, (1 - TAIL / 2) * steps, steps, key)
    figure = {"rule": RULE, "key": key, "records_at_80_percent": start_count, "records_at_end": end_count}
    if start is None or end is None or start == 0:
        return {**figure, "relative_improvement": None, "converged": None,
                "reason": f"too few {key} records near 0.8 T and T: set train.log_every <= train.steps / 20"}
    improvement = (start - end) / abs(start)
    return {**figure, "loss_at_80_percent": start, "loss_at_end": end, "relative_improvement": improvement,
            "converged": improvement < THRESHOLD}
