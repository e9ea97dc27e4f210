"""Fixtures shared by the test packages."""

from __future__ import annotations

import pytest
import torch


def _random_images(n=3, c=1, size=32, seed=0, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=generator, dtype=dtype)


@pytest.fixture
def make_images():
    """make_images(n=3, c=1, size=32, seed=0, dtype=float64): seeded uniform images in [0, 1], (n, c, size, size)."""
    return _random_images


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """Point the torch hub cache at an empty directory, as on a machine without downloaded backbones."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    return tmp_path
