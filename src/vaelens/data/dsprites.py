"""The dSprites data set, rendered procedurally (see `dsprites_render` for the grid and geometry).

Splits: a permutation of the 737,280 grid indices seeded by data.seed holds out
round(test_fraction * 737,280) images (73,728 at the default 0.1) as the test split; the
training split is the rest, and data.subset=N takes a fixed, seeded N of it (nested: the
subset of 100 lies inside the subset of 1000). With test_fraction = 0 the test split is the
whole grid (the usual dSprites protocol of evaluating on the training distribution).

Where pixels come from: small selections (up to 20,000 images) are rendered directly, so a
subset never needs the full grid. Larger training splits use the full grid, rendered once with a
progress bar and cached bit-packed (737,280 x 512 bytes, about 377 MB) in the vaelens cache
folder. A large test split without that cache is rendered lazily, batch by batch, since
evaluation usually touches only a few thousand of its images.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from tqdm.auto import tqdm

from vaelens.data import dsprites_render as render
from vaelens.data.base import FactorInfo, ImageData, check_config, split_indices
from vaelens.data.cache import load_cached_array, save_cached_array

RENDER_DIRECTLY_LIMIT = 20_000
"""Selections up to this size are rendered on the spot instead of read from the full-grid cache."""
FULL_GRID_CACHE_NAME = f"dsprites-grid-v{render.RENDERER_VERSION}"
_RENDER_CHUNK = 4096


def render_full_grid(progress: bool = True) -> np.ndarray:
    """All 737,280 images, bit-packed (737280, 512) uint8 in index order."""
    packed = np.empty((render.NUM_IMAGES, render.IMAGE_SIZE * render.IMAGE_SIZE // 8), dtype=np.uint8)
    starts = range(0, render.NUM_IMAGES, _RENDER_CHUNK)
    for start in tqdm(starts, desc="rendering dSprites (once; cached)", unit="chunk", disable=not progress):
        stop = min(start + _RENDER_CHUNK, render.NUM_IMAGES)
        packed[start:stop] = render.pack_images(render.render_indices(torch.arange(start, stop)))
    return packed


def full_grid(create: bool, progress: bool = True) -> np.ndarray | None:
    """The cached, bit-packed full grid (memory-mapped); rendered and cached first when `create`."""
    cached = load_cached_array(FULL_GRID_CACHE_NAME, render.RENDERER_VERSION)
    if cached is not None or not create:
        return cached
    packed = render_full_grid(progress)
    save_cached_array(FULL_GRID_CACHE_NAME, packed, render.RENDERER_VERSION,
                      {"renderer": "vaelens procedural dSprites", "bit_order": "numpy packbits, big-endian"})
    return load_cached_array(FULL_GRID_CACHE_NAME, render.RENDERER_VERSION, verify=False)


def _rows_from_grid(grid: np.ndarray, indices: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(grid[indices.numpy()]))


class DSpritesData(ImageData):
    """dSprites images at grid indices `grid_indices`; bit-packed rows in memory, or rendered lazily."""

    def __init__(self, grid_indices: torch.Tensor, packed: torch.Tensor | None, description: dict):
        self.name = "dsprites"
        self.image_shape = (1, render.IMAGE_SIZE, render.IMAGE_SIZE)
        self.grid_indices = grid_indices
        self.packed = packed
        self.description = description
        classes = render.dsprites_classes(grid_indices)
        self.factors = FactorInfo(render.FACTOR_NAMES, render.FACTOR_SIZES, classes,
                                  render.dsprites_factor_values(classes))
        self.device = self._order_device = torch.device("cpu")

    @property
    def num_images(self) -> int:
        return len(self.grid_indices)

    def _load(self, indices: torch.Tensor) -> torch.Tensor:
        if self.packed is not None:
            return render.unpack_images(self.packed[indices])
        images = render.render_indices(self.grid_indices[indices.cpu()])
        return images.unsqueeze(1).to(device=self.device, dtype=torch.float32)

    def to(self, device) -> DSpritesData:
        """A copy on `device`: packed rows move there once; lazy rendering only records the device."""
        moved = copy.copy(self)
        moved.device = torch.device(device)
        if self.packed is not None:
            moved.packed = self.packed.to(device)
            moved.device = moved._order_device = moved.packed.device
        moved._cached_order = None
        return moved

    def images_for_factors(self, classes) -> torch.Tensor:
        """Images (B, 1, 64, 64) for any factor classes (B, 5), from the whole grid, on the data's device."""
        return dsprites_images_for_factors(classes).to(self.device)


def dsprites_images_for_factors(classes) -> torch.Tensor:
    """Float32 images (B, 1, 64, 64) on the CPU for factor classes (B, 5) of the full grid.

    Reads the cached full grid when it exists (fast for the many batches of the FactorVAE score)
    and renders otherwise; both give identical pixels.
    """
    grid = full_grid(create=False)
    if grid is None:
        return render.render_classes(classes).unsqueeze(1).to(torch.float32)
    return render.unpack_images(_rows_from_grid(grid, render.dsprites_index(classes)))


def load_dsprites(config, split: str = "train", progress: bool = True) -> DSpritesData:
    """The dSprites `split` described by `config` (a DataConfig); see the module docstring."""
    check_config(config, split)
    if config.image_size != render.IMAGE_SIZE:
        raise ValueError(f"dSprites images are {render.IMAGE_SIZE}x{render.IMAGE_SIZE}; "
                         f"set data.image_size={render.IMAGE_SIZE} (got {config.image_size})")
    subset = config.subset if split == "train" else None
    indices, held_out = split_indices(render.NUM_IMAGES, config.test_fraction, config.seed, split, subset,
                                      "dSprites")
    grid = None if len(indices) <= RENDER_DIRECTLY_LIMIT else full_grid(create=split == "train", progress=progress)
    if grid is not None:
        packed, pixels = _rows_from_grid(grid, indices), "full-grid cache"
    elif len(indices) <= RENDER_DIRECTLY_LIMIT:
        packed, pixels = torch.from_numpy(render.pack_images(render.render_indices(indices))), "rendered"
    else:
        packed, pixels = None, "rendered lazily per batch"
    description = {"source": f"procedural dSprites (vaelens renderer v{render.RENDERER_VERSION})",
                   "split": split, "held_out": held_out, "subset": subset, "seed": config.seed,
                   "test_fraction": config.test_fraction, "grid_size": render.NUM_IMAGES, "pixels": pixels}
    return DSpritesData(indices, packed, description)
