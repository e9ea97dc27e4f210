"""Tests for vaelens.models.registry: names reach their constructors; an unknown name lists the choices."""

from __future__ import annotations

import pytest

from vaelens.config import ModelConfig, field_docs
from vaelens.models import MODELS, VAE, build_model


def test_unknown_model_lists_the_registered_ones():
    with pytest.raises(ValueError, match="unknown model 'vit'; available models: conv64, conv32, mlp, linear, resnet"):
        build_model(ModelConfig(name="vit"), (1, 64, 64))


def test_every_registered_model_is_documented_and_builds_a_vae():
    assert all(name in field_docs(ModelConfig)["name"] for name in MODELS)
    model = build_model(ModelConfig(name="linear", latent_dim=3), [1, 8, 8])
    assert isinstance(model, VAE) and model.image_shape == (1, 8, 8) and model.latent_shape == (3,)
