"""Models: a diagonal-Gaussian encoder and a decoder per architecture, built by name from the registry."""

from vaelens.models.base import VAE, PosteriorEncoder
from vaelens.models.conv import BurgessConvVAE
from vaelens.models.mlp import MLPVAE, LinearVAE
from vaelens.models.registry import MODELS, build_model
from vaelens.models.resnet import ResNetVAE

__all__ = ["VAE", "BurgessConvVAE", "MLPVAE", "LinearVAE", "ResNetVAE", "MODELS", "PosteriorEncoder", "build_model"]
