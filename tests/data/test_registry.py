"""Tests for vaelens.data.registry: every data.name reaches its loader; an unknown one is named."""

from __future__ import annotations

import pytest

from vaelens.config import DataConfig, field_docs
from vaelens.data import DATASET_NAMES, load_dataset


def test_unknown_data_set_names_the_key_and_the_choices(data_config):
    with pytest.raises(ValueError, match=r"unknown data set data.name='imagenet'; choose one of dsprites, natural"):
        load_dataset(data_config(name="imagenet"))


def test_every_registered_name_is_documented_in_the_config():
    documented = field_docs(DataConfig)["name"]
    assert all(name in documented for name in DATASET_NAMES)


def test_load_dataset_dispatches_on_the_name(data_config):
    data = load_dataset(data_config(name="natural", image_size=32, subset=8), split="train")
    assert data.num_images == 8 and tuple(data.image_shape) == (3, 32, 32)
