"""The EfficientNet-Lite0 architecture (Tan & Le 2019; the "Lite" variant of the TensorFlow TPU models), written
for vaelens: a stem convolution, 16 inverted-residual (MBConv) blocks in 7 stages, a 1x1 head and a linear
classifier over the 1000 ImageNet classes.

"Lite" differs from EfficientNet-B0 in what mobile accelerators need: no squeeze-excitation, ReLU6 in place of
swish, and a stem (32 channels) and head (1280) that are not scaled. The ImageNet weights were trained in
TensorFlow, so every convolution pads the TensorFlow "SAME" way (any leftover row or column of padding goes
below and to the right) and batch normalisation uses eps = 1e-3; both are reproduced here, at any image size.
The module names are this file's own; `rename_checkpoint_key` maps the keys of the published state dict onto
them. Weights, freezing and the perceptual distance live in vaelens.distances.efficientnet.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BATCH_NORM_EPS = 1e-3
"""TensorFlow's batch-normalisation epsilon, which the ImageNet statistics were computed with."""
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class Stage:
    """One stage of MBConv blocks of the same kernel and width (only the first block changes resolution)."""

    kernel: int
    """Side of the depthwise convolution's kernel."""
    stride: int
    """Stride of the stage's first block (the others have stride 1)."""
    expansion: int
    """Hidden width of each block as a multiple of its input width (1: no expansion convolution)."""
    channels: int
    """Output channels of every block of the stage."""
    repeats: int
    """Number of blocks."""


STAGES = (
    Stage(kernel=3, stride=1, expansion=1, channels=16, repeats=1),
    Stage(kernel=3, stride=2, expansion=6, channels=24, repeats=2),
    Stage(kernel=5, stride=2, expansion=6, channels=40, repeats=2),
    Stage(kernel=3, stride=2, expansion=6, channels=80, repeats=3),
    Stage(kernel=5, stride=1, expansion=6, channels=112, repeats=3),
    Stage(kernel=5, stride=2, expansion=6, channels=192, repeats=4),
    Stage(kernel=3, stride=1, expansion=6, channels=320, repeats=1),
)
"""EfficientNet-Lite0 (width and depth multipliers 1.0): stage1 ... stage7."""
LAYER_NAMES = ("stem",) + tuple(f"stage{index + 1}" for index in range(len(STAGES)))
"""The feature maps `EfficientNetLite0.features` can return, input side first."""


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding along one axis: output side ceil(size / stride), the odd pixel after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ConvBatchNorm(nn.Module):
    """Convolution without bias (TensorFlow SAME padding), batch normalisation, then ReLU6 or nothing."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1,
                 activation: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BATCH_NORM_EPS)
        self.kernel, self.stride, self.activation = kernel, stride, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = _same_padding(x.shape[-2], self.kernel, self.stride)
        left, right = _same_padding(x.shape[-1], self.kernel, self.stride)
        out = self.bn(self.conv(F.pad(x, (left, right, top, bottom))))
        return F.relu6(out) if self.activation else out


class InvertedResidual(nn.Module):
    """MBConv without squeeze-excitation: 1x1 expansion, depthwise k x k, linear 1x1 projection, and a residual
    connection where the block keeps resolution and width."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        self.expand = ConvBatchNorm(in_channels, hidden, 1) if expansion != 1 else None
        self.depthwise = ConvBatchNorm(hidden, hidden, kernel, stride=stride, groups=hidden)
        self.project = ConvBatchNorm(hidden, out_channels, 1, activation=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.project(self.depthwise(out))
        return out + x if self.residual else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 on normalised 3-channel images of any side (ImageNet: 224, inputs (x - 0.5) / 0.5)."""

    def __init__(self):
        super().__init__()
        self.stem = ConvBatchNorm(3, STEM_CHANNELS, 3, stride=2)
        blocks, stage_ends, width = [], [], STEM_CHANNELS
        for stage in STAGES:
            for repeat in range(stage.repeats):
                stride = stage.stride if repeat == 0 else 1
                blocks.append(InvertedResidual(width, stage.channels, stage.kernel, stride, stage.expansion))
                width = stage.channels
            stage_ends.append(len(blocks))
        self.blocks = nn.ModuleList(blocks)
        self.stage_ends = tuple(stage_ends)
        self.head = ConvBatchNorm(width, HEAD_CHANNELS, 1)
        self.classifier = nn.Linear(HEAD_CHANNELS, IMAGENET_CLASSES)

    def features(self, x: torch.Tensor, layers: tuple[str, ...]) -> list[torch.Tensor]:
        """The maps named in `layers` (see LAYER_NAMES; in that order), running only the blocks they need."""
        unknown = [name for name in layers if name not in LAYER_NAMES]
        if unknown or not layers:
            raise ValueError(f"layers must be a non-empty tuple of {LAYER_NAMES}, got {layers!r}")
        wanted = {LAYER_NAMES.index(name) for name in layers}
        maps = {0: self.stem(x)}
        out = maps[0]
        for stage, end in enumerate(self.stage_ends, start=1):
            if stage > max(wanted):
                break
            start = 0 if stage == 1 else self.stage_ends[stage - 2]
            for block in self.blocks[start:end]:
                out = block(out)
            maps[stage] = out
        return [maps[LAYER_NAMES.index(name)] for name in layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (N, 1000): all stages, the head, a global average pool and the classifier."""
        out = self.features(x, (LAYER_NAMES[-1],))[0]
        return self.classifier(self.head(out).mean(dim=(2, 3)))


_CHECKPOINT_PARTS = (
    (re.compile(r"^_conv_stem\.(.+)$"), r"stem.conv.\1"),
    (re.compile(r"^_bn0\.(.+)$"), r"stem.bn.\1"),
    (re.compile(r"^_blocks\.(\d+)\._expand_conv\.(.+)$"), r"blocks.\1.expand.conv.\2"),
    (re.compile(r"^_blocks\.(\d+)\._bn0\.(.+)$"), r"blocks.\1.expand.bn.\2"),
    (re.compile(r"^_blocks\.(\d+)\._depthwise_conv\.(.+)$"), r"blocks.\1.depthwise.conv.\2"),
    (re.compile(r"^_blocks\.(\d+)\._bn1\.(.+)$"), r"blocks.\1.depthwise.bn.\2"),
    (re.compile(r"^_blocks\.(\d+)\._project_conv\.(.+)$"), r"blocks.\1.project.conv.\2"),
    (re.compile(r"^_blocks\.(\d+)\._bn2\.(.+)$"), r"blocks.\1.project.bn.\2"),
    (re.compile(r"^_conv_head\.(.+)$"), r"head.conv.\1"),
    (re.compile(r"^_bn1\.(.+)$"), r"head.bn.\1"),
    (re.compile(r"^_fc\.(.+)$"), r"classifier.\1"),
)
"""How the published state dict (the layout of the EfficientNet-PyTorch family) names each module of this file."""


def rename_checkpoint_key(key: str) -> str | None:
    """This module's name for a key of the published state dict, or None for a key it does not know."""
    for pattern, replacement in _CHECKPOINT_PARTS:
        if pattern.match(key):
            return pattern.sub(replacement, key)
    return None
