"""Simulated studies with a known answer, for checking the claims engine end to end (docs/claims.md, "Validated on
simulated ground truth"): run records whose analysis values come from a chosen truth, decided by the same code as a
real sweep.

Each seed s has its own offsets (what pairing on seeds removes) and each run its own noise. A pointwise run at beta
has rate R(beta) = rate_scale * beta^-1/2 * e^(offset_s + noise) and geometry g(log R) (IsoScore, participation
ratio, variance entropy: smooth functions of log rate, plus the seed's offset and the run's noise). A neural run at
beta is a pointwise run at `shift` * beta (a pure move along the rate-distortion curve when the effects are 0), with
`rate_effect` added to its rate and `geometry_effect` to its IsoScore at equal rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaelens.config import from_dict
from vaelens.training.sweepdir import RunRecord


@dataclass(frozen=True)
class Truth:
    """What a simulated neural loss does, and how noisy the runs are."""

    shift: float = 1.0
    """A neural run at beta sits where a pointwise run at shift * beta would (1: the same point)."""
    rate_effect: float = 0.0
    """Added to a neural run's rate (nats): the C1 effect at matched beta when shift = 1."""
    geometry_effect: float = 0.0
    """Added to a neural run's IsoScore at equal rate: the C4 effect."""
    entropy_effect: float = 0.0
    """Added to a neural run's variance entropy at equal rate."""
    noise: float = 0.02
    """Standard deviation of each run's own scatter, relative for rate and absolute for IsoScore and entropy."""
    seed_spread: float = 0.05
    """Standard deviation of a seed's offset, shared by its runs of both families."""
    rate_scale: float = 30.0
    """Rate at beta 1 (nats)."""
    step_at: float | None = None
    """None: IsoScore is a smooth curve of log rate; a rate (nats): IsoScore steps by 0.3 there instead (a unit
    switching on), the worst case for interpolating between the knots of a beta grid."""


def geometry(log_rate: float, step_at: float | None = None) -> tuple[float, float]:
    """(IsoScore, variance entropy) of a pointwise run at log rate: IsoScore falls with rate and curves (quadratic in
    log R), so a coarse beta grid has a chord error at matched rate; with `step_at` it is a step there instead."""
    entropy = 0.95 - 0.04 * max(log_rate, 0.0) ** 1.5
    if step_at is not None:
        return 0.6 - 0.3 * (log_rate > math.log(step_at)), entropy
    return 0.9 - 0.12 * log_rate + 0.01 * log_rate ** 2, entropy


def _config(dataset: str, family: str, seed: int, beta: float) -> dict:
    return {"data": {"name": dataset, "image_size": 64, "subset": 128}, "model": {"name": "conv64"},
            "loss": {"beta": beta, "convention": "additive", "likelihood": "bernoulli",
                     "perceptual": "features:dsprites-supervised" if family == "+perceptual" else None,
                     "disc_weight": 0.0},
            "train": {"seed": seed, "steps": 10}}


def _analysis(truth: Truth, beta: float, neural: bool, offsets: np.ndarray, noise: np.ndarray) -> dict:
    rate = truth.rate_scale * (truth.shift * beta if neural else beta) ** -0.5 * math.exp(offsets[0] + noise[0])
    isoscore, entropy = geometry(math.log(rate), truth.step_at)
    rate += truth.rate_effect if neural else 0.0
    isoscore += offsets[1] + noise[1] + (truth.geometry_effect if neural else 0.0)
    entropy += offsets[2] + noise[2] + (truth.entropy_effect if neural else 0.0)
    return {"rate": rate, "mutual_information": 0.8 * rate, "distortion.mse": 0.002 * beta ** 0.6,
            "active_units": 6, "geometry_active.isoscore": isoscore,
            "geometry_active.participation_ratio": 1.0 + 5.0 * isoscore,
            "posterior_variance.normalized_entropy": entropy}


def simulated_runs(truth: Truth, seeds=range(5), betas=(0.5, 2.0, 8.0, 32.0), rng: np.random.Generator | None = None,
                   dataset: str = "dsprites") -> list[RunRecord]:
    """A pointwise and a +perceptual run per seed and beta (additive), drawn from `truth`."""
    rng = rng or np.random.default_rng(0)
    runs = []
    for seed in seeds:
        offsets = rng.normal(0.0, truth.seed_spread, 3)
        for beta in betas:
            for family in ("pointwise", "+perceptual"):
                noise = rng.normal(0.0, truth.noise, 3)
                analysis = _analysis(truth, beta, family != "pointwise", offsets, noise)
                runs.append(RunRecord(f"{family}-{beta:g}-{seed}", Path("/nonexistent"), {}, "finished", None,
                                      from_dict(_config(dataset, family, seed, beta)),
                                      {"weighting_convention": "additive"}, analysis))
    return runs
