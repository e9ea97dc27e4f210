"""Data sets as `ImageData`: float32 images in [0, 1], deterministic stateless batches, optional factors.

    data = load_dataset(config.data, split="train").to(device)
    x = data.batch(step, batch_size, seed)        # (B, C, H, W) on device

`config` is any object with the DataConfig fields (name, path, subset, image_size, grayscale,
test_fraction, seed, npz_key).
"""

from __future__ import annotations

from vaelens.data.base import FactorInfo, ImageData, TensorImageData
from vaelens.data.cache import cache_dir
from vaelens.data.dsprites import DSpritesData, dsprites_images_for_factors, full_grid, load_dsprites
from vaelens.data.dsprites_render import dsprites_classes, dsprites_factor_values, dsprites_index
from vaelens.data.folder import StreamingImageData, load_folder
from vaelens.data.gaussian import load_gaussian
from vaelens.data.natural import load_natural
from vaelens.data.npz import load_npz
from vaelens.data.torchvision_sets import load_torchvision

LOADERS = {
    "dsprites": load_dsprites,
    "natural": load_natural,
    "folder": load_folder,
    "npz": load_npz,
    "gaussian": load_gaussian,
    "mnist": load_torchvision,
    "fashion_mnist": load_torchvision,
    "cifar10": load_torchvision,
    "celeba": load_torchvision,
}
DATASET_NAMES = tuple(LOADERS)


def load_dataset(config, split: str = "train") -> ImageData:
    """The `split` ("train" or "test") of the data set `config.name`, on the CPU; move it with `.to(device)`."""
    loader = LOADERS.get(config.name)
    if loader is None:
        raise ValueError(f"unknown data set data.name={config.name!r}; choose one of {', '.join(DATASET_NAMES)}")
    return loader(config, split)


__all__ = [
    "DATASET_NAMES", "DSpritesData", "FactorInfo", "ImageData", "StreamingImageData", "TensorImageData",
    "cache_dir", "dsprites_classes", "dsprites_factor_values", "dsprites_images_for_factors", "dsprites_index",
    "full_grid", "load_dataset",
]
