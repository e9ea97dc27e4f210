"""How many images the analysis encodes: a fixed count, or "auto", enough that log N clears the rate.

The full-data I(x; z) estimate is at most log N (docs/science.md, "How a claim is tested"): once the information a model
stores approaches log N, the estimate measures the sample, not the model. "auto" encodes a pilot
draw of AUTO_MIN_IMAGES, measures the rate R there (closed form), and encodes
N = ceil(exp(R + AUTO_MARGIN_NATS)) images, so that log N >= R + 1 nat, within
[AUTO_MIN_IMAGES, min(split size, AUTO_MAX_IMAGES)]. Since I(x; z) <= R, such an N leaves the
estimate room below its ceiling. Where a cap binds it may still saturate, and the analysis flags it
(`mutual_information_saturated`). Both draws are `random_subset` draws with the analysis seed, so the final
draw contains the pilot and only the images it adds are encoded.
"""

from __future__ import annotations

import math

from vaelens.analysis.encode import EncodedSet, encode_images, extend_encoded
from vaelens.metrics.information import rate
from vaelens.sampling import random_subset

AUTO = "auto"
DEFAULT_IMAGES = AUTO
"""How many images every analysis encodes unless told otherwise (the command line, the Python API, sweeps)."""
AUTO_MIN_IMAGES = 2000
"""The pilot draw, and the fewest images "auto" encodes (geometry and disentanglement want them even
at a low rate)."""
AUTO_MAX_IMAGES = 20_000
"""The most images "auto" encodes: the information estimators cost O(N^2 d) (15-60 s at this N and
d = 10 on two shared CPU cores; BENCHMARKS.md), and log 20,000 = 9.9 nats."""
AUTO_MARGIN_NATS = 1.0
"""log N must exceed the pilot rate by this much."""


def check_image_count(value, name: str = "images") -> None:
    """Raise a ValueError unless `value` is "auto" or an integer of at least 2."""
    if value == AUTO:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ValueError(f"{name} must be an integer of at least 2 or \"{AUTO}\", got {value!r} (the latent "
                         "statistics need at least 2 images)")


def image_count(text: str) -> int | str:
    """A command-line image count: "auto" or an integer (checked by `check_image_count`)."""
    value = text if text == AUTO else int(text)
    check_image_count(value)
    return value


def _reason(target: float, needed: int | None, count: int, split: int) -> str:
    wanted = f"log N >= rate + {AUTO_MARGIN_NATS:g} = {target:.2f} nats"
    needs = f"needs {needed} images" if needed is not None else "needs more than 10^15 images"
    if needed is not None and needed <= count:
        if needed == count:
            return f"{wanted}: {count} images"
        if count == split:
            return f"{wanted} {needs}; the whole split of {split} is encoded (it holds fewer than {AUTO_MIN_IMAGES})"
        return f"{wanted} {needs}; the minimum of {AUTO_MIN_IMAGES} is encoded"
    if count == split:
        return f"{wanted} {needs}, but the split holds {split}: all are encoded and I(x; z) may saturate"
    return (f"{wanted} {needs}: capped at the maximum of {AUTO_MAX_IMAGES} (the estimators cost O(N^2)); "
            "I(x; z) may saturate")


def encode_for_analysis(model, data, images, *, seed: int, device, progress: bool) -> tuple[EncodedSet, dict]:
    """The encoded set for `images` (a count, None for all, or "auto") and `sample_size.*` keys saying why."""
    if images != AUTO:
        encoded = encode_images(model, data, images, seed=seed, device=device, progress=progress)
        return encoded, {"sample_size.rule": "fixed", "sample_size.requested": images}
    pilot = encode_images(model, data, AUTO_MIN_IMAGES, seed=seed, device=device, progress=progress)
    pilot_rate, _ = rate(pilot.mu.flatten(1), pilot.logvar.flatten(1))
    target = pilot_rate + AUTO_MARGIN_NATS
    needed = math.ceil(math.exp(target)) if target < math.log(1e15) else None
    count = min(max(needed or math.inf, AUTO_MIN_IMAGES), data.num_images, AUTO_MAX_IMAGES)
    # Draws of one size and seed are nested: the final draw holds the pilot, whose images are not encoded again.
    encoded = pilot if count <= len(pilot.indices) else extend_encoded(
        model, data, pilot, random_subset(data.num_images, count, seed), device=device, progress=progress)
    return encoded, {"sample_size.rule": AUTO, "sample_size.pilot_images": len(pilot.indices),
                     "sample_size.pilot_rate": pilot_rate, "sample_size.target_log_num_images": target,
                     "sample_size.reason": _reason(target, needed, len(encoded.indices), data.num_images)}
