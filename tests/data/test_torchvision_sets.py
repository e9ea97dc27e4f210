from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from vaelens.data import load_dataset


def _write_idx(path, array: np.ndarray) -> None:
    """An MNIST idx file: magic (0x08 = uint8, number of dims), big-endian sizes, then the bytes."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _fake_mnist(root, train_count=12, test_count=5) -> dict[str, np.ndarray]:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (train_count, 28, 28)), "t10k": rng.integers(0, 256, (test_count, 28, 28))}
    for prefix, pixels in images.items():
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", pixels)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(len(pixels)) % 10)
    return images


def test_mnist_loads_real_idx_files_from_the_given_root(tmp_path, data_config):
    images = _fake_mnist(tmp_path)
    train = load_dataset(data_config(name="mnist", path=str(tmp_path), image_size=28), "train")
    test = load_dataset(data_config(name="mnist", path=str(tmp_path), image_size=28), "test")
    assert train.num_images == 12 and test.num_images == 5 and train.image_shape == (1, 28, 28)
    torch.testing.assert_close(train.images(torch.arange(12))[:, 0], torch.from_numpy(images["train"]).float() / 255)
    torch.testing.assert_close(test.images(torch.arange(5))[:, 0], torch.from_numpy(images["t10k"]).float() / 255)
    assert train.describe()["split"] == "train" and train.factors is None


def test_mnist_resizes_and_subsets(tmp_path, data_config):
    _fake_mnist(tmp_path)
    data = load_dataset(data_config(name="mnist", path=str(tmp_path), image_size=32, subset=7, seed=1))
    assert data.num_images == 7 and data.image_shape == (1, 32, 32)
    batch = data.batch(0, 7, seed=0)
    assert 0.0 <= float(batch.min()) and float(batch.max()) <= 1.0


def test_default_root_is_the_cache_folder(isolated_cache, data_config):
    _fake_mnist(isolated_cache / "datasets")
    assert load_dataset(data_config(name="mnist", image_size=28)).num_images == 12


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw"),
                                          ("cifar10", "cifar-10-batches-py"), ("celeba", "celeba")])
def test_missing_files_name_the_folder_and_how_to_get_them(tmp_path, data_config, name, folder):
    with pytest.raises(FileNotFoundError) as error:
        load_dataset(data_config(name=name, path=str(tmp_path)))
    message = str(error.value)
    assert str(tmp_path / folder) in message and "download=True" in message and "never" in message


class _Executes:
    def __reduce__(self):
        return (print, ("this pickle ran code",))


def test_a_pickled_torchvision_file_is_refused_without_advice_to_unpickle(tmp_path, data_config, capsys):
    from vaelens.errors import UnsafePickle

    processed = tmp_path / "MNIST" / "processed"
    processed.mkdir(parents=True)
    for name in ("training.pt", "test.pt"):  # torchvision's legacy layout, read with torch.load
        torch.save(_Executes(), processed / name)
    with pytest.raises(UnsafePickle) as refused:
        load_dataset(data_config(name="mnist", path=str(tmp_path)))
    assert "is not a safe checkpoint" in str(refused.value) and "weights_only" not in str(refused.value)
    assert "this pickle ran code" not in capsys.readouterr().out
