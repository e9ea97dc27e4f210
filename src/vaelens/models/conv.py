"""Convolutional VAE of Burgess et al. (2018), 'Understanding disentangling in beta-VAE'.

conv64: four 4x4 stride-2 convolutions with 32 channels (64 -> 4), two fully connected layers of
256, a linear head to (mu, logvar); the decoder mirrors it with transposed convolutions.
conv32 is the same network with three downsamplings for 32x32 images.
"""

from __future__ import annotations

import torch
from torch import nn

from vaelens.models.base import VAE


class BurgessConvVAE(VAE):
    def __init__(self, image_shape, latent_dim: int = 10, channels: int = 32,
                 hidden_dim: int = 256, num_downsamplings: int = 4):
        super().__init__()
        in_channels, height, width = image_shape
        side = 4 * 2**num_downsamplings
        if (height, width) != (side, side):
            raise ValueError(
                f"this conv model takes {side}x{side} images, the data has {height}x{width}; "
                f"use model.name=conv{height} if it exists, or set data.image_size={side}"
            )
        self.image_shape = tuple(image_shape)
        self.latent_shape = (latent_dim,)
        encoder_layers, decoder_layers = [], []
        for level in range(num_downsamplings):
            encoder_layers += [nn.Conv2d(in_channels if level == 0 else channels, channels, 4, 2, 1), nn.ReLU()]
        self.encoder_convs = nn.Sequential(*encoder_layers)
        flat = channels * 4 * 4
        self.encoder_fc = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
            nn.Linear(hidden_dim, 2 * latent_dim),
        )
        self.decoder_fc = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
            nn.Linear(hidden_dim, flat), nn.ReLU(), nn.Unflatten(1, (channels, 4, 4)),
        )
        for level in range(num_downsamplings - 1):
            decoder_layers += [nn.ConvTranspose2d(channels, channels, 4, 2, 1), nn.ReLU()]
        # The output layer lives only inside decoder_convs: a second attribute would register the same
        # tensors twice and safetensors refuses shared storage.
        self.decoder_convs = nn.Sequential(*decoder_layers, nn.ConvTranspose2d(channels, in_channels, 4, 2, 1))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_input(x)
        mu, logvar = self.encoder_fc(self.encoder_convs(x)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder_convs(self.decoder_fc(z))

    @property
    def decoder_last_layer(self) -> nn.Module:
        return self.decoder_convs[-1]


def conv64(image_shape, config) -> BurgessConvVAE:
    return BurgessConvVAE(image_shape, config.latent_dim, config.channels, config.hidden_dim, 4)


def conv32(image_shape, config) -> BurgessConvVAE:
    return BurgessConvVAE(image_shape, config.latent_dim, config.channels, config.hidden_dim, 3)
