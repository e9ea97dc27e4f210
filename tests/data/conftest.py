from __future__ import annotations

from types import SimpleNamespace

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
