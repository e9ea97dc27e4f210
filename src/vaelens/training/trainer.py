"""Train one beta-VAE: Adam, seeded, resumable, with progress, metrics.jsonl, image grids and checkpoints.

The run directory's format belongs to `rundir.py`, the objects to `setup.build_parts`, the schedule
(log, divergence check, checkpoint, summary) to `loop.py`; this module is the one-model step. On CPU a
resumed run ends with exactly the weights of an uninterrupted one: batches are a pure function of
(step, seed) and the reparameterisation noise comes from a generator whose state is checkpointed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vaelens import config as config_module
from vaelens.config import RunConfig
from vaelens.data import load_dataset
from vaelens.devices import resolve_device
from vaelens.training.graphed import DivergenceWatch, StepRunner
from vaelens.training.loop import TrainingHooks, finish_runs, train_loop
from vaelens.training.memory import check_model_fits
from vaelens.training.run import RunResult, TrainingDiverged, TrainingRun
from vaelens.training.rundir import RunDirectory
from vaelens.training.setup import (
    check_data_fits,
    check_device,
    check_training_config,
    evaluation_subset,
    memory_format,
)


class SingleStepper:
    """One model's step: forward, backward, Adam (one CUDA graph when train.cuda_graph), then the
    discriminator's step on the host. No host synchronisation inside the step."""

    def __init__(self, run: TrainingRun, data, device: torch.device, hooks: TrainingHooks):
        settings = run.config.train
        self.runs, self.run, self.data, self.settings = [run], run, data, settings
        self.graphed = settings.cuda_graph
        self.autocast = settings.bf16 and device.type == "cuda"
        run.objective.perceptual_bf16 = self.autocast
        self.layout = memory_format(settings)
        self.noise_shape = (settings.batch_size, *run.model.latent_shape)
        self.noise_dtype = torch.bfloat16 if self.autocast else torch.float32
        self.watch = DivergenceWatch(run.start_step, device)
        self.runner = (hooks.step_runner or StepRunner)(self._step, capture=self.graphed)
        self.step_index = run.start_step

    def _step(self) -> dict[str, torch.Tensor]:
        """Forward, backward and Adam on the runner's fixed inputs."""
        x, noise = self.runner.inputs["x"], self.runner.inputs["noise"]
        parts = self.run.parts
        parts.optimizer.zero_grad(set_to_none=True)
        # The autocast cache would keep weight casts made during capture, stale on every replay.
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.autocast,
                            cache_enabled=not self.graphed):
            output, mu, logvar = parts.model(x, noise)
        terms = parts.objective(x, output, mu, logvar, self.step_index)
        terms.loss.backward()
        if self.settings.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(parts.trained_parameters, self.settings.grad_clip)
        parts.optimizer.step()
        self.watch.update(terms.loss)
        return {**{key: value.detach() for key, value in terms.scalars().items()},
                "reconstruction": terms.reconstruction}

    def step(self, step: int) -> dict[str, torch.Tensor]:
        # Batches and noise are drawn outside the (possibly captured) step, in the same order as always,
        # so a graphed run sees exactly the data and noise of an eager one.
        x = self.data.batch(step, self.settings.batch_size, self.settings.seed).contiguous(memory_format=self.layout)
        noise = torch.randn(self.noise_shape, generator=self.run.noise, device=x.device, dtype=self.noise_dtype)
        self.runner.feed(x=x, noise=noise)
        self.step_index = step
        outputs = dict(self.runner())
        reconstruction = outputs.pop("reconstruction")
        return {**outputs, **self.run.objective.discriminator_step(x, reconstruction, step)}

    def first_bad_steps(self) -> list[int | None]:
        return [self.watch.first_bad_step()]

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.run.parts.optimizer]

    def keep(self, slots: list[int], step: int) -> None:
        self.runs = [self.runs[slot] for slot in slots]

    def sync_runs(self) -> None:
        """The run trains its own model in place: nothing to bring back."""


def prepare_directory(directory: RunDirectory, config: RunConfig, resume: bool) -> None:
    """Refuse a foreign folder, an existing run without `resume`, a resume with other result settings, and a
    symbolic link among the paths a run writes, renames or prunes."""
    directory.check_usable(resume)
    if directory.path.is_dir():
        directory.check_no_symlinks()
    if resume and directory.is_run:
        directory.check_resumable(config)


def train(config: RunConfig, out_dir: str | Path | None = None, resume: bool = False,
          hooks: TrainingHooks | None = None) -> RunResult:
    """Train the model `config` describes into `out_dir` (default: runs/<config hash>); with `resume`,
    continue from its last good checkpoint. Everything is checked before the directory is touched, and the
    run directory is locked for the whole run: a second writer is refused while this one lives."""
    hooks = hooks or TrainingHooks()
    check_training_config(config)
    directory = RunDirectory(out_dir if out_dir is not None else Path("runs") / config_module.config_hash(config))
    prepare_directory(directory, config, resume)  # a foreign folder is refused before a lock file is written
    device = resolve_device(config.train.device, "train.device")
    if hooks.step_runner is None:
        check_device(config, device)
    data = load_dataset(config.data, split="train").to(device)
    check_data_fits(config, data)
    check_model_fits(config, data.image_shape, device)
    with directory.lock("a training run"):
        # Checked again under the lock: another writer may have started the run since (check-then-act race).
        prepare_directory(directory, config, resume)
        return _train_locked(config, directory, data, device, resume, hooks)


def _train_locked(config: RunConfig, directory: RunDirectory, data, device: torch.device, resume: bool,
                  hooks: TrainingHooks) -> RunResult:
    run = TrainingRun(config, directory, data, device)
    if resume and directory.is_run:
        run.resume_from(directory.latest_good_checkpoint(set_aside=True))
    run.start()
    eval_images, eval_subset = evaluation_subset(config, data)
    stepper = SingleStepper(run, data, device, hooks)
    with run.logging():
        try:
            stats = train_loop(stepper, config.train, run.start_step, eval_images, hooks, config.train.progress,
                               f"train {directory.path.name}")
        except Exception as error:
            run.record_failure(stepper.step_index, error)
            raise
        run.objective.perceptual_bf16 = False  # the summary's evaluation is float32 throughout
        finish_runs(stepper, stats, eval_images, eval_subset)
    if run.diverged:
        raise TrainingDiverged(run.summary["error"])
    return run.result()
