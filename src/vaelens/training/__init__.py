"""Training: one model at a time, checkpoints, resume."""

from vaelens.training.checkpoint import CheckpointError
from vaelens.training.trainer import RunExistsError, RunResult, TrainingDiverged, evaluate, resolve_device, train

__all__ = ["CheckpointError", "RunExistsError", "RunResult", "TrainingDiverged", "evaluate", "resolve_device",
           "train"]
