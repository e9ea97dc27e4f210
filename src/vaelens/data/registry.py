"""Data-set registry: data.name -> loader(config, split)."""

from __future__ import annotations

from vaelens.data.base import ImageData
from vaelens.data.dsprites import load_dsprites
from vaelens.data.folder import load_folder
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
