"""An optional TensorBoard view of a run: every metrics.jsonl term as a scalar, image grids at checkpoints, and
the run's hyperparameters with its final metrics for TensorBoard's HPARAMS tab.

Off by default (train.tensorboard); needs the `tensorboard` package (`pip install 'vaelens[tensorboard]'`).
Events go to RUN_DIR/tensorboard/, so `tensorboard --logdir SWEEP_DIR` shows every run of a sweep, and its
HPARAMS tab filters and sorts them by beta, seed, weighting convention and loss family. A finished run adds
its final evaluation (final/loss, final/rate, final/distortion, final/mean_distortion, nats, at the last step);
its analysis adds every number of analysis.json as analysis/<key> (at the checkpoint step it measured).
Each run writes only its own session (no experiment summary), so TensorBoard builds the table from all the
runs it finds, with every scalar tag as a metric column.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from vaelens.config import RunConfig
from vaelens.losses.families import convention_label, loss_family

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

    def hyperparameters(self, config: RunConfig) -> None:
        """The run's hyperparameters (run_hyperparameters) as its HPARAMS session."""
        from torch.utils.tensorboard.summary import hparams

        _, session_start, session_end = hparams(run_hyperparameters(config), {})
        self.writer.file_writer.add_summary(session_start)
        self.writer.file_writer.add_summary(session_end)
        self.writer.flush()

    def final_metrics(self, metrics: dict, step: int, prefix: str) -> None:
        """Each finite number of `metrics` (booleans excepted) as the scalar <prefix>/<key> at `step`."""
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{key}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def run_hyperparameters(config: RunConfig) -> dict:
    """What a sweep varies and the report groups by: beta, seed, weighting convention (learned sigma marked, as in
    results.csv), loss family; with the data set, its image size, the model and the pixel likelihood."""
    return {"beta": float(config.loss.beta), "seed": int(config.train.seed),
            "convention": convention_label(config.loss.convention, config.loss.likelihood),
            "family": loss_family(config), "dataset": config.data.name, "image_size": int(config.data.image_size),
            "model": config.model.name, "likelihood": config.loss.likelihood}
