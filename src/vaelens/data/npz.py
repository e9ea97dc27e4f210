"""Images from a NumPy .npz file: the array under data.npz_key, with optional ground-truth factors.

Accepted layouts: (N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3 (when both the second
and the last axis could be channels, channels-last is assumed). Accepted values: uint8 0..255,
other integers within 0..255, booleans, or floats in [0, 1] (NaN, infinities or values outside
are an error). Integer images stay uint8 in memory and float images float32.

Optional keys: `factors` (N, K), integer classes or float values (classes are then the rank of
each distinct value per column), and `factor_names` (K strings).
Images are resized (shorter side, antialiased) and centre-cropped when they are not already
data.image_size square. The split is a seeded permutation with data.test_fraction held out.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from vaelens.data.base import (
    FactorInfo,
    TensorImageData,
    check_config,
    check_unit_interval,
    decode_float,
    decode_uint8,
    fit_square_storage,
    split_indices,
    to_grayscale,
)

ACCEPTED_LAYOUTS = "(N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3"


def to_channels_first(images: np.ndarray, source: str) -> np.ndarray:
    """Images in one of the accepted layouts as (N, C, H, W); a clear error for anything else."""
    shape = images.shape
    if images.ndim == 3 and min(shape) > 0:
        return images[:, None]
    if images.ndim == 4 and min(shape) > 0:
        if shape[1] in (1, 3) and shape[3] not in (1, 3):
            return images
        if shape[3] in (1, 3):
            return images.transpose(0, 3, 1, 2)
    raise ValueError(f"{source}: images have shape {shape}; accepted layouts are {ACCEPTED_LAYOUTS}")


def to_storage(images: np.ndarray, source: str) -> torch.Tensor:
    """Validated images as compact storage: uint8 for integer/boolean data, float32 for floats."""
    if images.dtype == np.bool_:
        return torch.from_numpy(images.astype(np.uint8) * 255)
    if np.issubdtype(images.dtype, np.integer):
        low, high = int(images.min()), int(images.max())
        if low < 0 or high > 255:
            raise ValueError(f"{source}: integer images must lie in 0..255, found values in [{low}, {high}]")
        return torch.from_numpy(images.astype(np.uint8))
    if np.issubdtype(images.dtype, np.floating):
        check_unit_interval(images, source)
        return torch.from_numpy(images.astype(np.float32))
    raise ValueError(f"{source}: images have dtype {images.dtype}; use uint8 0..255 or floats in [0, 1]")


def factor_info(factors: np.ndarray, names: np.ndarray | None, count: int, source: str) -> FactorInfo:
    """FactorInfo from an (N, K) array of classes (integers) or values (floats)."""
    if factors.ndim != 2 or len(factors) != count:
        raise ValueError(f"{source}: 'factors' must have shape (N, K) with N = {count} images, got {factors.shape}")
    if not (np.issubdtype(factors.dtype, np.integer) or np.issubdtype(factors.dtype, np.floating)):
        raise ValueError(f"{source}: 'factors' must be numeric, got dtype {factors.dtype}")
    if np.issubdtype(factors.dtype, np.floating) and not np.isfinite(factors).all():
        raise ValueError(f"{source}: 'factors' contains NaN or infinite values")
    if np.issubdtype(factors.dtype, np.integer) and factors.min() >= 0:
        classes = factors
    else:
        classes = np.stack([np.unique(column, return_inverse=True)[1].reshape(-1) for column in factors.T], axis=1)
    sizes = tuple(int(classes[:, k].max()) + 1 for k in range(factors.shape[1]))
    if names is None:
        names = tuple(f"factor_{k}" for k in range(factors.shape[1]))
    elif len(names) != factors.shape[1]:
        raise ValueError(f"{source}: {len(names)} factor_names for {factors.shape[1]} factor columns")
    return FactorInfo(tuple(str(name) for name in names), sizes, torch.from_numpy(classes.astype(np.int64)),
                      torch.from_numpy(factors.astype(np.float32)))


NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
"""An .npz file is a zip archive: it starts with a local file header, or an end record when empty."""
READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError)
"""What numpy and zipfile raise on a damaged archive (found by truncating and flipping bytes of real files)."""


def read_npz(path: Path, names: tuple[str, ...], resave: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """The arrays among `names` that the .npz file `path` holds, and all its keys; never unpickles.

    Anything that is not a readable .npz archive (a single .npy, another format, a truncated or damaged
    archive, an object array) raises one ValueError naming the file and saying `resave` (how to write it)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(NPY_MAGIC))
    except OSError as error:
        raise ValueError(f"cannot open {path} ({error.strerror}); check that it is a readable file") from error
    if head.startswith(NPY_MAGIC):
        raise ValueError(f"{path} is a single .npy array, not an .npz archive; re-save it with {resave}")
    if not head.startswith(ZIP_MAGICS):
        raise ValueError(f"{path} is not an .npz archive (it does not start with a zip header); "
                         f"re-save the arrays with {resave}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            return {name: archive[name] for name in names if name in keys}, keys
    except READ_ERRORS as error:
        # numpy's refusal to unpickle is a ValueError too; it means object arrays, not a damaged file.
        if isinstance(error, ValueError) and "pickle" in str(error).lower():
            raise ValueError(f"{path} holds a Python object array, which vaelens never unpickles (it could run "
                             f"code); store numeric arrays (names as numpy.array(names, dtype=str)) and re-save "
                             f"with {resave}") from error
        raise ValueError(f"{path} is a damaged .npz archive ({type(error).__name__}: {error}); it may have been "
                         f"truncated by an interrupted copy or write: copy it again or re-save it with "
                         f"{resave}") from error


def _read(path: Path, key: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The image array and the optional factor arrays of an .npz file."""
    found, keys = read_npz(path, (key, "factors", "factor_names"), f"numpy.savez(path, {key}=images)")
    if key not in found:
        raise ValueError(f"{path} has no array '{key}' (data.npz_key); it holds {sorted(keys)}")
    return found[key], found.get("factors"), found.get("factor_names")


def load_npz(config, split: str = "train") -> TensorImageData:
    """The images (and factors) of the .npz file data.path, as described in the module docstring."""
    check_config(config, split)
    if not config.path:
        raise ValueError("data.name=npz needs data.path: the .npz file holding the images")
    path = Path(config.path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f".npz file {path} does not exist (data.path)")
    source = f"{path} ['{config.npz_key}']"
    raw, raw_factors, names = _read(path, config.npz_key)
    storage = to_storage(to_channels_first(raw, source), source)
    factors = None if raw_factors is None else factor_info(raw_factors, names, len(storage), str(path))
    subset = config.subset if split == "train" else None
    indices, held_out = split_indices(len(storage), config.test_fraction, config.seed, split, subset, str(path))
    storage = storage[indices]
    storage = fit_square_storage(storage, config.image_size)
    decode = decode_uint8 if storage.dtype == torch.uint8 else decode_float
    if config.grayscale:
        storage = to_grayscale(storage)
    description = {"source": str(path), "key": config.npz_key, "split": split, "held_out": held_out,
                   "subset": subset, "seed": config.seed, "test_fraction": config.test_fraction,
                   "stored_shape": list(raw.shape), "dtype": str(raw.dtype)}
    return TensorImageData("npz", storage.contiguous(), decode, tuple(storage.shape[1:]),
                           None if factors is None else factors.select(indices), description)
