"""Samples of a Gaussian N(mean, Sigma) as one-channel "images": the source of the linear theory.

data.path is an .npz file holding `covariance` (n, n), symmetric positive semi-definite, and
optionally `mean` (n,) (default zeros) and `num_samples` (a scalar, default 4096). The samples are
x = mean + Sigma^(1/2) e with e ~ N(0, I) drawn from a generator seeded by data.seed, so the data
set is a pure function of the file and the seed. Images have shape (1, s, s) when n = s^2 (so
image losses and feature networks apply) and (1, 1, n) otherwise; data.image_size is not used.

Unlike every other data set the values are NOT confined to [0, 1]: a Gaussian is unbounded, and
clipping would change its covariance. Use it with the Gaussian likelihood (and the linear model).
The split is a seeded permutation with data.test_fraction held out; data.subset as usual.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from vaelens.data.base import TensorImageData, check_config, decode_float, split_indices
from vaelens.data.npz import read_npz
from vaelens.io import atomic_path

DEFAULT_NUM_SAMPLES = 4096


def write_gaussian_source(path, covariance, mean=None, num_samples: int = DEFAULT_NUM_SAMPLES) -> Path:
    """Save the .npz file the `gaussian` data set reads (written atomically)."""
    covariance = np.asarray(covariance, dtype=np.float64)
    arrays = {"covariance": covariance, "num_samples": np.array(int(num_samples))}
    if mean is not None:
        arrays["mean"] = np.asarray(mean, dtype=np.float64)
    path = Path(path)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def _read_source(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    found, _ = read_npz(path, ("covariance", "mean", "num_samples"),
                        "vaelens.data.gaussian.write_gaussian_source(path, covariance, mean)")
    if "covariance" not in found:
        raise ValueError(f"{path} has no array 'covariance'; the gaussian data set needs an (n, n) covariance "
                         "(vaelens.data.gaussian.write_gaussian_source writes one)")
    covariance = np.asarray(found["covariance"], dtype=np.float64)
    if covariance.ndim != 2 or covariance.shape[0] != covariance.shape[1] or covariance.shape[0] < 1:
        raise ValueError(f"{path}: 'covariance' must be a square (n, n) matrix, got shape {covariance.shape}")
    if not np.isfinite(covariance).all():
        raise ValueError(f"{path}: 'covariance' has NaN or infinite entries")
    if np.abs(covariance - covariance.T).max() > 1e-8 * max(1.0, np.abs(covariance).max()):
        raise ValueError(f"{path}: 'covariance' must be symmetric")
    n = covariance.shape[0]
    mean = np.asarray(found.get("mean", np.zeros(n)), dtype=np.float64)
    if mean.shape != (n,) or not np.isfinite(mean).all():
        raise ValueError(f"{path}: 'mean' must be a finite vector of length {n}, got shape {mean.shape}")
    count = found.get("num_samples", np.array(DEFAULT_NUM_SAMPLES))
    if count.shape != () or not np.issubdtype(count.dtype, np.integer) or int(count) < 2:
        raise ValueError(f"{path}: 'num_samples' must be an integer scalar >= 2, got {count!r}")
    return 0.5 * (covariance + covariance.T), mean, int(count)


def gaussian_samples(covariance: np.ndarray, mean: np.ndarray, count: int, seed: int) -> torch.Tensor:
    """(count, n) float32 samples of N(mean, covariance), deterministic in `seed`."""
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    if eigenvalues[0] < -1e-8 * max(1.0, abs(eigenvalues[-1])):
        raise ValueError("'covariance' must be positive semi-definite, its smallest eigenvalue is "
                         f"{eigenvalues[0]:.3g}")
    root = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T
    noise = torch.randn(count, len(mean), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (noise @ torch.from_numpy(root) + torch.from_numpy(mean)).float()


def load_gaussian(config, split: str = "train") -> TensorImageData:
    """Samples of the Gaussian described by the .npz file data.path (see the module docstring)."""
    check_config(config, split)
    if not config.path:
        raise ValueError("data.name=gaussian needs data.path: an .npz file with 'covariance' (and optionally "
                         "'mean', 'num_samples')")
    path = Path(config.path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f".npz file {path} does not exist (data.path)")
    covariance, mean, count = _read_source(path)
    samples = gaussian_samples(covariance, mean, count, config.seed)
    subset = config.subset if split == "train" else None
    indices, held_out = split_indices(count, config.test_fraction, config.seed, split, subset, str(path))
    n = len(mean)
    side = math.isqrt(n)
    shape = (1, side, side) if side * side == n else (1, 1, n)
    description = {"source": str(path), "split": split, "held_out": held_out, "subset": subset,
                   "seed": config.seed, "test_fraction": config.test_fraction, "num_samples": count,
                   "dimension": n, "range": "unbounded (Gaussian samples, not clipped to [0, 1])"}
    storage = samples[indices].reshape(-1, *shape).contiguous()
    return TensorImageData("gaussian", storage, decode_float, shape, None, description)
