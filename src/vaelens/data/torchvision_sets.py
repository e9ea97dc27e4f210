"""MNIST, Fashion-MNIST, CIFAR-10 and CelebA read through torchvision from files already on disk.

vaelens never downloads: the files must lie under data.path (default: the `datasets` folder of
the vaelens cache) in torchvision's own layout. When they are missing, the error names the
folder and the torchvision call that fetches them on a connected machine.

The data sets' own train/test splits are used (CelebA: its official partition, "valid" unused)
and data.subset takes a fixed, seeded subset of the training split. MNIST, Fashion-MNIST and
CIFAR-10 are held in memory as uint8, resized (antialiased) to data.image_size; CelebA streams
from its JPEG files, centre-cropped to 148 x 148 (the usual face crop) and then resized.
Class labels and CelebA attributes are not exposed as factors: they are not generative factors.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from vaelens.data.base import TensorImageData, check_config, decode_uint8, fit_square_storage, take_subset, to_grayscale
from vaelens.data.cache import cache_dir
from vaelens.data.folder import StreamingImageData
from vaelens.errors import UnsafePickle

CELEBA_CROP = 148
_EXPECTED_FOLDERS = {"mnist": "MNIST/raw", "fashion_mnist": "FashionMNIST/raw", "cifar10": "cifar-10-batches-py",
                     "celeba": "celeba"}
_CLASS_NAMES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10", "celeba": "CelebA"}
TORCHVISION_NAMES = tuple(_EXPECTED_FOLDERS)


def dataset_root(config) -> Path:
    """Where torchvision looks for the files: data.path, else <vaelens cache>/datasets."""
    return Path(config.path).expanduser() if config.path else cache_dir() / "datasets"


def _missing_files_error(name: str, root: Path, error: Exception) -> FileNotFoundError:
    class_name = _CLASS_NAMES[name]
    fetch = (f"torchvision.datasets.{class_name}('{root}', split='all', download=True)" if name == "celeba"
             else f"torchvision.datasets.{class_name}('{root}', train=True, download=True) and again with train=False")
    return FileNotFoundError(
        f"{class_name} files not found (or incomplete) in {root / _EXPECTED_FOLDERS[name]} ({error}). vaelens never "
        f"downloads; on a machine with internet run `python -c \"import torchvision; {fetch}\"`, copy the "
        f"resulting folder to {root}, or point data.path at the root folder that holds it.")


def _open(name: str, root: Path, split: str):
    from torchvision import datasets

    dataset_class = getattr(datasets, _CLASS_NAMES[name])
    try:
        if name == "celeba":
            return dataset_class(str(root), split=split, target_type=[], download=False)
        return dataset_class(str(root), train=split == "train", download=False)
    except RuntimeError as error:
        raise _missing_files_error(name, root, error) from error
    except pickle.UnpicklingError as error:  # torch refused a pickle (e.g. a legacy processed/*.pt file)
        raise UnsafePickle(root / _CLASS_NAMES[name], "data set's files") from error


def _subset_indices(count: int, subset: int | None, seed: int, what: str) -> torch.Tensor | None:
    if subset is None:
        return None
    shuffled = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return take_subset(shuffled, subset, what).sort().values


def load_torchvision(config, split: str = "train"):
    """The torchvision data set data.name ('mnist', 'fashion_mnist', 'cifar10', 'celeba') from local files."""
    check_config(config, split)
    name = config.name
    if name not in _EXPECTED_FOLDERS:
        raise ValueError(f"not a torchvision data set: {name!r}; choose from {TORCHVISION_NAMES}")
    root = dataset_root(config)
    dataset = _open(name, root, split)
    subset = config.subset if split == "train" else None
    description = {"source": f"torchvision {_CLASS_NAMES[name]} at {root}", "split": split, "held_out": True,
                   "subset": subset, "seed": config.seed, "grayscale": bool(config.grayscale)}
    if name == "celeba":
        folder = Path(dataset.root) / dataset.base_folder / "img_align_celeba"
        files = [folder / filename for filename in dataset.filename]
        chosen = _subset_indices(len(files), subset, config.seed, "CelebA")
        if chosen is not None:
            files = [files[index] for index in chosen.tolist()]
        description["resize"] = f"centre crop {CELEBA_CROP}, then resize to image_size (Lanczos)"
        return StreamingImageData(name, files, config.image_size, config.grayscale, description, crop=CELEBA_CROP)
    pixels = torch.as_tensor(np.asarray(dataset.data))
    pixels = pixels.unsqueeze(1) if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)
    chosen = _subset_indices(len(pixels), subset, config.seed, _CLASS_NAMES[name])
    if chosen is not None:
        pixels = pixels[chosen]
    pixels = fit_square_storage(pixels.contiguous(), config.image_size)
    if config.grayscale:
        pixels = to_grayscale(pixels)
    description["stored_size"] = list(np.asarray(dataset.data).shape[1:3])
    return TensorImageData(name, pixels.contiguous(), decode_uint8, tuple(pixels.shape[1:]), None, description)
