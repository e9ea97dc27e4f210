from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vaelens.data import load_dataset
from vaelens.data.folder import decode_image, list_image_files


def _write_images(folder, count: int, size=(40, 30)) -> list:
    """`count` images with a constant colour each (red channel = 10 * index), in nested folders."""
    paths = []
    for index in range(count):
        subfolder = folder / f"group{index % 3}"
        subfolder.mkdir(parents=True, exist_ok=True)
        path = subfolder / f"image{index:03d}.{'png' if index % 2 else 'jpg'}"
        Image.new("RGB", size, (10 * index, 100, 200)).save(path)
        paths.append(path)
    return paths


def test_folder_lists_images_recursively_and_splits_by_path_hash(tmp_path, data_config):
    _write_images(tmp_path, 24)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"junk")
    assert len(list_image_files(tmp_path)) == 24
    config = data_config(name="folder", path=str(tmp_path), image_size=16, test_fraction=0.25, seed=3)
    train, test = load_dataset(config, "train"), load_dataset(config, "test")
    assert train.num_images + test.num_images == 24 and test.num_images > 0
    assert not set(train.files) & set(test.files)
    assert load_dataset(config, "train").files == train.files
    description = train.describe()
    json.dumps(description)
    assert description["split"] == "train" and description["num_images"] == train.num_images


def test_folder_images_are_resized_cropped_and_in_unit_range(tmp_path, data_config):
    _write_images(tmp_path, 6)
    data = load_dataset(data_config(name="folder", path=str(tmp_path), image_size=16, test_fraction=0.0))
    images = data.images(torch.arange(data.num_images))
    assert images.shape == (6, 3, 16, 16) and images.dtype == torch.float32
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    green_and_blue = torch.tensor([100 / 255, 200 / 255]).view(1, 2, 1, 1).expand(6, 2, 16, 16)
    torch.testing.assert_close(images[:, 1:], green_and_blue, atol=3 / 255, rtol=0)
    red = images[:, 0].mean(dim=(1, 2)) * 255
    assert sorted(red.round().tolist()) == pytest.approx([0, 10, 20, 30, 40, 50], abs=3)
    gray = load_dataset(data_config(name="folder", path=str(tmp_path), image_size=8, grayscale=True, test_fraction=0))
    assert gray.image_shape == (1, 8, 8) and gray.images([0]).shape == (1, 1, 8, 8)


def test_resize_keeps_the_centre_of_a_wide_image(tmp_path):
    pixels = np.zeros((20, 60, 3), dtype=np.uint8)
    pixels[:, 20:40] = 255
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    decoded = decode_image(tmp_path / "wide.png", 10, grayscale=False)
    assert decoded.shape == (3, 10, 10) and decoded[:, 2:8, 2:8].min() >= 250 / 255


def test_streamed_batches_match_direct_decoding_and_are_deterministic(tmp_path, data_config):
    _write_images(tmp_path, 20)
    config = data_config(name="folder", path=str(tmp_path), image_size=8, test_fraction=0.0)
    streaming, fresh = load_dataset(config), load_dataset(config)
    batches = [streaming.batch(step, 4, seed=2) for step in range(8)]
    for step in reversed(range(8)):
        assert torch.equal(fresh.batch(step, 4, seed=2), batches[step])
    order = streaming._epoch_order(2, 0)
    assert torch.equal(batches[1], streaming.images(order[4:8]))
    assert streaming.to("cpu").batch(3, 4, seed=2).device.type == "cpu"


def test_folder_errors_name_the_problem(tmp_path, data_config):
    with pytest.raises(FileNotFoundError, match="missing-folder"):
        load_dataset(data_config(name="folder", path=str(tmp_path / "missing-folder")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no"):
        load_dataset(data_config(name="folder", path=str(tmp_path / "empty")))
    with pytest.raises(ValueError, match="data.path"):
        load_dataset(data_config(name="folder"))
    _write_images(tmp_path / "bad", 3)
    (tmp_path / "bad" / "zz_broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="zz_broken.png"):  # named when the folder is loaded, not at a batch
        load_dataset(data_config(name="folder", path=str(tmp_path / "bad"), image_size=8, test_fraction=0.0))


def _save_npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW"])
def test_npz_layouts_and_uint8_values(tmp_path, data_config, layout):
    images = np.random.default_rng(0).integers(0, 256, (30, 3, 12, 12), dtype=np.uint8)
    stored = {"NHW": images[:, 0], "NHWC": images.transpose(0, 2, 3, 1), "NCHW": images}[layout]
    path = _save_npz(tmp_path / "images.npz", images=stored)
    data = load_dataset(data_config(name="npz", path=path, image_size=12, test_fraction=0.0))
    channels = 1 if layout == "NHW" else 3
    assert data.image_shape == (channels, 12, 12) and data.num_images == 30
    expected = torch.from_numpy(images[:, :channels]).float() / 255
    torch.testing.assert_close(data.images(torch.arange(30)), expected)


def test_npz_float_images_factors_split_and_resize(tmp_path, data_config):
    rng = np.random.default_rng(1)
    images = rng.random((40, 16, 16)).astype(np.float32)
    factors = np.stack([np.arange(40) % 4, np.arange(40) // 10], axis=1)
    path = _save_npz(tmp_path / "f.npz", pixels=images, factors=factors, factor_names=np.array(["a", "b"]))
    config = data_config(name="npz", path=path, npz_key="pixels", image_size=8, test_fraction=0.25, seed=2)
    train, test = load_dataset(config, "train"), load_dataset(config, "test")
    assert (train.num_images, test.num_images) == (30, 10)
    assert train.image_shape == (1, 8, 8) and train.images([0]).dtype == torch.float32
    assert train.factors.names == ("a", "b") and train.factors.sizes == (4, 4)
    assert train.factors.classes.shape == (30, 2)
    full = load_dataset(data_config(name="npz", path=path, npz_key="pixels", image_size=16, test_fraction=0.0))
    torch.testing.assert_close(full.images(torch.arange(40))[:, 0], torch.from_numpy(images))
    assert torch.equal(full.factors.classes, torch.from_numpy(factors))


@pytest.mark.parametrize("array, message", [
    (np.full((4, 8, 8), np.nan, dtype=np.float32), "NaN"),
    (np.full((4, 8, 8), 2.0, dtype=np.float32), r"\[0, 1\]"),
    (np.full((4, 8, 8), 300, dtype=np.int32), "0..255"),
    (np.zeros((4, 8, 8, 5), dtype=np.uint8), "accepted layouts"),
    (np.zeros((4, 64), dtype=np.uint8), "accepted layouts"),
])
def test_npz_bad_contents_are_explained(tmp_path, data_config, array, message):
    path = _save_npz(tmp_path / "bad.npz", images=array)
    with pytest.raises(ValueError, match=message) as error:
        load_dataset(data_config(name="npz", path=path, image_size=8))
    assert "bad.npz" in str(error.value)


def test_npz_missing_file_or_key(tmp_path, data_config):
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        load_dataset(data_config(name="npz", path=str(tmp_path / "absent.npz")))
    path = _save_npz(tmp_path / "other.npz", pictures=np.zeros((2, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="pictures"):
        load_dataset(data_config(name="npz", path=path))
