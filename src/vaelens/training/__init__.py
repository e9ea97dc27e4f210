"""Training: one model or an ensemble, one shared loop, run directories, checkpoints, resume."""

from vaelens.training.checkpoint import CheckpointError
from vaelens.training.loop import TrainingHooks
from vaelens.training.run import RunResult, TrainingDiverged, evaluate
from vaelens.training.rundir import NotARunError, RunDirectory, RunExistsError
from vaelens.training.trainer import train

__all__ = ["CheckpointError", "NotARunError", "RunDirectory", "RunExistsError", "RunResult", "TrainingDiverged",
           "TrainingHooks", "evaluate", "train"]
