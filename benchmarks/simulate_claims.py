"""The claims engine on simulated studies with a known answer, at more replications than the tests afford: the figures
docs/claims.md quotes ("Validated on simulated ground truth").

    python benchmarks/simulate_claims.py [--replications 1000] [--json docs/claims-simulation.json]

Every study is vaelens.report.simulation.simulated_runs (a pointwise and a +perceptual run per seed and beta, betas
0.5, 2, 8, 32; run noise 0.02, seed spread 0.05) decided by vaelens.report.claims.evaluate_claims under the default
design (primary family: the four endpoints in that one setting). Seeded: rerunning gives the same numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vaelens.claims_design import DEFAULT_DESIGN
from vaelens.report.claims import evaluate_claims
from vaelens.report.planner import power, spreads_from_claims
from vaelens.report.simulation import Truth, simulated_runs

DECIDED = ("supported", "contradicted")


def studies(truth: Truth, replications: int, seeds: int, label: str, rng_seed: int = 11) -> list[dict]:
    """Per replication, the primary rows by claim."""
    rng = np.random.default_rng(rng_seed)
    return [{row.claim: row for row in evaluate_claims(simulated_runs(truth, seeds=range(seeds), rng=rng))
             .family_rows("primary")} for _ in tqdm(range(replications), desc=label, leave=False)]


def share(values) -> dict:
    """A proportion with its Monte Carlo standard error."""
    values = list(values)
    p = float(np.mean(values))
    return {"value": p, "standard_error": math.sqrt(p * (1 - p) / len(values)), "replications": len(values)}


def null_study(replications: int) -> dict:
    runs = studies(Truth(), replications, 5, "null")
    return {"family_wise_error": share(any(row.verdict in DECIDED for row in study.values()) for study in runs),
            "no_effect_share": {claim: share(study[claim].verdict == "no effect" for study in runs)
                                for claim in ("C1", "C2", "C3", "C4")}}


def moved_along_the_curve(replications: int, step_at: float | None = None) -> dict:
    c4 = [study["C4"] for study in studies(Truth(shift=2.0, step_at=step_at), replications, 5,
                                           "move" + (" (step)" if step_at else ""))]
    effects = np.array([row.effect for row in c4])
    return {"coverage": share(row.ci_low <= 0 <= row.ci_high for row in c4),
            "mean_effect": float(effects.mean()), "effect_standard_error": float(effects.std(ddof=1) / math.sqrt(
                len(effects))), "decided_difference": share(row.verdict in DECIDED for row in c4),
            "no_effect": share(row.verdict == "no effect" for row in c4)}


def known_effect(replications: int) -> dict:
    """Power at 5 and 10 seeds of a known C4 effect (IsoScore -0.1 at equal rate) and a C1 effect (-1 nat), beside the
    planner's prediction from one 5-seed pilot of the same truth."""
    truth = Truth(geometry_effect=-0.1, rate_effect=-1.0)
    pilot = evaluate_claims(simulated_runs(truth, seeds=range(5), rng=np.random.default_rng(99)))
    spreads = spreads_from_claims(pilot, DEFAULT_DESIGN)
    result = {}
    for seeds in (5, 10):
        runs = studies(truth, replications, seeds, f"known effect, {seeds} seeds")
        predicted = {row.claim: row.decide_effect for row in power(spreads, seeds, DEFAULT_DESIGN)}
        result[seeds] = {claim: {"decided": share(study[claim].verdict == "supported" for study in runs),
                                 "mean_effect": float(np.mean([study[claim].effect for study in runs])),
                                 "planner_from_pilot": predicted.get(claim)} for claim in ("C1", "C4")}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    n = args.replications
    figures = {"replications": n, "null": null_study(n), "move_smooth": moved_along_the_curve(max(200, n // 2)),
               "move_step": moved_along_the_curve(max(200, n // 2), step_at=8.0), "known_effect": known_effect(
                   max(100, n // 5)), "seconds": None}
    figures["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
