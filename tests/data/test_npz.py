"""Damaged .npz files: one ValueError that names the file, says what is wrong and how to re-save it."""

import numpy as np
import pytest

from vaelens.data import load_dataset
from vaelens.data.npz import read_npz

from .conftest import CORRUPTIONS

EXPECTED = {"garbage": "not an .npz archive", "truncated": "damaged .npz archive",
            "npy-under-npz-name": "single .npy array", "empty": "not an .npz archive"}


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_npz_loader_explains_a_damaged_file(tmp_path, data_config, write_corrupt, kind):
    images = np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8)
    path = write_corrupt(kind, tmp_path / "faces.npz", {"images": images})
    with pytest.raises(ValueError) as error:
        load_dataset(data_config(name="npz", path=path, image_size=8))
    message = str(error.value)
    assert str(tmp_path / "faces.npz") in message and EXPECTED[kind] in message
    assert "re-save" in message and "numpy.savez(path, images=images)" in message


def test_npz_loader_names_the_configured_key_in_the_advice(tmp_path, data_config, write_corrupt):
    path = write_corrupt("truncated", tmp_path / "p.npz", {"pixels": np.zeros((40, 8, 8), dtype=np.uint8)})
    with pytest.raises(ValueError, match=r"numpy\.savez\(path, pixels=images\)"):
        load_dataset(data_config(name="npz", path=path, npz_key="pixels", image_size=8))


def test_object_arrays_are_refused_not_unpickled(tmp_path, data_config):
    path = tmp_path / "objects.npz"
    np.savez(path, images=np.zeros((4, 8, 8), dtype=np.uint8), factor_names=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ValueError, match="never unpickles") as error:
        load_dataset(data_config(name="npz", path=str(path), image_size=8))
    assert str(path) in str(error.value)


def test_every_truncation_of_an_archive_is_a_value_error(tmp_path):
    """Cut a real compressed archive at every 7th byte: whatever zipfile/zlib/numpy raise inside, the caller
    sees one ValueError naming the file (the data still present at a cut may also read back intact)."""
    source = tmp_path / "whole.npz"
    np.savez_compressed(source, images=np.random.default_rng(1).integers(0, 256, (30, 8, 8), dtype=np.uint8),
                        factors=np.arange(60).reshape(30, 2))
    whole = source.read_bytes()
    cut = tmp_path / "cut.npz"
    for length in range(0, len(whole) - 1, 7):
        cut.write_bytes(whole[:length])
        with pytest.raises(ValueError, match="cut.npz"):
            read_npz(cut, ("images", "factors"), "numpy.savez(path, images=images)")


def test_a_good_archive_reads_back(tmp_path):
    path = tmp_path / "good.npz"
    np.savez(path, images=np.ones((2, 3, 3), dtype=np.uint8), other=np.zeros(1))
    found, keys = read_npz(path, ("images", "factors"), "unused")
    assert sorted(keys) == ["images", "other"] and list(found) == ["images"]
    np.testing.assert_array_equal(found["images"], np.ones((2, 3, 3), dtype=np.uint8))
