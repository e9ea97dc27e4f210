"""Data sets as `ImageData`: float32 images in [0, 1], deterministic stateless batches, optional factors.

    data = load_dataset(config.data, split="train").to(device)
    x = data.batch(step, batch_size, seed)        # (B, C, H, W) on device

`config` is any object with the DataConfig fields (name, path, subset, image_size, grayscale,
test_fraction, seed, npz_key).
"""

from __future__ import annotations

from vaelens.data.base import FactorInfo, ImageData, TensorImageData
from vaelens.data.cache import cache_dir
from vaelens.data.dsprites import DSpritesData, dsprites_images_for_factors, full_grid
from vaelens.data.dsprites_render import dsprites_classes, dsprites_factor_values, dsprites_index
from vaelens.data.folder import StreamingImageData
from vaelens.data.registry import DATASET_NAMES, LOADERS, load_dataset

__all__ = [
    "DATASET_NAMES", "LOADERS", "DSpritesData", "FactorInfo", "ImageData", "StreamingImageData", "TensorImageData",
    "cache_dir", "dsprites_classes", "dsprites_factor_values", "dsprites_images_for_factors", "dsprites_index",
    "full_grid", "load_dataset",
]
