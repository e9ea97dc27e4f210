"""The `gaussian` data set: deterministic samples of N(mean, Sigma) from an .npz description."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaelens.data import load_dataset
from vaelens.data.gaussian import write_gaussian_source


def test_samples_follow_the_file_and_the_seed(tmp_path, data_config):
    rng = np.random.default_rng(0)
    factor = rng.standard_normal((4, 4))
    covariance, mean = factor @ factor.T, np.array([0.5, -1.0, 2.0, 0.0])
    path = write_gaussian_source(tmp_path / "g.npz", covariance, mean, num_samples=20000)
    config = data_config(name="gaussian", path=str(path), test_fraction=0.0)
    data = load_dataset(config, "train")
    assert data.image_shape == (1, 2, 2) and data.num_images == 20000
    vectors = data.all_images().flatten(1).double()
    np.testing.assert_allclose(vectors.mean(0).numpy(), mean, atol=0.05)
    np.testing.assert_allclose(torch.cov(vectors.T).numpy(), covariance, atol=0.1 * np.abs(covariance).max())
    torch.testing.assert_close(load_dataset(config, "train").all_images(), data.all_images())
    assert not torch.equal(load_dataset(data_config(name="gaussian", path=str(path), test_fraction=0.0, seed=1),
                                        "train").all_images(), data.all_images())


def test_non_square_dimension_and_split(tmp_path, data_config):
    path = write_gaussian_source(tmp_path / "g.npz", np.eye(3), num_samples=100)
    train = load_dataset(data_config(name="gaussian", path=str(path), test_fraction=0.2), "train")
    test = load_dataset(data_config(name="gaussian", path=str(path), test_fraction=0.2), "test")
    assert train.image_shape == (1, 1, 3) and (train.num_images, test.num_images) == (80, 20)
    assert train.describe()["range"].startswith("unbounded")


@pytest.mark.parametrize("arrays,message", [
    ({"mean": np.zeros(2)}, "no array 'covariance'"),
    ({"covariance": np.ones((2, 3))}, "square"),
    ({"covariance": np.array([[1.0, 0.5], [0.0, 1.0]])}, "symmetric"),
    ({"covariance": np.array([[1.0, 2.0], [2.0, 1.0]])}, "positive semi-definite"),
    ({"covariance": np.eye(2), "mean": np.zeros(3)}, "length 2"),
    ({"covariance": np.eye(2), "num_samples": np.array(1.5)}, "num_samples"),
])
def test_bad_files_raise_clear_errors(tmp_path, data_config, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message):
        load_dataset(data_config(name="gaussian", path=str(path)), "train")


def test_missing_path_is_explained(tmp_path, data_config):
    with pytest.raises(ValueError, match="needs data.path"):
        load_dataset(data_config(name="gaussian"), "train")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(data_config(name="gaussian", path=str(tmp_path / "none.npz")), "train")


@pytest.mark.parametrize("kind,expected", [("garbage", "not an .npz archive"), ("truncated", "damaged .npz archive"),
                                           ("npy-under-npz-name", "single .npy array"),
                                           ("empty", "not an .npz archive")])
def test_damaged_files_raise_one_clear_error(tmp_path, data_config, write_corrupt, kind, expected):
    path = write_corrupt(kind, tmp_path / "source.npz", {"covariance": np.eye(16), "mean": np.zeros(16)})
    with pytest.raises(ValueError) as error:
        load_dataset(data_config(name="gaussian", path=path), "train")
    message = str(error.value)
    assert str(tmp_path / "source.npz") in message and expected in message
    assert "re-save" in message and "write_gaussian_source" in message
