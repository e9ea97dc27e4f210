"""Feature networks for perceptual losses, fitted offline on the data vaelens has.

Pretrained VGG/AlexNet weights cannot be downloaded here, so vaelens fits small conv nets itself
(supervised on ground-truth factors, or self-supervised) and caches them:

    network, metadata = resolve_feature_network("dsprites-supervised")   # fits once, then loads
    distance = feature_distance(x, x_hat, network)                       # vaelens.distances.features

Names are imported lazily so that the command line starts without importing torch.
"""

from __future__ import annotations

from vaelens.lazy import exported_names, lazy_getattr

_MODULES = {
    "vaelens.features.network": ("FeatureNetwork", "DEFAULT_WIDTHS"),
    "vaelens.features.fit": ("METHODS", "fit_feature_network"),
    "vaelens.features.recipes": ("RECIPES", "DEFAULT_NETWORKS", "Recipe", "fit_recipe"),
    "vaelens.features.store": (
        "save_feature_network", "load_feature_network", "resolve_feature_network", "feature_network_path",
        "cached_feature_networks",
    ),
}

__all__ = exported_names(_MODULES)


__getattr__ = lazy_getattr(__name__, _MODULES)
