"""Load a finished (or interrupted) run directory back: model, objective, config, summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vaelens.config import RunConfig
from vaelens.models import VAE
from vaelens.training.checkpoint import CheckpointError, load_checkpoint, restore
from vaelens.training.rundir import RunDirectory
from vaelens.training.setup import build_parts


@dataclass
class LoadedRun:
    run_dir: Path
    """The run directory."""
    config: RunConfig
    """The configuration saved with the run."""
    model: VAE
    """The model with the newest checkpoint's weights, in eval mode."""
    objective: torch.nn.Module
    """The objective with its learned parameters (if any)."""
    step: int
    """Training step of the loaded checkpoint."""
    summary: dict | None
    """summary.json, or None for a run that has not finished."""

    @property
    def status(self) -> str:
        """finished | diverged | failed | incomplete (see vaelens.training.rundir)."""
        return RunDirectory(self.run_dir).status()


def committed_steps(directory: RunDirectory) -> list[int]:
    """The steps of a run's committed checkpoints, oldest first; a CheckpointError when it has none."""
    steps = directory.checkpoint_steps()
    if not steps:
        raise CheckpointError(f"{directory.checkpoint_folder} holds no complete checkpoint; "
                              "the run stopped before its first one: train it again")
    return steps


def load_run(path: str | Path, device: str | torch.device = "cpu", step: int | None = None) -> LoadedRun:
    """Rebuild the model of a run from config.yaml and its newest checkpoint (safetensors only), or the
    checkpoint of `step` when given.

    A newest checkpoint that fails verification is an error, not a silent fallback to older weights
    than the summary describes: the message names the earlier intact checkpoint, which
    `vaelens train --resume` continues from."""
    directory = RunDirectory(path)
    config = directory.read_config()
    steps = committed_steps(directory)
    if step is not None and step not in steps:
        raise CheckpointError(f"{directory.checkpoint_folder} has no checkpoint of step {step}; it has steps "
                              f"{', '.join(map(str, steps))}")
    try:
        tensors, meta = load_checkpoint(directory.checkpoint_path(steps[-1] if step is None else step))
    except CheckpointError as error:
        good = directory.latest_good_checkpoint()
        hint = f"; step {good.step} is intact and `vaelens train --resume` continues from it" if good else ""
        raise CheckpointError(f"{error}{hint}") from error
    parts = build_parts(config, tuple(meta["data"]["image_shape"]), "cpu", training=False)
    restore(tensors, meta, parts.modules)
    return LoadedRun(directory.path, config, parts.model.to(device).eval(), parts.objective.to(device),
                     meta["step"], directory.read_summary())
