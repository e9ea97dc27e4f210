"""Image files streamed from disk: any folder of PNG/JPEG images (and CelebA, which reuses this).

Nothing is held in memory but the file list: each batch is decoded on demand by a small thread
pool, and the next training batch is decoded in the background while the current one trains.
Every image is converted to RGB (or luma with data.grayscale) and scaled to [0, 1] by its own bit depth
(8- or 16-bit; vaelens.data.image_files), optionally centre-cropped to a square of `crop` pixels, resized so
its shorter side is data.image_size (Lanczos, antialiased) and centre-cropped to a square. EXIF rotation is
applied first. Every file is opened (and checked not to be cut off) when the folder is loaded, before a run
writes anything.

Split: each file goes to the test split when a SHA-256 hash of (data.seed, its path relative to
the folder) falls below data.test_fraction, so adding files never moves existing ones between
splits. Hidden files and folders (names starting with '.') are skipped.
"""

from __future__ import annotations

import copy
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from vaelens.data.base import ImageData, check_config, take_subset
from vaelens.data.image_files import DECODE_WORKERS, check_image_files, decode_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def list_image_files(folder: Path) -> list[Path]:
    """All PNG/JPEG files below `folder` (recursively, hidden entries skipped), sorted by relative path."""
    files = []
    for directory, subdirectories, names in os.walk(folder):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        files.extend(Path(directory) / name for name in names
                     if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES))
    return sorted(files, key=lambda path: path.relative_to(folder).as_posix())


def hash_fraction(seed: int, key: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, key): the seeded hash used to split files."""
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class StreamingImageData(ImageData):
    """Images decoded from `files` per batch; `to(device)` only records where batches should go."""

    def __init__(self, name: str, files: list[Path], image_size: int, grayscale: bool, description: dict,
                 crop: int | None = None):
        self.name = name
        self.files = files
        self.image_size = image_size
        self.grayscale = grayscale
        self.crop = crop
        self.image_shape = (1 if grayscale else 3, image_size, image_size)
        self.description = description
        self.device = self._order_device = torch.device("cpu")
        self._decoders = None
        self._prefetcher = None
        self._prefetched = None

    @property
    def num_images(self) -> int:
        return len(self.files)

    def _decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Float32 images on the CPU, decoded in parallel."""
        if self._decoders is None:
            self._decoders = ThreadPoolExecutor(DECODE_WORKERS, thread_name_prefix=f"{self.name}-decode")
        paths = [self.files[index] for index in indices.tolist()]
        arrays = list(self._decoders.map(
            lambda path: decode_image(path, self.image_size, self.grayscale, self.crop), paths))
        if not arrays:
            return torch.empty((0, *self.image_shape))
        return torch.from_numpy(np.stack(arrays))  # float32 in [0, 1] (image_files.decode_image)

    def _load(self, indices: torch.Tensor) -> torch.Tensor:
        return self._decode(indices).to(self.device)

    def batch(self, step: int, batch_size: int, seed: int) -> torch.Tensor:
        """As `ImageData.batch`, with the following batch decoded in the background meanwhile."""
        key = (int(step), int(batch_size), int(seed))
        pending = self._prefetched
        self._prefetched = None
        if pending is not None and pending[0] == key:
            images = pending[1].result().to(self.device)
        else:
            images = super().batch(step, batch_size, seed)
        if self._prefetcher is None:
            self._prefetcher = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-prefetch")
        following = (key[0] + 1, key[1], key[2])
        epoch, position = divmod(following[0], self.num_images // batch_size)
        order = self._epoch_order(seed, epoch)
        chunk = order[position * batch_size:(position + 1) * batch_size]
        self._prefetched = (following, self._prefetcher.submit(self._decode, chunk))
        return images

    def to(self, device) -> StreamingImageData:
        moved = copy.copy(self)
        moved.device = torch.device(device)
        moved._decoders = moved._prefetcher = moved._prefetched = None
        return moved


def load_folder(config, split: str = "train") -> StreamingImageData:
    """The PNG/JPEG images below data.path, split by seeded file-path hash (see the module docstring)."""
    check_config(config, split)
    if not config.path:
        raise ValueError("data.name=folder needs data.path: the folder holding the images")
    folder = Path(config.path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist (data.path)")
    files = list_image_files(folder)
    if not files:
        raise ValueError(f"image folder {folder} holds no {'/'.join(IMAGE_SUFFIXES)} files (searched recursively)")
    held_out = config.test_fraction > 0
    if held_out:
        in_test = [hash_fraction(config.seed, path.relative_to(folder).as_posix()) < config.test_fraction
                   for path in files]
        files = [path for path, test in zip(files, in_test) if test == (split == "test")]
    if not files:
        raise ValueError(f"image folder {folder}: no image fell in the {split} split with "
                         f"data.test_fraction={config.test_fraction}; add images or change the fraction")
    subset = config.subset if split == "train" else None
    if subset is not None:
        shuffled = torch.randperm(len(files), generator=torch.Generator().manual_seed(config.seed))
        files = [files[index] for index in take_subset(shuffled, subset, str(folder)).sort().values.tolist()]
    check_image_files(files)
    decode_image(files[0], config.image_size, config.grayscale)
    description = {"source": str(folder), "split": split, "held_out": held_out, "subset": subset,
                   "seed": config.seed, "test_fraction": config.test_fraction, "grayscale": bool(config.grayscale),
                   "resize": "shorter side to image_size (Lanczos), centre crop"}
    return StreamingImageData("folder", files, config.image_size, config.grayscale, description)
