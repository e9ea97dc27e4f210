"""How a run is analysed: one set of options carried from the sweep spec (or the command line) to the run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from vaelens.analysis.sample_size import DEFAULT_IMAGES, check_image_count


@dataclass
class AnalysisOptions:
    enabled: bool = True
    """Analyse the run (a sweep task with False only trains)."""
    images: int | str = DEFAULT_IMAGES
    """Test images encoded (a seeded random subset when the split has more), or "auto": enough that
    log N >= rate + 1 nat, between 2,000 and min(split, 20,000) (vaelens.analysis.sample_size)."""
    quick: bool = True
    """Smaller disentanglement estimates (fewer trees and votes)."""
    disentanglement: bool = True
    """Score disentanglement where the data has ground-truth factors (FactorVAE renders ~10^5 images)."""
    distortion_images: int = 512
    """Encoded images whose reconstructions are scored (MSE, PSNR, SSIM, LPIPS, ...)."""
    seed: int = 0
    """Seed of the image subsets the analysis draws (recorded in analysis.json)."""
    probe: bool = False
    """Run the mechanistic probe under the run's own loss (vaelens.analysis.probe; cost in BENCHMARKS.md)."""
    probe_images: int = 256
    """Encoded images the probe measures (a seeded draw)."""

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
        check_image_count(self.images, "analysis_images")
        for name in ("distortion_images", "probe_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"analysis_{name} must be an integer of at least 2, got {value!r}")
        if not isinstance(self.probe, bool):
            raise ValueError(f"analysis_probe must be true or false, got {self.probe!r}")
        return self
