"""What every data set gives the rest of vaelens: `ImageData`, its factors, and shared helpers.

Batches are a pure function of (step, batch_size, seed): epoch e = step // (N // batch_size) is
the permutation randperm(N) drawn from a generator seeded by (seed, e), a batch is a slice of it,
and the last partial batch of an epoch is dropped. A resumed run therefore sees exactly the
batches an uninterrupted one would, without any iterator state to save.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

SPLITS = ("train", "test")


@dataclass
class FactorInfo:
    """Ground-truth generative factors of each image (for disentanglement metrics)."""

    names: tuple[str, ...]
    """Factor names, e.g. ("shape", "scale", "orientation", "posX", "posY")."""
    sizes: tuple[int, ...]
    """Number of distinct classes of each factor."""
    classes: torch.Tensor
    """Class index of each factor per image, LongTensor (N, K), on the CPU."""
    values: torch.Tensor
    """Value of each factor per image, FloatTensor (N, K), on the CPU."""

    def select(self, indices: torch.Tensor) -> FactorInfo:
        """The factors of the images at `indices` (CPU LongTensor)."""
        return FactorInfo(self.names, self.sizes, self.classes[indices], self.values[indices])


def _epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit generator seed from (seed, epoch), so neighbouring epochs are unrelated."""
    state = np.random.SeedSequence([int(seed) & 0xFFFF_FFFF_FFFF_FFFF, int(epoch)]).generate_state(1, np.uint64)
    return int(state[0]) >> 1


class ImageData:
    """A data set of images, float32 in [0, 1], shape `image_shape` = (C, H, W).

    Subclasses set `name`, `image_shape`, `factors`, `description` and implement `num_images`,
    `_load(indices)` (CPU or device LongTensor -> float32 images on `device`) and `to`.
    """

    name: str
    image_shape: tuple[int, int, int]
    factors: FactorInfo | None = None
    description: dict
    device: torch.device = torch.device("cpu")
    _order_device: torch.device = torch.device("cpu")
    """Where epoch permutations live: the device the pixel storage is indexed on."""

    @property
    def num_images(self) -> int:
        raise NotImplementedError

    def _load(self, indices: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def to(self, device) -> ImageData:
        raise NotImplementedError

    def images(self, indices) -> torch.Tensor:
        """Images at `indices` (sequence or LongTensor), float32 (B, C, H, W) on the data's device."""
        indices = torch.as_tensor(indices, dtype=torch.int64).reshape(-1).cpu()
        if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= self.num_images):
            raise IndexError(f"image indices must lie in [0, {self.num_images}) for {self.name}, "
                             f"got min {int(indices.min())}, max {int(indices.max())}")
        return self._load(indices.to(self._order_device))

    def all_images(self, max_images: int | None = None) -> torch.Tensor:
        """The first `max_images` images (all when None), in storage order, on the data's device."""
        count = self.num_images if max_images is None else min(int(max_images), self.num_images)
        return self.images(torch.arange(count))

    def batch(self, step: int, batch_size: int, seed: int) -> torch.Tensor:
        """Training batch `step`: float32 (batch_size, C, H, W), deterministic in its arguments."""
        if int(batch_size) < 1 or int(batch_size) > self.num_images:
            raise ValueError(f"batch_size must be between 1 and the {self.num_images} images of {self.name}, "
                             f"got {batch_size}; lower train.batch_size or use more data")
        if int(step) < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        epoch, position = divmod(int(step), self.num_images // int(batch_size))
        order = self._epoch_order(int(seed), epoch)
        return self._load(order[position * batch_size:(position + 1) * batch_size])

    def _epoch_order(self, seed: int, epoch: int) -> torch.Tensor:
        key = (seed, epoch, self.num_images, str(self._order_device))
        cached = getattr(self, "_cached_order", None)
        if cached is None or cached[0] != key:
            generator = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
            order = torch.randperm(self.num_images, generator=generator).to(self._order_device)
            self._cached_order = (key, order)
        return self._cached_order[1]

    def describe(self) -> dict:
        """JSON-friendly summary: name, count, shape, source, split and loader-specific details."""
        return {"name": self.name, "num_images": self.num_images, "image_shape": list(self.image_shape),
                **self.description}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.num_images} images of shape {self.image_shape})"


