"""A model too large for memory is refused in one line naming the key to lower, before anything is allocated or
written; the parameter count it reads comes from the meta device and equals the real model's."""

from __future__ import annotations

import pytest

from vaelens import train
from vaelens.config import resolve
from vaelens.models import build_model
from vaelens.training.memory import check_model_fits, parameter_count

TINY = ["data.subset=128", "model.channels=8", "model.hidden_dim=32", "model.latent_dim=4", "train.steps=2",
        "train.batch_size=16", "train.progress=false", "train.device=cpu"]


@pytest.mark.parametrize("name", ["conv64", "mlp", "resnet"])
def test_the_meta_count_equals_the_real_model(name):
    config = resolve("dsprites-bvae", None, [*TINY, f"model.name={name}"])
    real = sum(parameter.numel() for parameter in build_model(config.model, (1, 64, 64)).parameters())
    assert parameter_count(config.model, (1, 64, 64)) == real


@pytest.mark.parametrize("override, key", [("model.latent_dim=1000000000", "model.latent_dim=1000000000"),
                                           ("model.hidden_dim=3000000", "model.hidden_dim=3000000")])
def test_a_model_too_large_for_memory_names_the_key(tiny_config, tmp_path, override, key):
    config = resolve("dsprites-bvae", None, [*TINY, override])
    with pytest.raises(ValueError, match=rf"{key} makes model conv64 .* parameters: training needs at least "
                                         r".* GiB .*lower model\."):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_ensemble_counts_every_member(tiny_config):
    config = resolve("dsprites-bvae", None, TINY)
    check_model_fits(config, (1, 64, 64), "cpu", members=2)
    with pytest.raises(ValueError, match="10000000 models of model conv64"):
        check_model_fits(config, (1, 64, 64), "cpu", members=10_000_000)
