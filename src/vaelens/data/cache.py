"""The vaelens cache directory and checksummed, atomically written array files in it.

An array is stored as `NAME.npy` beside `NAME.json` (version, shape, dtype, SHA-256). The array is
written to a temporary file and renamed into place, and the sidecar is written last, so a crash
never leaves a truncated file that looks valid: without a matching sidecar a cache entry is stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import platformdirs

from vaelens.io import atomic_path, atomic_write_json

CACHE_ENVIRONMENT_VARIABLE = "VAELENS_CACHE"
_VERIFIED_FILES: set[tuple] = set()
"""(path, size, modification time, checksum) of files already hashed in this process: hash once."""


def cache_dir() -> Path:
    """The vaelens cache folder: $VAELENS_CACHE if set, else the platform's user cache dir."""
    override = os.environ.get(CACHE_ENVIRONMENT_VARIABLE)
    return Path(override).expanduser() if override else Path(platformdirs.user_cache_dir("vaelens"))


def file_sha256(path: Path, block_size: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in blocks so large caches need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(block_size):
            digest.update(block)
    return digest.hexdigest()


def save_cached_array(name: str, array: np.ndarray, version: int, extra: dict | None = None) -> Path:
    """Write `array` to the cache as NAME.npy with a NAME.json sidecar; return the .npy path."""
    folder = cache_dir()
    target = folder / f"{name}.npy"
    with atomic_path(target) as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
        checksum = file_sha256(temporary)
    sidecar = {"version": version, "shape": list(array.shape), "dtype": str(array.dtype), "sha256": checksum,
               **(extra or {})}
    atomic_write_json(folder / f"{name}.json", sidecar)
    return target


def load_cached_array(name: str, version: int, verify: bool = True) -> np.ndarray | None:
    """The cached array NAME (memory-mapped, read-only), or None when absent, stale or corrupt.

    A stale or corrupt entry is reported with a warning and treated as missing, so the caller
    regenerates it instead of training on damaged data.
    """
    folder = cache_dir()
    target, sidecar_path = folder / f"{name}.npy", folder / f"{name}.json"
    if not target.is_file() or not sidecar_path.is_file():
        return None
    try:
        sidecar = json.loads(sidecar_path.read_text())
    except json.JSONDecodeError:
        warnings.warn(f"cache sidecar {sidecar_path} is not valid JSON; regenerating {target.name}", stacklevel=2)
        return None
    if sidecar.get("version") != version:
        return None
    status = target.stat()
    fingerprint = (str(target.resolve()), status.st_size, status.st_mtime_ns, sidecar.get("sha256"))
    if verify and fingerprint not in _VERIFIED_FILES:
        if file_sha256(target) != sidecar.get("sha256"):
            warnings.warn(f"cached file {target} does not match its checksum; regenerating it", stacklevel=2)
            return None
        _VERIFIED_FILES.add(fingerprint)
    array = np.load(target, mmap_mode="r", allow_pickle=False)
    if list(array.shape) != sidecar.get("shape") or str(array.dtype) != sidecar.get("dtype"):
        warnings.warn(f"cached file {target} has shape {array.shape}, expected {sidecar.get('shape')}; "
                      "regenerating it", stacklevel=2)
        return None
    return array
