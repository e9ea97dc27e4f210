"""The one way vaelens draws a seeded subset of k of N items: every subset it scores, fits or shows.

`random_subset(size, count, seed)` is the first `count` entries of one permutation of range(size) drawn from a
CPU generator seeded with `seed`, sorted. Draws of different counts from the same size and seed are therefore
nested (the 16 images of a reconstruction figure lie among the distortion images), data sets read lazily are
read in storage order, and a recorded (size, count, seed) reproduces the subset exactly.
"""

from __future__ import annotations

import torch


def random_subset(size: int, count: int | None, seed: int, *, in_storage_order: bool = True) -> torch.Tensor:
    """Positions of a seeded uniform draw of `count` of range(size) (all of them when count is None or at
    least size). `in_storage_order=False` keeps the draw's own order (a random arrangement, e.g. of the
    images in a grid) and permutes even when every position is drawn."""
    if in_storage_order and (count is None or count >= size):
        return torch.arange(size)
    drawn = torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:count]
    return drawn.sort().values if in_storage_order else drawn
