"""Natural-image patches cut from the photographs that ship inside scikit-image (no download).

Each photo is first brought to a common scale (shorter side at most 512 px, antialiased), then
cut at two scales, full and half size, into 64 x 64 patches on a regular grid with stride 32
(50% overlap, row-major from the top-left corner). Near-uniform patches (luma standard deviation
below 0.02, e.g. the black border of the retina image) are dropped. image_size=32 delivers the
same patches averaged down 2 x 2. Grayscale photos are replicated to three channels unless
data.grayscale is set, which turns every patch into ITU-R 601 luma.

The split is by source photo, so no photo contributes to both: the TEST_PHOTOS are held out and
data.test_fraction is not used. data.subset takes a fixed, seeded subset of the training patches.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vaelens.data.base import TensorImageData, check_config, decode_uint8, take_subset, to_grayscale

TRAIN_PHOTOS = ("astronaut.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png",
                "motorcycle_right.png", "retina.jpg", "brick.png", "camera.png", "cell.png", "grass.png",
                "moon.png")
TEST_PHOTOS = ("chelsea.png", "rocket.jpg", "coins.png", "gravel.png")
PATCH_SIZE = 64
PATCH_STRIDE = 32
MAX_SHORTER_SIDE = 512
MIN_PATCH_STD = 0.02
SUPPORTED_SIZES = (64, 32)


def photo_folder() -> Path:
    """The folder of photographs bundled with scikit-image."""
    return Path(str(resources.files("skimage") / "data"))


def _load_photo(name: str) -> Image.Image:
    path = photo_folder() / name
    if not path.is_file():
        raise FileNotFoundError(f"the natural data set needs {path}, which this scikit-image installation "
                                "lacks; reinstall scikit-image (the photo ships inside its wheel)")
    photo = Image.open(path).convert("RGB")
    shorter = min(photo.size)
    if shorter > MAX_SHORTER_SIDE:
        factor = MAX_SHORTER_SIDE / shorter
        photo = photo.resize((round(photo.width * factor), round(photo.height * factor)), Image.Resampling.LANCZOS)
    return photo


def photo_patches(photo: Image.Image) -> np.ndarray:
    """Non-uniform 64 x 64 patches (M, 3, 64, 64) uint8 of a photo at full and half size."""
    patches = []
    for scaled in (photo, photo.reduce(2)):
        pixels = np.asarray(scaled, dtype=np.uint8)
        if min(pixels.shape[:2]) < PATCH_SIZE:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(pixels, (PATCH_SIZE, PATCH_SIZE), axis=(0, 1))
        grid = windows[::PATCH_STRIDE, ::PATCH_STRIDE]
        patches.append(grid.reshape(-1, 3, PATCH_SIZE, PATCH_SIZE))
    if not patches:
        return np.empty((0, 3, PATCH_SIZE, PATCH_SIZE), dtype=np.uint8)
    patches = np.concatenate(patches)
    luma = patches.astype(np.float32).mean(axis=1) / 255.0
    return np.ascontiguousarray(patches[luma.std(axis=(1, 2)) >= MIN_PATCH_STD])


@functools.lru_cache(maxsize=2)
def _split_patches(split: str) -> tuple[torch.Tensor, tuple[tuple[str, int], ...]]:
    """All 64 x 64 patches of a split, (N, 3, 64, 64) uint8, and the patch count of each photo."""
    photos = TRAIN_PHOTOS if split == "train" else TEST_PHOTOS
    patches = [photo_patches(_load_photo(name)) for name in photos]
    counts = tuple((name, len(block)) for name, block in zip(photos, patches))
    return torch.from_numpy(np.concatenate(patches)), counts


def load_natural(config, split: str = "train") -> TensorImageData:
    """Natural-image patches of `split` (split by source photo) as described by `config`."""
    check_config(config, split)
    if config.image_size not in SUPPORTED_SIZES:
        raise ValueError(f"the natural data set comes at data.image_size 64 or 32, got {config.image_size}")
    patches, counts = _split_patches(split)
    indices = torch.arange(len(patches))
    subset = config.subset if split == "train" else None
    if subset is not None:
        shuffled = torch.randperm(len(patches), generator=torch.Generator().manual_seed(config.seed))
        indices = take_subset(shuffled, subset, "the natural data set").sort().values
    images = patches[indices]
    if config.image_size == 32:
        images = F.avg_pool2d(images.float(), 2).round().to(torch.uint8)
    if config.grayscale:
        images = to_grayscale(images)
    description = {"source": "scikit-image bundled photos", "split": split, "photos": dict(counts),
                   "patch_size": PATCH_SIZE, "patch_stride": PATCH_STRIDE, "scales": [1.0, 0.5],
                   "subset": subset, "seed": config.seed, "grayscale": bool(config.grayscale)}
    return TensorImageData("natural", images.contiguous(), decode_uint8, tuple(images.shape[1:]), None, description)
