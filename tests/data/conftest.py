from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest


def _data_config(**overrides) -> SimpleNamespace:
    fields = {"name": "dsprites", "path": None, "subset": None, "image_size": 64, "grayscale": False,
              "test_fraction": 0.1, "seed": 0, "npz_key": "images"}
    fields.update(overrides)
    return SimpleNamespace(**fields)


@pytest.fixture
def data_config():
    """Build a stand-in for vaelens.config.DataConfig (its defaults plus overrides): loaders take any such object."""
    return _data_config


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every data test gets its own empty cache folder, so none reads or writes the user's cache."""
    folder = tmp_path / "vaelens-cache"
    monkeypatch.setenv("VAELENS_CACHE", str(folder))
    return folder


CORRUPTIONS = ("garbage", "truncated", "npy-under-npz-name", "empty")
"""The ways a data file goes bad in practice: not an archive, cut short, the wrong NumPy format, zero bytes."""


def _write_corrupt(kind: str, path, arrays: dict):
    """Write `arrays` to `path` spoiled as `kind` (one of CORRUPTIONS); return the path as a string."""
    if kind == "garbage":
        path.write_bytes(b"this is not an archive\n" * 40)
    elif kind == "truncated":
        np.savez(path, **arrays)
        whole = path.read_bytes()
        path.write_bytes(whole[:len(whole) // 2])
    elif kind == "npy-under-npz-name":
        with open(path, "wb") as handle:
            np.save(handle, next(iter(arrays.values())))
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        raise ValueError(f"unknown corruption {kind!r}")
    return str(path)


@pytest.fixture
def write_corrupt():
    """Write arrays to a path spoiled in one of the ways of CORRUPTIONS."""
    return _write_corrupt
