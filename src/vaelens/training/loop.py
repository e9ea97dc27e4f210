"""The training loop shared by the single trainer and the ensemble: step, log, check, checkpoint, finish.

A `Stepper` owns how one step runs (one model, or K stacked members) and the live runs in slot order;
the loop owns the schedule. Divergence is checked where the loop reads values back anyway (log and
checkpoint steps): each step records a non-finite loss on the device (`DivergenceWatch`) without a
host sync, and the loop then names the first bad step, stops that run (an ensemble goes on with the
others) and never checkpoints weights updated with it; weights are also checked for finiteness
before every checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from tqdm.auto import tqdm

from vaelens.training.convergence import INTERVAL_KEY
from vaelens.training.run import TrainingRun
from vaelens.training.schedule import set_learning_rate


@dataclass
class TrainingHooks:
    """Optional callbacks into the loop (progress readers, benchmarks, tests)."""

    on_step: Callable[[int], None] | None = None
    """Called after every step with the number of steps done, once that step's log and checkpoint are written."""
    on_log: Callable[[int, list[dict]], None] | None = None
    """Called at every log step with the metrics.jsonl records written (one per live run)."""
    on_checkpoint: Callable[[int], None] | None = None
    """Called after the checkpoints of a step are committed."""
    step_runner: Callable | None = None
    """Builds the step runner, as `StepRunner(step, capture=...)` does (the default); a test can run the
    CUDA-graph path's bookkeeping on a CPU with an eager runner that keeps fixed input buffers."""


class Stepper(Protocol):
    """How one optimisation step runs for the live runs (see SingleStepper and EnsembleStepper)."""

    runs: list[TrainingRun]
    """The live runs, in slot order (the order of their values in the step's outputs)."""
    graphed: bool
    """Whether the step is captured in a CUDA graph (divergence messages say so)."""

    def step(self, step: int) -> dict[str, torch.Tensor]:
        """Draw step `step`'s batches and noise, take the step; scalar terms, shape () or (K,)."""

    def first_bad_steps(self) -> list[int | None]:
        """Per live run, the first step whose loss was not finite (None: all finite)."""

    def keep(self, slots: list[int], step: int) -> None:
        """Go on with the runs in `slots` only (the others diverged at or before `step`)."""

    def sync_runs(self) -> None:
        """Bring each run's own model and optimiser up to date (before checkpoints and at the end)."""

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """The autoencoder optimisers the step uses (train.lr_schedule sets their rate before each step)."""


@dataclass
class LoopStats:
    seconds: float
    """Wall time of the steps taken in this session."""
    steps: int
    """Steps taken in this session."""


class IntervalMean:
    """Each live run's mean objective over the steps since the last log record, summed on the device (no
    host sync). One batch's loss is a noisy estimate of the objective; the interval mean is what the
    convergence figure reads. Runs dropped in between (diverged members of an ensemble) are dropped here
    too, by identity."""

    def __init__(self):
        self.total: torch.Tensor | None = None
        self.count = 0
        self.runs: list = []

    def _align(self, runs: list) -> None:
        if self.total is not None and [id(run) for run in runs] != [id(run) for run in self.runs]:
            positions = {id(run): slot for slot, run in enumerate(self.runs)}
            index = torch.as_tensor([positions[id(run)] for run in runs], dtype=torch.int64)
            self.total = self.total[index.to(self.total.device)]
        self.runs = list(runs)

    def add(self, loss: torch.Tensor, runs: list) -> None:
        """Add one step's loss (one value per run in `runs`, the live runs that took the step)."""
        self._align(runs)
        loss = loss.detach().float().reshape(-1)
        self.total = loss.clone() if self.total is None else self.total + loss  # clone: a graph's buffer is reused
        self.count += 1

    def take(self, runs: list) -> torch.Tensor:
        """The means of the runs in `runs` (a subset of those added), and start a new interval."""
        self._align(runs)
        mean = self.total / self.count
        self.total, self.count = None, 0
        return mean


def _per_run(outputs: dict[str, torch.Tensor]) -> dict[str, list[float]]:
    """Every output as a list with one float per live run, read back in one transfer."""
    keys = list(outputs)
    table = torch.stack([outputs[key].detach().float().reshape(-1) for key in keys]).tolist() if keys else []
    return dict(zip(keys, table))


