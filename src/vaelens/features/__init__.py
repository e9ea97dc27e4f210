"""Feature networks for perceptual losses, fitted offline on the data vaelens has.

Pretrained VGG/AlexNet weights cannot be downloaded here, so vaelens fits small conv nets itself
(supervised on ground-truth factors, or self-supervised) and caches them:

    network, metadata = resolve_feature_network("dsprites-supervised")   # fits once, then loads
    distance = feature_distance(x, x_hat, network)                       # vaelens.losses.lpips

Names are imported lazily so that the command line starts without importing torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "FeatureNetwork": "vaelens.features.network",
    "DEFAULT_WIDTHS": "vaelens.features.network",
    "METHODS": "vaelens.features.fit",
    "fit_feature_network": "vaelens.features.fit",
    "RECIPES": "vaelens.features.recipes",
    "DEFAULT_NETWORKS": "vaelens.features.recipes",
    "Recipe": "vaelens.features.recipes",
    "fit_recipe": "vaelens.features.recipes",
    "save_feature_network": "vaelens.features.store",
    "load_feature_network": "vaelens.features.store",
    "resolve_feature_network": "vaelens.features.store",
    "feature_network_path": "vaelens.features.store",
    "cached_feature_networks": "vaelens.features.store",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vaelens.features' has no attribute '{name}'")
