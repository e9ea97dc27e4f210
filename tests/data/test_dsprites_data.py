from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vaelens.data import dsprites as dsprites_module
from vaelens.data import dsprites_images_for_factors, load_dataset
from vaelens.data import dsprites_render as render
from vaelens.data.cache import load_cached_array


def test_subset_train_split_has_images_and_factors(data_config):
    data = load_dataset(data_config(subset=200), "train")
    assert data.num_images == 200 and data.image_shape == (1, 64, 64)
    images = data.images(torch.arange(10))
    assert images.shape == (10, 1, 64, 64) and images.dtype == torch.float32
    assert set(images.unique().tolist()) == {0.0, 1.0}
    factors = data.factors
    assert factors.names == ("shape", "scale", "orientation", "posX", "posY")
    assert factors.sizes == (3, 6, 40, 32, 32)
    assert factors.classes.shape == (200, 5) and factors.classes.dtype == torch.int64
    assert factors.values.shape == (200, 5) and factors.values.dtype == torch.float32
    assert torch.equal(render.dsprites_index(factors.classes), data.grid_indices)
    description = data.describe()
    json.dumps(description)
    assert description["num_images"] == 200 and description["split"] == "train" and description["held_out"]


def test_subset_pixels_equal_the_rendering_of_their_grid_indices(data_config):
    data = load_dataset(data_config(subset=64, seed=3))
    chosen = torch.tensor([0, 17, 63])
    expected = render.render_indices(data.grid_indices[chosen]).unsqueeze(1).float()
    assert torch.equal(data.images(chosen), expected)
    assert torch.equal(dsprites_images_for_factors(data.factors.classes[chosen]), expected)
    assert torch.equal(data.images_for_factors(data.factors.classes[chosen]), expected)


def test_splits_are_disjoint_seeded_and_subsets_nested(data_config):
    small = load_dataset(data_config(subset=50, seed=1)).grid_indices
    large = load_dataset(data_config(subset=500, seed=1)).grid_indices
    assert set(small.tolist()) <= set(large.tolist())
    test = load_dataset(data_config(subset=50, seed=1), "test")
    assert test.num_images == round(0.1 * render.NUM_IMAGES)
    assert not set(large.tolist()) & set(test.grid_indices.tolist())
    assert torch.equal(load_dataset(data_config(subset=50, seed=1)).grid_indices, small)
    assert not torch.equal(load_dataset(data_config(subset=50, seed=2)).grid_indices, small)


def test_large_test_split_renders_lazily_and_consistently(data_config):
    test = load_dataset(data_config(subset=10, test_fraction=0.1), "test")
    assert test.describe()["pixels"] == "rendered lazily per batch"
    chosen = torch.tensor([5, 70_000, 100])
    expected = render.render_indices(test.grid_indices[chosen]).unsqueeze(1).float()
    assert torch.equal(test.images(chosen), expected)
    assert test.batch(7, 8, seed=0).shape == (8, 1, 64, 64)


def test_zero_test_fraction_evaluates_on_the_training_distribution(data_config):
    test = load_dataset(data_config(subset=10, test_fraction=0.0), "test")
    assert test.num_images == render.NUM_IMAGES and test.describe()["held_out"] is False


def test_batches_are_deterministic_and_stateless(data_config):
    config = data_config(subset=100)
    first, second = load_dataset(config), load_dataset(config)
    steps = [0, 1, 5, 3, 12]
    one = [first.batch(step, 16, seed=4) for step in steps]
    other = [second.batch(step, 16, seed=4) for step in reversed(steps)][::-1]
    for a, b in zip(one, other):
        assert torch.equal(a, b)
    assert not torch.equal(first.batch(0, 16, seed=4), first.batch(0, 16, seed=5))


def test_wrong_image_size_is_rejected(data_config):
    with pytest.raises(ValueError, match="image_size=64"):
        load_dataset(data_config(subset=10, image_size=32))


@pytest.fixture
def small_grid(monkeypatch):
    """Pretend the grid has 3,000 images so the full-grid cache path runs in a test."""
    monkeypatch.setattr(render, "NUM_IMAGES", 3000)
    monkeypatch.setattr(dsprites_module, "_RENDER_CHUNK", 1024)
    monkeypatch.setattr(dsprites_module, "RENDER_DIRECTLY_LIMIT", 100)


def test_full_grid_cache_matches_direct_rendering(small_grid, isolated_cache, data_config, monkeypatch):
    assert dsprites_module.full_grid(create=False) is None
    grid = dsprites_module.full_grid(create=True, progress=False)
    assert grid.shape == (3000, 512) and grid.dtype == np.uint8
    sidecar = json.loads((isolated_cache / f"{dsprites_module.FULL_GRID_CACHE_NAME}.json").read_text())
    assert sidecar["version"] == render.RENDERER_VERSION and len(sidecar["sha256"]) == 64
    indices = torch.tensor([0, 1023, 1024, 2999])
    assert np.array_equal(grid[indices.numpy()], render.pack_images(render.render_indices(indices)))

    cached = load_dataset(data_config(subset=300, seed=0))
    assert cached.describe()["pixels"] == "full-grid cache"
    monkeypatch.setattr(dsprites_module, "RENDER_DIRECTLY_LIMIT", 1000)
    direct = load_dataset(data_config(subset=300, seed=0))
    assert direct.describe()["pixels"] == "rendered"
    assert torch.equal(cached.all_images(), direct.all_images())
    classes = cached.factors.classes[:5]
    assert torch.equal(dsprites_images_for_factors(classes), render.render_classes(classes).unsqueeze(1).float())


def test_corrupt_cache_is_detected_and_not_used(small_grid, isolated_cache, data_config):
    dsprites_module.full_grid(create=True, progress=False)
    path = isolated_cache / f"{dsprites_module.FULL_GRID_CACHE_NAME}.npy"
    contents = bytearray(path.read_bytes())
    contents[-1] ^= 0xFF
    path.write_bytes(bytes(contents))
    with pytest.warns(UserWarning, match="checksum"):
        assert load_cached_array(dsprites_module.FULL_GRID_CACHE_NAME, render.RENDERER_VERSION) is None
    assert load_cached_array(dsprites_module.FULL_GRID_CACHE_NAME, render.RENDERER_VERSION + 1) is None