class TensorImageData(ImageData):
    """Images held in memory in their most compact form and decoded to float32 per batch.

    `storage` rows are decoded by `decode` (rows -> float32 (B, C, H, W)); uint8 rows use
    `decode_uint8`, float rows `decode_float`, bit-packed binary rows their own unpacker.
    """

    def __init__(self, name: str, storage: torch.Tensor, decode, image_shape: tuple[int, int, int],
                 factors: FactorInfo | None, description: dict):
        self.name = name
        self.storage = storage
        self.decode = decode
        self.image_shape = tuple(int(side) for side in image_shape)
        self.factors = factors
        self.description = description
        self.device = storage.device
        self._order_device = storage.device

    @property
    def num_images(self) -> int:
        return len(self.storage)

    def _load(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decode(self.storage[indices])

    def to(self, device) -> TensorImageData:
        """A copy whose storage lives on `device` (moved once; batches are then sliced there)."""
        moved = copy.copy(self)
        moved.storage = self.storage.to(device)
        moved.device = moved._order_device = moved.storage.device
        moved._cached_order = None
        return moved


def decode_uint8(rows: torch.Tensor) -> torch.Tensor:
    return rows.to(torch.float32) / 255.0


def decode_float(rows: torch.Tensor) -> torch.Tensor:
    return rows.to(torch.float32)


def check_config(config, split: str) -> None:
    """Validate the DataConfig fields every loader relies on, naming the field that is wrong."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    subset = config.subset
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int) or subset < 1):
        raise ValueError(f"data.subset must be a positive integer or None, got {subset!r}")
    if isinstance(config.image_size, bool) or not isinstance(config.image_size, int) or config.image_size < 1:
        raise ValueError(f"data.image_size must be a positive integer, got {config.image_size!r}")
    if not 0.0 <= float(config.test_fraction) < 1.0:
        raise ValueError(f"data.test_fraction must be in [0, 1), got {config.test_fraction!r}")
    if isinstance(config.seed, bool) or not isinstance(config.seed, int):
        raise ValueError(f"data.seed must be an integer, got {config.seed!r}")


def split_indices(count: int, test_fraction: float, seed: int, split: str, subset: int | None,
                  what: str) -> tuple[torch.Tensor, bool]:
    """Sorted indices of `split` among `count` items, and whether the test split is truly held out.

    A seeded permutation puts round(test_fraction * count) items (at least one when the fraction is
    positive) in the test split and the rest in the training split; `subset` takes the first N of
    the training part, so smaller subsets are nested in larger ones. With test_fraction = 0 nothing
    is held out and the test split is the whole set (reported as held_out = False).
    """
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    test_count = 0 if test_fraction == 0 else max(1, round(test_fraction * count))
    if test_count >= count:
        raise ValueError(f"{what} has {count} images: data.test_fraction={test_fraction} leaves none for training")
    if split == "test":
        return (order[:test_count] if test_count else order).sort().values, test_count > 0
    train = order[test_count:]
    return take_subset(train, subset, what).sort().values, test_count > 0


def take_subset(indices: torch.Tensor, subset: int | None, what: str) -> torch.Tensor:
    """The first `subset` of (already shuffled) `indices`; all of them when subset is None."""
    if subset is None:
        return indices
    if subset > len(indices):
        raise ValueError(f"data.subset={subset} exceeds the {len(indices)} training images of {what}")
    return indices[:subset]


def check_unit_interval(images: np.ndarray, source: str) -> None:
    """Raise when float images contain NaN/inf or leave [0, 1], naming the source and the problem."""
    finite = np.isfinite(images)
    if not finite.all():
        raise ValueError(f"{source}: {int((~finite).sum())} pixel values are NaN or infinite")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{source}: float images must lie in [0, 1], found values in [{low:.4g}, {high:.4g}]; "
                         "rescale them (or store uint8 0..255)")


def fit_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize float images (N, C, H, W) so the shorter side is `size` (antialiased), then centre-crop."""
    height, width = images.shape[-2:]
    if (height, width) == (size, size):
        return images
    scale = size / min(height, width)
    new_height, new_width = max(size, round(height * scale)), max(size, round(width * scale))
    resized = F.interpolate(images, size=(new_height, new_width), mode="bilinear", antialias=True,
                            align_corners=False)
    top, left = (new_height - size) // 2, (new_width - size) // 2
    return resized[..., top:top + size, left:left + size].clamp(0.0, 1.0)


def fit_square_storage(images: torch.Tensor, size: int, chunk_size: int = 4096) -> torch.Tensor:
    """`fit_square` for stored images (uint8 0..255 or float 0..1), in chunks, keeping the dtype."""
    if tuple(images.shape[-2:]) == (size, size):
        return images
    if images.dtype != torch.uint8:
        return torch.cat([fit_square(images[start:start + chunk_size], size)
                          for start in range(0, len(images), chunk_size)])
    return torch.cat([(fit_square(images[start:start + chunk_size].float() / 255.0, size) * 255.0).round()
                      .to(torch.uint8) for start in range(0, len(images), chunk_size)])


def to_grayscale(images: torch.Tensor, chunk_size: int = 4096) -> torch.Tensor:
    """ITU-R 601 luma of RGB images (N, 3, H, W) -> (N, 1, H, W), keeping the dtype; 1 channel is kept as is."""
    if images.shape[1] == 1:
        return images
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32).view(1, 3, 1, 1)
    chunks = []
    for start in range(0, len(images), chunk_size):
        luma = (images[start:start + chunk_size].float() * weights).sum(dim=1, keepdim=True)
        chunks.append(luma.round().clamp(0, 255).to(torch.uint8) if images.dtype == torch.uint8 else luma)
    return torch.cat(chunks)
