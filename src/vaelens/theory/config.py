"""Settings of `vaelens theory`: a dataclass with a docstring per field (they document its command line too)."""

from __future__ import annotations

from dataclasses import dataclass, field

SOURCES = ("gaussian", "natural")
"""The sources `vaelens theory` can compare on."""


@dataclass
class TheoryConfig:
    """Settings of one `vaelens theory` comparison."""

    sources: list[str] = field(default_factory=lambda: list(SOURCES))
    """Which sources to run: gaussian (chosen spectrum) and/or natural (image patches)."""
    side: int = 8
    """Images are side x side, one channel: n = side^2 dimensions."""
    spectrum: str = "power:2"
    """Gaussian source eigenvalues: power:ALPHA (lambda_k = k^-ALPHA) or n comma-separated numbers."""
    num_samples: int = 2048
    """Training vectors per source (Gaussian draws, natural patches)."""
    latent_dim: int = 16
    """Latent units of the linear VAE."""
    betas: list[float] | None = None
    """KL weights; None: 5 per source, theta / lambda_1 log-spaced from 0.5 to 0.02 (pixel metric)."""
    sigma: float = 0.1
    """Gaussian-likelihood sigma: scale 1 / (2 sigma^2), water level theta = beta sigma^2."""
    perceptual_weight: float = 1.0
    """w of the additive metric I + w G (G normalised to mean eigenvalue 1)."""
    neural_fraction: float = 0.5
    """a of the convex metric (1 - a) I + a G."""
    features: str = "random"
    """Feature network of G: random (seeded, untrained) or a fitted network name / .safetensors file."""
    metric_images: int = 64
    """Training vectors the perceptual metric is averaged over."""
    steps: int = 3000
    """Adam steps per linear VAE (full batch)."""
    lr: float = 0.02
    """Adam learning rate."""
    seed: int = 0
    """Seed of the sources, the feature network and training."""
    progress: bool = True
    """Show a progress bar over the runs."""
