from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from vaelens.data import load_dataset, natural


def test_every_listed_photo_ships_with_scikit_image():
    for name in natural.TRAIN_PHOTOS + natural.TEST_PHOTOS:
        assert (natural.photo_folder() / name).is_file(), name


def test_split_is_by_source_photo():
    assert not set(natural.TRAIN_PHOTOS) & set(natural.TEST_PHOTOS)
    # The stereo pair must stay together, or the test split would hold near-copies of training patches.
    assert {"motorcycle_left.png", "motorcycle_right.png"} <= set(natural.TRAIN_PHOTOS)


def test_patches_are_rgb_in_unit_range_and_counted_per_photo(data_config):
    train = load_dataset(data_config(name="natural"), "train")
    test = load_dataset(data_config(name="natural"), "test")
    assert train.image_shape == test.image_shape == (3, 64, 64) and train.factors is None
    description = train.describe()
    json.dumps(description)
    assert set(description["photos"]) == set(natural.TRAIN_PHOTOS)
    assert set(test.describe()["photos"]) == set(natural.TEST_PHOTOS)
    assert sum(description["photos"].values()) == train.num_images > 1000
    assert test.num_images > 200
    batch = train.batch(0, 32, seed=0)
    assert batch.shape == (32, 3, 64, 64) and batch.dtype == torch.float32
    assert 0.0 <= float(batch.min()) and float(batch.max()) <= 1.0 and float(batch.std()) > 0.05


def test_patches_are_crops_of_the_photo_on_the_documented_grid():
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (160, 200, 3), dtype=np.uint8))
    patches = natural.photo_patches(photo)
    full_size_count = ((160 - 64) // 32 + 1) * ((200 - 64) // 32 + 1)
    half = photo.reduce(2)
    assert len(patches) == full_size_count + ((half.height - 64) // 32 + 1) * ((half.width - 64) // 32 + 1)
    pixels = np.asarray(photo)
    # Patch 1 is the second on the top row: columns 32..95.
    assert np.array_equal(patches[1], pixels[0:64, 32:96].transpose(2, 0, 1))


def test_flat_patches_are_dropped():
    photo = Image.new("RGB", (128, 64), (40, 40, 40))
    assert len(natural.photo_patches(photo)) == 0


def test_size_32_is_the_64_patch_averaged_and_grayscale_has_one_channel(data_config):
    large = load_dataset(data_config(name="natural"), "test")
    small = load_dataset(data_config(name="natural", image_size=32), "test")
    assert small.num_images == large.num_images and small.image_shape == (3, 32, 32)
    expected = F.avg_pool2d(large.images(torch.arange(4)), 2)
    torch.testing.assert_close(small.images(torch.arange(4)), expected, atol=1 / 255, rtol=0)
    gray = load_dataset(data_config(name="natural", grayscale=True), "test")
    assert gray.image_shape == (1, 64, 64)


def test_subset_is_seeded_and_unsupported_sizes_fail(data_config):
    first = load_dataset(data_config(name="natural", subset=100, seed=1))
    again = load_dataset(data_config(name="natural", subset=100, seed=1))
    assert first.num_images == 100 and torch.equal(first.all_images(), again.all_images())
    with pytest.raises(ValueError, match="64 or 32"):
        load_dataset(data_config(name="natural", image_size=48))