def _drop_diverged(stepper: Stepper, outputs: dict[str, torch.Tensor], done: int) -> dict[str, torch.Tensor]:
    """Record and drop the runs whose loss turned non-finite; returns the outputs of the survivors."""
    bad_steps = stepper.first_bad_steps()
    if all(bad is None for bad in bad_steps):
        return outputs
    values = _per_run({key: outputs[key] for key in ("loss", "distortion", "rate")})
    for slot, bad in enumerate(bad_steps):
        if bad is not None:
            stepper.runs[slot].record_divergence(bad, {key: column[slot] for key, column in values.items()}, done,
                                                 stepper.graphed)
    return _keep(stepper, outputs, [slot for slot, bad in enumerate(bad_steps) if bad is None], done)


def _keep(stepper: Stepper, outputs: dict, slots: list[int], done: int) -> dict:
    if len(slots) == len(stepper.runs):
        return outputs
    stepper.keep(slots, done)
    if not slots:
        return {}
    index = torch.as_tensor(slots, dtype=torch.int64)
    return {key: value.reshape(-1)[index.to(value.device)] for key, value in outputs.items()}


def checkpoint_runs(stepper: Stepper, done: int, eval_images: torch.Tensor) -> None:
    """Checkpoint every live run at step `done`; a run whose weights are no longer finite is recorded as
    diverged instead (and dropped), so no checkpoint ever holds non-finite weights."""
    stepper.sync_runs()
    finite = [run.weights_finite() for run in stepper.runs]
    for run, ok in zip(stepper.runs, finite):
        if not ok:
            run.record_divergence(done, {}, done, stepper.graphed)
    _keep(stepper, {}, [slot for slot, ok in enumerate(finite) if ok], done)
    for run in stepper.runs:
        run.save_checkpoint(done, eval_images)


def _records(outputs: dict[str, torch.Tensor], done: int, seconds: float, images: int, runs: int) -> list[dict]:
    """One metrics.jsonl record per live run (images_per_s counts each run's own images)."""
    values = _per_run(outputs)
    return [{"step": done, **{key: column[slot] for key, column in values.items()}, "elapsed_s": seconds,
             "images_per_s": images / seconds} for slot in range(runs)]


def train_loop(stepper: Stepper, settings, start_step: int, eval_images: torch.Tensor, hooks: TrainingHooks,
               progress: bool, label: str) -> LoopStats:
    """Step from `start_step` to settings.steps, logging, checking and checkpointing on schedule; returns
    the session's timing. Stops early when every run has diverged."""
    bar = tqdm(total=settings.steps, initial=start_step, desc=label, disable=not progress, dynamic_ncols=True)
    started, taken = time.perf_counter(), 0
    interval = IntervalMean()
    try:
        for step in range(start_step, settings.steps):
            set_learning_rate(stepper.optimizers(), settings, step)
            outputs = stepper.step(step)
            interval.add(outputs["loss"], stepper.runs)
            taken, done = taken + 1, step + 1
            bar.update(1)
            log_now = done % settings.log_every == 0 or done == settings.steps
            checkpoint_now = done % settings.checkpoint_every == 0 and done != settings.steps
            if log_now or checkpoint_now:
                outputs = _drop_diverged(stepper, outputs, done)
            if log_now and stepper.runs:
                outputs = {**outputs, INTERVAL_KEY: interval.take(stepper.runs)}
                records = _records(outputs, done, time.perf_counter() - started, taken * settings.batch_size,
                                   len(stepper.runs))
                for run, record in zip(stepper.runs, records):
                    run.log(record)
                bar.set_postfix(loss=f"{sum(r['loss'] for r in records) / len(records):.2f}", runs=len(records))
                if hooks.on_log:
                    hooks.on_log(done, records)
            if checkpoint_now and stepper.runs:
                checkpoint_runs(stepper, done, eval_images)
                if hooks.on_checkpoint:
                    hooks.on_checkpoint(done)
            if not stepper.runs:
                break
            if hooks.on_step:
                hooks.on_step(done)
    finally:
        bar.close()
    return LoopStats(time.perf_counter() - started, taken)


def finish_runs(stepper: Stepper, stats: LoopStats, eval_images: torch.Tensor, eval_subset: dict,
                extra: dict | None = None) -> None:
    """The final checkpoint (unless a resumed run already had it) and the finished summary of every live run."""
    steps = stepper.runs[0].config.train.steps if stepper.runs else 0
    stepper.sync_runs()
    pending = [run for run in stepper.runs if run.start_step < steps or steps not in run.directory.checkpoint_steps()]
    finite = {id(run): run.weights_finite() for run in pending}
    for run in pending:
        if not finite[id(run)]:
            run.record_divergence(steps, {}, steps, stepper.graphed)
        else:
            run.save_checkpoint(steps, eval_images)
    for run in stepper.runs:
        if not run.diverged:
            run.finish(stats.seconds, stats.steps, eval_images, eval_subset, extra)
