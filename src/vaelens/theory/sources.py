"""Inputs of `vaelens theory`: sources with a chosen spectrum, small image vectors, perceptual metrics.

The perceptual metric G is the dataset-averaged pull-back metric E_x J^T W J of an LPIPS-style
feature distance (`loss_metric` conventions: d(x, x + delta) ≈ delta^T G delta), rescaled so that
its mean eigenvalue is 1 (trace n). That puts it in the units of the pixel metric I: with it,
w = 1 in the additive metric I + w G adds as much average curvature as the pixel term has, and the
convex metric (1 - a) I + a G keeps the average curvature fixed and only redistributes it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vaelens.data.natural import load_natural
from vaelens.distances.features import feature_distance
from vaelens.features import load_feature_network, resolve_feature_network
from vaelens.features.network import FeatureNetwork
from vaelens.sampling import random_subset
from vaelens.theory.metric import dataset_metric

CONVENTION_METRICS = {
    "pixel": "M = I (squared error only)",
    "additive": "M = I + w G (d_pix + w d_perc: the perceptual term is added)",
    "convex": "M = (1 - a) I + a G ((1 - a) d_pix + a d_perc: the total weight stays fixed)",
}
RANDOM_FEATURES = "random"


def parse_spectrum(text: str, dimension: int) -> np.ndarray:
    """Eigenvalues (dimension,), descending, from 'power:ALPHA' (lambda_k = k^-ALPHA, lambda_1 = 1)
    or a comma-separated list of `dimension` positive numbers."""
    text = str(text).strip()
    if text.startswith("power:"):
        try:
            alpha = float(text[len("power:"):])
        except ValueError as error:
            raise ValueError(f"spectrum '{text}': power:ALPHA needs a number ALPHA, e.g. power:2") from error
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"spectrum '{text}': ALPHA must be a non-negative finite number")
        return np.arange(1, dimension + 1, dtype=np.float64) ** -alpha
    try:
        values = np.array([float(part) for part in text.split(",")], dtype=np.float64)
    except ValueError as error:
        raise ValueError(f"spectrum '{text}' must be power:ALPHA or a comma-separated list of numbers") from error
    if values.size != dimension or not np.all(np.isfinite(values)) or values.min() <= 0:
        raise ValueError(f"spectrum '{text}' must list {dimension} positive numbers (one per pixel of the "
                         f"{dimension}-dimensional source), got {values.size}")
    return np.sort(values)[::-1]


def covariance_with_spectrum(eigenvalues: np.ndarray, seed: int) -> np.ndarray:
    """Q diag(eigenvalues) Q^T with a seeded Haar-random rotation Q, so the eigenbasis is not the pixels'."""
    dimension = len(eigenvalues)
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((dimension, dimension)))
    q = q * np.sign(np.diag(r))
    covariance = (q * eigenvalues) @ q.T
    return 0.5 * (covariance + covariance.T)


def natural_patch_images(side: int, count: int, seed: int) -> torch.Tensor:
    """Grayscale natural-image patches (the `natural` data set's training photos) averaged down to
    side x side: (N, 1, side, side) float32 in [0, 1]; a seeded subset of `count` when there are more."""
    from types import SimpleNamespace

    if side > 32 or 32 % side:
        raise ValueError(f"image side must divide 32 (natural patches are averaged down from 32 x 32), got {side}")
    config = SimpleNamespace(name="natural", path=None, subset=None, image_size=32, grayscale=True,
                             test_fraction=0.0, seed=seed, npz_key="images")
    images = load_natural(config, "train").all_images()
    images = images[random_subset(len(images), count, seed)]
    return F.avg_pool2d(images, 32 // side).contiguous()


def feature_network(spec: str, channels: int, side: int, seed: int):
    """The feature network whose Jacobian defines G: 'random' (a seeded, untrained vaelens
    FeatureNetwork with widths 16, 32) or a fitted one by name / .safetensors file."""
    if spec == RANDOM_FEATURES:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = FeatureNetwork(channels, side, widths=(16, 32)).double().eval()
        return network, {"network": "random FeatureNetwork(widths=(16, 32)), untrained", "seed": seed}
    loader = load_feature_network if spec.endswith(".safetensors") else resolve_feature_network
    network, metadata = loader(spec)
    if metadata["in_channels"] != channels:
        raise ValueError(f"feature network '{spec}' takes {metadata['in_channels']}-channel images, the theory "
                         f"sources have {channels}")
    return network.double().eval(), {"network": spec, "fitted_with": metadata.get("method")}


def perceptual_metric(images: torch.Tensor, network) -> tuple[np.ndarray, float]:
    """(G normalised to trace n, the raw trace) of the feature distance of `network` over `images`."""
    for parameter in network.parameters():
        parameter.requires_grad_(False)

    def loss(x, x_hat):
        return feature_distance(x, x_hat, network)

    metric = dataset_metric(loss, images.double(), chunk_size=16).numpy()
    trace = float(np.trace(metric))
    if not trace > 0:
        raise ValueError("the feature network's metric is zero on these images (dead ReLUs?); try another "
                         "--features network or seed")
    return metric * (metric.shape[0] / trace), trace


def convention_metrics(perceptual: np.ndarray, perceptual_weight: float, neural_fraction: float) -> dict:
    """The distortion metric of each convention for the normalised perceptual metric G."""
    if not perceptual_weight > 0:
        raise ValueError(f"perceptual weight w must be positive, got {perceptual_weight}")
    if not 0 < neural_fraction < 1:
        raise ValueError(f"neural fraction a must lie in (0, 1) (a = 1 drops the pixel term and leaves a "
                         f"singular metric), got {neural_fraction}")
    identity = np.eye(perceptual.shape[0])
    return {"pixel": identity, "additive": identity + perceptual_weight * perceptual,
            "convex": (1 - neural_fraction) * identity + neural_fraction * perceptual}
