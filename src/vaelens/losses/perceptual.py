"""Perceptual reconstruction terms: LPIPS (the `lpips` package), an uncalibrated LPIPS-style distance over the
ImageNet EfficientNet-Lite0 (torchvision-free, offline) and LPIPS-style distances over vaelens's fitted networks.

The feature networks are frozen, in eval mode and kept out of the objective's module tree, so they
are neither trained nor written into run checkpoints; gradients still flow through them to x̂.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from vaelens.distances.efficientnet import (
    DISTANCE_NAME,
    FEATURE_LAYERS,
    NETWORK_NAME,
    WEIGHTS_PACKAGE,
    WEIGHTS_SHA256,
    WEIGHTS_VERSION,
    build_efficientnet_lite0,
    efficientnet_distance,
)
from vaelens.distances.features import feature_distance
from vaelens.distances.lpips import (
    LPIPS_NETS,
    CorruptBackboneError,
    MissingBackboneError,
    build_lpips,
    lpips_between,
    lpips_metric_name,
)
from vaelens.features.store import load_feature_network, resolve_feature_network


class PerceptualTerm:
    """A per-image perceptual distance d(x, x̂) -> (B,), with a name that says which network it used."""

    def __init__(self, name: str, distance, description: dict):
        self.name = name
        self._distance = distance
        self.description = description

    def __call__(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        return self._distance(x, x_hat)

    def describe(self) -> dict:
        return {"perceptual": self.name, **self.description}


def _lpips_term(net: str, random_backbone: bool, device) -> PerceptualTerm:
    try:
        shared = build_lpips(net, pnet_rand=random_backbone)
    except (MissingBackboneError, CorruptBackboneError) as error:
        raise type(error)(f"{error} To train offline instead, use loss.perceptual={DISTANCE_NAME} (the ImageNet "
                          "EfficientNet-Lite0 installed with vaelens; the sd-vae-offline preset uses it).") from error
    # build_lpips caches one shared module; a private copy can move to this run's device.
    model = copy.deepcopy(shared).to(device).eval()

    def distance(x, x_hat):
        return lpips_between(model, x, x_hat)

    description = {"network": f"lpips-{net}", "backbone": "random (tests only)" if random_backbone else "ImageNet"}
    return PerceptualTerm(lpips_metric_name(net, random_backbone), distance, description)


def _efficientnet_term(device) -> PerceptualTerm:
    # Built (and its weights file checked) here, before training, so a missing or damaged file fails up front.
    network = build_efficientnet_lite0(device)

    def distance(x, x_hat):
        return efficientnet_distance(x, x_hat, FEATURE_LAYERS, network)

    description = {"network": f"{NETWORK_NAME} (ImageNet, torchvision-free)",
                   "distance": "uncalibrated LPIPS-style baseline (unit-normalised channels, all weighted 1)",
                   "layers": list(FEATURE_LAYERS), "input": "(x - 0.5) / 0.5, grayscale repeated to 3 channels",
                   "weights": f"{WEIGHTS_PACKAGE}=={WEIGHTS_VERSION}", "weights_sha256": WEIGHTS_SHA256}
    return PerceptualTerm(DISTANCE_NAME, distance, description)


def _feature_term(source: str, channels: int, device) -> PerceptualTerm:
    if Path(source).expanduser().suffix == ".safetensors":
        network, metadata = load_feature_network(str(Path(source).expanduser()), device=device)
    else:
        network, metadata = resolve_feature_network(source, device=device)
    if metadata["in_channels"] != channels:
        raise ValueError(f"feature network '{source}' takes {metadata['in_channels']}-channel images but the data "
                         f"has {channels} channels; fit one on this data (vaelens fit-features) or set data.grayscale")

    def distance(x, x_hat):
        return feature_distance(x, x_hat, network)

    return PerceptualTerm(f"features:{source}", distance,
                          {"network": source, "fitted_with": metadata.get("method"),
                           "held_out": metadata.get("held_out")})


def build_perceptual(spec: str, random_backbone: bool, image_shape, device) -> PerceptualTerm:
    """The term named by loss.perceptual: lpips-<net>, effnet-lite0 or features:<name or .safetensors file>."""
    channels = image_shape[0]
    if channels not in (1, 3):
        raise ValueError(f"perceptual losses take 1- or 3-channel images, the data has {channels}")
    if spec.startswith("lpips-") and spec[len("lpips-"):] in LPIPS_NETS:
        return _lpips_term(spec[len("lpips-"):], random_backbone, device)
    if spec == DISTANCE_NAME:
        return _efficientnet_term(device)
    if spec.startswith("features:") and len(spec) > len("features:"):
        return _feature_term(spec[len("features:"):], channels, device)
    raise ValueError(f"unknown loss.perceptual '{spec}'; use one of "
                     f"{', '.join('lpips-' + n for n in LPIPS_NETS)}, {DISTANCE_NAME}, "
                     "or features:NAME / features:FILE.safetensors")
