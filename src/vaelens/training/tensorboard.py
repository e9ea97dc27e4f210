"""An optional TensorBoard view of a run: every metrics.jsonl term as a scalar, image grids at checkpoints.

Off by default (train.tensorboard); needs the `tensorboard` package (`pip install 'vaelens[tensorboard]'`).
Events go to RUN_DIR/tensorboard/, so `tensorboard --logdir SWEEP_DIR` shows every run of a sweep.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

INSTALL_HINT = "train.tensorboard=true needs the tensorboard package: pip install 'vaelens[tensorboard]'"


def check_available() -> None:
    """Raise a clear error (before any run directory is written) when tensorboard is not installed."""
    try:
        import tensorboard  # noqa: F401
    except ImportError as error:
        raise ValueError(f"{INSTALL_HINT} (or set train.tensorboard=false)") from error


class TensorBoardLog:
    """A SummaryWriter on one run's tensorboard/ folder."""

    def __init__(self, folder: Path):
        check_available()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))

    def scalars(self, record: dict) -> None:
        """One metrics.jsonl record: each finite number under train/<key> at its step."""
        step = record["step"]
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(f"train/{key}", value, step)
        self.writer.flush()

    def images(self, step: int, grids: dict[str, torch.Tensor]) -> None:
        """The checkpoint's image grids (reconstructions: originals then reconstructions; prior samples)."""
        for name, images in grids.items():
            self.writer.add_images(name, images.detach().float().clamp(0, 1).cpu(), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
