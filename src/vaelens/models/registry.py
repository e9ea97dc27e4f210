"""Model registry: name -> constructor(image_shape, ModelConfig)."""

from __future__ import annotations

from vaelens.models.base import VAE
from vaelens.models.conv import conv32, conv64
from vaelens.models.mlp import linear, mlp
from vaelens.models.resnet import resnet

MODELS = {"conv64": conv64, "conv32": conv32, "mlp": mlp, "linear": linear, "resnet": resnet}


def build_model(config, image_shape) -> VAE:
    """Construct the model named by `config.name` for images of shape (C, H, W)."""
    if config.name not in MODELS:
        raise ValueError(f"unknown model '{config.name}'; available models: {', '.join(MODELS)}")
    return MODELS[config.name](tuple(image_shape), config)
