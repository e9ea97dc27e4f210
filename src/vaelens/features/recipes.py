"""Built-in feature networks: a name, and the recipe that fits it on data vaelens generates or ships.

Each recipe is sized so that a preset fitting it on first use keeps the user waiting minutes, not
hours, on a CPU (fit times: BENCHMARKS.md; every fit records its own `fit_seconds`); the held-out
numbers it reaches are recorded in the network's JSON sidecar (and printed by `vaelens fit-features`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vaelens.config import DataConfig
from vaelens.features.fit import fit_feature_network


@dataclass(frozen=True)
class Recipe:
    """How a built-in feature network is fitted."""

    summary: str
    """One line saying what the network learned from what."""
    method: str
    """supervised | denoising | contrastive (see vaelens.features.fit)."""
    data: dict = field(default_factory=dict)
    """DataConfig fields of the training data."""
    steps: int = 1000
    """Optimisation steps."""
    batch_size: int = 64
    """Images per step."""
    lr: float = 1e-3
    """Adam learning rate."""
    seed: int = 0
    """Seed for weights, batch order, noise and augmentations."""
    version: int = 1
    """Bumped when the recipe changes, so networks cached under an older recipe are refitted."""


RECIPES = {
    "dsprites-supervised": Recipe(
        summary="classifies all five dSprites factors (shape, scale, orientation, posX, posY), 1 x 64 x 64",
        method="supervised", data={"name": "dsprites", "subset": 20_000, "image_size": 64}, steps=1500),
    "natural-denoising": Recipe(
        summary="restores noised, block-masked scikit-image photo patches, 3 x 64 x 64",
        method="denoising", data={"name": "natural", "image_size": 64}, steps=1500),
    "natural-contrastive": Recipe(
        summary="SimCLR (NT-Xent, crops + mirror + colour jitter) on scikit-image photo patches, 3 x 64 x 64",
        method="contrastive", data={"name": "natural", "image_size": 64}, steps=1000),
}
DEFAULT_NETWORKS = {"dsprites": "dsprites-supervised", "natural": "natural-denoising"}
"""The built-in network a data set's perceptual loss uses by default. For natural images the denoising
network is preferred: it must keep everything needed to restore an image, while contrastive features
are trained to ignore colour and framing changes that a reconstruction loss should still see."""


def recipe_for(name: str) -> Recipe:
    """The recipe of a built-in network, or a ValueError listing the built-in names."""
    if name not in RECIPES:
        raise ValueError(f"'{name}' is not a built-in feature network; built-in names: {', '.join(RECIPES)}")
    return RECIPES[name]


def fit_recipe(name: str, *, steps: int | None = None, progress: bool = True, device="cpu"):
    """Fit the built-in network `name` with its recipe (`steps` overrides the recipe's, e.g. in tests).

    Returns (network, metadata) as `fit_feature_network`, with a "recipe" entry added.
    """
    recipe = recipe_for(name)
    used_steps = recipe.steps if steps is None else steps
    network, metadata = fit_feature_network(DataConfig(**recipe.data), recipe.method, used_steps,
                                            batch_size=recipe.batch_size, lr=recipe.lr, seed=recipe.seed,
                                            device=device, progress=progress)
    metadata["recipe"] = {"name": name, "version": recipe.version, "summary": recipe.summary,
                          "recipe_steps": recipe.steps, "steps_overridden": used_steps != recipe.steps}
    return network, metadata
