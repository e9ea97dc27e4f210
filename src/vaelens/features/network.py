"""Small convolutional feature networks for LPIPS-style perceptual distances, and the heads that fit them.

`FeatureNetwork` is the part a perceptual distance uses and the only part that is saved: a stack of
stages, each a 3x3 convolution with stride 2 followed by a ReLU (and optionally more stride-1 3x3
convolutions + ReLU), so stage l sees the image at 1 / 2^(l+1) of its side. `forward` returns the
post-ReLU activation of every stage, as LPIPS compares the ReLU outputs of VGG/AlexNet.

Normalisation: inputs are images in [0, 1] (the vaelens convention); the network maps them to
[-1, 1] (2x - 1) itself, so callers never normalise. The heads below exist only while fitting.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_WIDTHS = (32, 64, 128, 128)
HEAD_GRID = 4
"""Classifier heads see the last feature map average-pooled to a HEAD_GRID x HEAD_GRID grid, so they
keep coarse position (a single global pool would throw away where a sprite is)."""


def _check_widths(widths: Sequence[int]) -> tuple[int, ...]:
    widths = tuple(widths)
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"widths must be a non-empty sequence of positive integers (channels per stage), "
                         f"got {widths!r}")
    return widths


class FeatureNetwork(nn.Module):
    """Feature extractor: images (N, in_channels, H, W) in [0, 1] -> list of per-stage activations.

    `image_size` is the side the network was fitted at (recorded, not enforced: the network is fully
    convolutional). `convs_per_stage` - 1 extra stride-1 convolutions follow each downsampling one.
    """

    def __init__(self, in_channels: int, image_size: int, widths: Sequence[int] = DEFAULT_WIDTHS,
                 convs_per_stage: int = 1):
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
        if isinstance(convs_per_stage, bool) or not isinstance(convs_per_stage, int) or convs_per_stage < 1:
            raise ValueError(f"convs_per_stage must be a positive integer, got {convs_per_stage!r}")
        self.in_channels = in_channels
        self.image_size = image_size
        self.widths = _check_widths(widths)
        self.convs_per_stage = convs_per_stage
        stages = []
        previous = in_channels
        for width in self.widths:
            layers = [nn.Conv2d(previous, width, 3, stride=2, padding=1), nn.ReLU()]
            for _ in range(convs_per_stage - 1):
                layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
            stages.append(nn.Sequential(*layers))
            previous = width
        self.stages = nn.ModuleList(stages)

    def architecture(self) -> dict:
        """The constructor arguments, JSON-friendly: enough to rebuild the network before loading weights."""
        return {"in_channels": self.in_channels, "image_size": self.image_size, "widths": list(self.widths),
                "convs_per_stage": self.convs_per_stage}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"the feature network takes images (N, {self.in_channels}, H, W) in [0, 1], got shape "
                             f"{tuple(x.shape)}; it was fitted on {self.in_channels}-channel "
                             f"{self.image_size}x{self.image_size} images")
        activation = 2.0 * x - 1.0
        activations = []
        for stage in self.stages:
            activation = stage(activation)
            activations.append(activation)
        return activations


class FactorClassifierHeads(nn.Module):
    """One linear classifier per ground-truth factor, on the last feature map pooled to a small grid."""

    def __init__(self, width: int, factor_sizes: Sequence[int]):
        super().__init__()
        self.factor_sizes = tuple(int(size) for size in factor_sizes)
        inputs = width * HEAD_GRID * HEAD_GRID
        self.heads = nn.ModuleList(nn.Linear(inputs, size) for size in self.factor_sizes)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        pooled = F.adaptive_avg_pool2d(features[-1], HEAD_GRID).flatten(1)
        return [head(pooled) for head in self.heads]


class DenoisingDecoder(nn.Module):
    """A light top-down decoder: from the deepest stage up, upsample x2, add a 1x1 projection of the
    next shallower stage, 3x3 conv + ReLU; at the first stage predict 2x2 pixel blocks (pixel shuffle).

    Every stage feeds the reconstruction, so every stage must keep what the image needs; the
    corruption (noise + masked blocks) makes the deeper stages supply context the shallow ones lack.
    """

    def __init__(self, widths: Sequence[int], out_channels: int):
        super().__init__()
        widths = _check_widths(widths)
        self.lateral = nn.ModuleList(nn.Conv2d(width, width, 1) for width in widths[:-1])
        self.refine = nn.ModuleList(nn.Conv2d(deeper, shallower, 3, padding=1)
                                    for deeper, shallower in zip(widths[1:], widths[:-1]))
        self.to_pixels = nn.Conv2d(widths[0], out_channels * 4, 1)

    def forward(self, features: list[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        decoded = features[-1]
        for level in range(len(features) - 2, -1, -1):
            skip = features[level]
            upsampled = F.interpolate(decoded, size=skip.shape[-2:], mode="nearest")
            decoded = F.relu(self.refine[level](upsampled)) + self.lateral[level](skip)
        pixels = F.pixel_shuffle(self.to_pixels(decoded), 2)
        if tuple(pixels.shape[-2:]) != tuple(image_size):
            pixels = F.interpolate(pixels, size=image_size, mode="bilinear", align_corners=False)
        return torch.sigmoid(pixels)


class ProjectionHead(nn.Module):
    """SimCLR projection: globally pooled last features -> MLP -> embedding (not normalised here)."""

    def __init__(self, width: int, embedding_dim: int = 64):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, embedding_dim))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.mlp(pooled_representation(features))


def pooled_representation(features: list[torch.Tensor]) -> torch.Tensor:
    """The globally average-pooled last feature map (N, C): the network's image-level representation."""
    return features[-1].mean(dim=(2, 3))
