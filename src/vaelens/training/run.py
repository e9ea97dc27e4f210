"""One run being trained: its directory, model, objective, optimisers and noise, and the records it writes.

The single trainer trains one `TrainingRun`, the ensemble trainer K of them; both write the same
checkpoints, images and summaries through these methods, so their run directories are identical in form.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

import vaelens
from vaelens.config import RunConfig
from vaelens.errors import VaelensError
from vaelens.losses.calibration import calibration_images
from vaelens.losses.objective import objective_constant
from vaelens.models import VAE
from vaelens.posterior import DiagonalGaussian
from vaelens.training.checkpoint import restore
from vaelens.training.convergence import convergence
from vaelens.training.images import save_image_grids
from vaelens.training.rundir import GoodCheckpoint, RunDirectory, logger
from vaelens.training.setup import RunParts, build_parts, dry_run
from vaelens.training.tensorboard import TensorBoardLog

FINAL_METRICS = ("loss", "rate", "distortion", "mean_distortion")
"""Terms of the finished run's evaluation (nats) that TensorBoard shows as final/<term>."""
DIVERGENCE_ADVICE = "Lower train.lr, set train.grad_clip, or check the data for NaN/Inf values."


class TrainingDiverged(VaelensError, RuntimeError):
    """The loss (or the weights) became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class RunResult:
    run_dir: Path
    """The run directory."""
    config: RunConfig
    """The fully resolved configuration the run used."""
    model: VAE
    """The trained model (eval mode)."""
    objective: torch.nn.Module
    """The objective, with any learned parameters (e.g. a learned Gaussian sigma)."""
    summary: dict
    """The contents of summary.json."""


@torch.no_grad()
def evaluate(model: VAE, objective, images: torch.Tensor, generator: torch.Generator) -> dict:
    """Mean loss terms over `images` with one posterior sample each (nats)."""
    model.eval()
    output_mu, mu, logvar = model(images)
    noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    output = model.decode(DiagonalGaussian(mu, logvar).sample(noise))
    terms = objective(images, output, mu, logvar)
    model.train()
    return {"loss": float(terms.loss), "distortion": float(terms.distortion), "rate": float(terms.rate),
            "mean_distortion": float(objective(images, output_mu, mu, logvar).distortion),
            "kl_per_unit": [float(v) for v in terms.kl_per_unit], "num_images": int(images.shape[0])}


class TrainingRun:
    """A run's objects (built by `build_parts`, seeded by train.seed), its noise generator and its files."""

    def __init__(self, config: RunConfig, directory: RunDirectory, data, device: torch.device):
        self.config, self.directory, self.device = config, directory, device
        self.seed = config.train.seed
        self.parts: RunParts = build_parts(config, data.image_shape, device)
        if self.objective.needs_calibration():
            self.objective.calibrate(calibration_images(data))
        dry_run(self.parts, data)
        self.noise = torch.Generator(device).manual_seed(self.seed + 1)
        self.context = {"vaelens_version": vaelens.__version__, "torch_version": torch.__version__,
                        "objective": self.objective.describe(), "data": data.describe()}
        self.start_step = 0
        self.notes: list[str] = []
        self.summary: dict | None = None
        self._metrics = self._tensorboard = None

    @property
    def model(self) -> VAE:
        return self.parts.model

    @property
    def objective(self):
        return self.parts.objective

    @property
    def diverged(self) -> bool:
        return self.summary is not None and self.summary.get("status") == "diverged"

    def resume_from(self, checkpoint: GoodCheckpoint | None) -> None:
        """Load a verified checkpoint (weights, optimiser states, noise generator), or start at step 0."""
        if checkpoint is None:
            return
        restore(checkpoint.tensors, checkpoint.meta, self.parts.modules, self.parts.optimizers, {"noise": self.noise})
        self.start_step = checkpoint.step
        self.notes = list(checkpoint.skipped)
        if self.notes:
            logger.warning("%s: %s; resuming from step %d", self.directory.path, "; ".join(self.notes), checkpoint.step)

    def start(self) -> None:
        """Write the directory's config and cut its log back to the step training starts from."""
        self.directory.start(self.config)
        self.directory.trim_metrics(self.start_step)

    @contextmanager
    def logging(self):
        """Keep metrics.jsonl (and the TensorBoard events, when train.tensorboard) open for `log`."""
        with self.directory.metrics_log() as metrics:
            self._metrics = metrics
            if self.config.train.tensorboard:
                self._tensorboard = TensorBoardLog(self.directory.tensorboard_folder)
            try:
                yield self
            finally:
                if self._tensorboard is not None:
                    self._tensorboard.close()
                self._metrics = self._tensorboard = None

    def log(self, record: dict) -> None:
        """One metrics.jsonl record (and its scalars in TensorBoard)."""
        self._metrics.write(record)
        if self._tensorboard is not None:
            self._tensorboard.scalars(record)

    def save_checkpoint(self, step: int, eval_images: torch.Tensor) -> None:
        self.directory.save_checkpoint(step, self.parts.modules, self.parts.optimizers, {"noise": self.noise},
                                       self.context)
        grids = save_image_grids(self.model, self.objective, eval_images, self.directory.image_folder, self.seed)
        if self._tensorboard is not None:
            self._tensorboard.images(step, grids)

    def weights_finite(self) -> bool:
        """Whether every weight is finite (a finite loss can still come with a non-finite gradient)."""
        flags = [torch.isfinite(p).all() for p in self.parts.trained_parameters]
        return bool(torch.stack(flags).all()) if flags else True

    def _kept_checkpoint(self) -> str:
        steps = self.directory.checkpoint_steps()
        return (f"checkpoint step_{steps[-1]:09d} is kept and holds no weights updated with it" if steps
                else "no checkpoint was written yet")

    def record_divergence(self, step: int, values: dict[str, float], first_seen: int, graphed: bool) -> None:
        """Write the diverged summary.json: `step` is the first step whose loss was not finite, `first_seen`
        the step whose check found it, `values` the loss terms read then."""
        bad = ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v)) or "a non-finite loss"
        if graphed:
            what = (f"training diverged at step {step} (a non-finite loss, found at step {first_seen} by the "
                    f"CUDA-graph path, which checks at log and checkpoint steps; at step {first_seen}: {bad})")
        elif bad == "a non-finite loss":
            what = f"training diverged by step {step}: the weights became non-finite (a non-finite gradient)"
        else:
            found = f" (found at step {first_seen}, the next log or checkpoint step)" if first_seen > step + 1 else ""
            what = f"training diverged at step {step}: {bad}{found}"
        self._write_end("diverged", step, f"{what}; {self._kept_checkpoint()}. {DIVERGENCE_ADVICE}")

    def record_failure(self, step: int, error: BaseException) -> None:
        """Write a failed summary.json naming the error (the run can still be resumed). Best effort: when
        the failure is the disk itself (full, gone), the error that is already propagating says it all."""
        try:
            self._write_end("failed", step, f"{type(error).__name__}: {error}")
        except OSError:
            pass

    def _write_end(self, status: str, step: int, message: str) -> None:
        self.summary = {"status": status, "step": step, "error": message,
                        "weighting_convention": self.context["objective"]["convention"], **self.context}
        self.directory.write_summary(self.summary)

    def finish(self, seconds: float, timed_steps: int, eval_images: torch.Tensor, eval_subset: dict,
               extra: dict | None = None) -> dict:
        """Write the finished summary.json (evaluation in float32 on `eval_images`) and return it."""
        settings = self.config.train
        images_per_s = timed_steps * settings.batch_size / seconds if timed_steps else None
        generator = torch.Generator(self.device).manual_seed(self.seed + 2)
        self.summary = {"status": "finished", "steps": settings.steps, "resumed_from": self.start_step,
                        "weighting_convention": self.context["objective"]["convention"], **self.context,
                        "images_per_s": images_per_s, "train_seconds_this_session": seconds,
                        "eval": {**evaluate(self.model, self.objective, eval_images, generator), **eval_subset}}
        origin = objective_constant(self.config.loss, tuple(self.context["data"]["image_shape"]))
        self.summary["convergence"] = convergence(self.directory.read_metrics(), settings.steps, origin=origin)
        if self.objective.calibrations:
            self.summary["calibration"] = {name: result.describe()
                                           for name, result in self.objective.calibrations.items()}
        if self.notes:
            self.summary["checkpoint_fallback"] = self.notes
        self.summary.update(extra or {})
        self.directory.write_summary(self.summary)
        if self._tensorboard is not None:
            self._tensorboard.hyperparameters(self.config)
            evaluation = self.summary["eval"]
            self._tensorboard.final_metrics({key: evaluation[key] for key in FINAL_METRICS}, settings.steps, "final")
        return self.summary

    def result(self) -> RunResult:
        self.model.eval()
        return RunResult(self.directory.path, self.config, self.model, self.objective, self.summary)
