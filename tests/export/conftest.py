"""Tiny trained runs that the export tests write out, each trained once per test session."""

from __future__ import annotations

import pytest

from vaelens import train
from vaelens.config import resolve

TINY_TRAINING = [
    "data.name=natural", "data.image_size=32", "data.subset=64", "model.latent_dim=4", "loss.likelihood=laplace",
    "train.steps=4", "train.batch_size=8", "train.checkpoint_every=2", "train.log_every=1", "train.eval_images=8",
    "train.progress=false", "train.device=cpu",
]
"""A few steps on 64 of the bundled photos, at 32 x 32."""
TINY_RESNET = [*TINY_TRAINING, "model.name=resnet", "model.channels=8", "model.channel_multipliers=[1,2,2]"]
"""An SD-style resnet with three levels (32 -> 8 latents)."""
TINY_MLP = [*TINY_TRAINING, "model.name=mlp", "model.hidden_dim=32"]


def _trained(tmp_path_factory, name: str, overrides: list[str]):
    root = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAELENS_CACHE", str(root / "cache"))
        train(resolve(None, None, overrides), root / "run")
    return root / "run"


@pytest.fixture(scope="session")
def resnet_run(tmp_path_factory):
    """The directory of a finished tiny resnet run; tests only read it."""
    return _trained(tmp_path_factory, "resnet", TINY_RESNET)


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory):
    """The directory of a finished tiny mlp run; tests only read it."""
    return _trained(tmp_path_factory, "mlp", TINY_MLP)
