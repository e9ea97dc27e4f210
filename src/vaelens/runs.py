"""Load a finished (or interrupted) run directory back: model, objective, config, summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vaelens import config as config_module
from vaelens.config import RunConfig
from vaelens.io import read_json
from vaelens.losses import build_objective
from vaelens.models import VAE, build_model
from vaelens.training.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, restore


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


def load_run(path: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild the model of a run from config.yaml and its newest checkpoint (safetensors only)."""
    run_dir = Path(path).expanduser()
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir} is not a vaelens run directory (no config.yaml); "
                                "give the --out directory of a `vaelens train` run")
    config = config_module.from_dict(config_module.load_yaml(run_dir / "config.yaml"))
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    if not checkpoints:
        raise CheckpointError(f"{run_dir / 'checkpoints'} holds no complete checkpoint; "
                              "the run stopped before its first one: train it again")
    tensors, meta = load_checkpoint(checkpoints[-1])
    image_shape = tuple(meta["data"]["image_shape"])
    model = build_model(config.model, image_shape)
    objective = build_objective(config.loss, image_shape, model)
    restore(tensors, meta, {"model": model, "objective": objective})
    summary_path = run_dir / "summary.json"
    summary = read_json(summary_path) if summary_path.is_file() else None
    return LoadedRun(run_dir, config, model.to(device).eval(), objective.to(device), meta["step"], summary)
