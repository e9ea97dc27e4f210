"""How a run is analysed: one set of options carried from the sweep spec (or the command line) to the run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class AnalysisOptions:
    enabled: bool = True
    """Analyse the run (a sweep task with False only trains)."""
    images: int = 2000
    """Test images encoded (a seeded random subset when the split has more)."""
    quick: bool = True
    """Smaller disentanglement estimates (fewer trees and votes)."""
    disentanglement: bool = True
    """Score disentanglement where the data has ground-truth factors (FactorVAE renders ~10^5 images)."""
    distortion_images: int = 512
    """Encoded images whose reconstructions are scored (MSE, PSNR, SSIM, LPIPS, ...)."""
    seed: int = 0
    """Seed of the image subsets the analysis draws (recorded in analysis.json)."""

    @classmethod
    def from_mapping(cls, values: dict) -> AnalysisOptions:
        """Options from a mapping of field names; an unknown name is a ValueError naming the valid ones."""
        valid = [item.name for item in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ValueError(f"unknown analysis option(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
        return cls(**values)

    def check(self) -> AnalysisOptions:
        """Raise a ValueError naming a nonsensical option as a sweep spec spells it; returns the options."""
        for name in ("images", "distortion_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"analysis_{name} must be an integer of at least 2, got {value!r}")
        return self
