"""Train K beta-VAEs that differ only in loss.beta and train.seed together, one run directory each.

The members share every other setting (`ensemble_key`). Each is built, seeded and (on resume)
restored as the single trainer does it (`TrainingRun`), then trained inside one ensemble
(`StackedMembers`: stacked parameters, one Adam; on CUDA one vmapped functional_call for all members,
on CPU the members one after another, which is faster there). Member k sees the batches and
reparameterisation noise the single trainer would give it (`data.batch(step, B, seed_k)`; a noise
generator seeded seed_k + 1), so it follows the trajectory of a separately trained run up to
floating-point rounding (vmapped convolutions run as grouped kernels whose summation order differs).

Run directories are ordinary run directories (the summary adds `ensemble`), so `load_run`,
`vaelens analyze` and `train(..., resume=True)` work on them. Only pointwise objectives are supported
(any likelihood; additive, or ldm without a perceptual term): perceptual, adversarial and structural
terms run per model with their own networks and state, so such configs raise `EnsembleIncompatible`.

Divergence: a member whose loss turns NaN/inf is found at the next log or checkpoint step, recorded as
the single trainer records it (summary.json status "diverged", last good checkpoint kept, holding no
weights updated with the bad step) and dropped; the others go on. Its in-memory model keeps the weights
of its last checkpoint (its initial weights when it had none).
"""

from __future__ import annotations

import copy
from contextlib import ExitStack
from pathlib import Path

import torch

from vaelens import config as config_module
from vaelens.config import RunConfig
from vaelens.data import load_dataset
from vaelens.devices import resolve_device
from vaelens.losses.terms import ensemble_refusal
from vaelens.training.graphed import DivergenceWatch, StepRunner
from vaelens.training.loop import TrainingHooks, finish_runs, train_loop
from vaelens.training.memory import check_model_fits
from vaelens.training.run import RunResult, TrainingRun
from vaelens.training.rundir import RunDirectory
from vaelens.training.setup import check_data_fits, check_device, check_training_config, evaluation_subset
from vaelens.training.stacked import EnsembleMember, StackedMembers
from vaelens.training.trainer import prepare_directory

ensemble_key = config_module.ensemble_key


class EnsembleIncompatible(ValueError):
    """Configs that cannot be trained as one ensemble; the message says which keys and what to do."""


def unsupported_reason(config: RunConfig) -> str | None:
    """Why `config`'s objective cannot be trained in an ensemble (a term the ensemble does not support, as the
    term registry declares it), or None."""
    return ensemble_refusal(config)


def check_compatible(configs: list[RunConfig], run_dirs: list[Path]) -> None:
    """Raise a clear error unless `configs` can be trained together into the distinct `run_dirs`."""
    if not configs:
        raise ValueError("train_ensemble needs at least one config")
    if len(configs) != len(run_dirs):
        raise ValueError(f"train_ensemble got {len(configs)} configs but {len(run_dirs)} run directories; "
                         "give one directory per config")
    resolved = [str(Path(d).expanduser().resolve()) for d in run_dirs]
    if len(set(resolved)) != len(resolved):
        raise ValueError("train_ensemble got the same run directory twice; give each member its own")
    for config in configs:
        check_training_config(config)
        reason = unsupported_reason(config)
        if reason:
            raise EnsembleIncompatible(reason)
    first = config_module.to_dict(configs[0])
    per_member = set(config_module.keys_where(per_member=True))
    for index, config in enumerate(configs[1:], start=1):
        if ensemble_key(config) != ensemble_key(configs[0]):
            differences = [line for line in config_module.differences(first, config_module.to_dict(config),
                                                                       ("config 0", f"config {index}"))
                           if line.split(":")[0] not in per_member]
            raise EnsembleIncompatible(
                f"configs 0 and {index} differ in more than {' and '.join(sorted(per_member))}, so they cannot "
                "share an ensemble:\n  " + "\n  ".join(differences) + "\ngroup runs by ensemble_key(config)")


def common_checkpoints(directories: list[RunDirectory]) -> set[int]:
    """The steps every member has a committed checkpoint of. Members are checkpointed one after another,
    so an interruption can leave some a checkpoint ahead; they all go back to a common one."""
    steps = [set(directory.checkpoint_steps()) if directory.is_run else set() for directory in directories]
    return set.intersection(*steps) if steps else set()


class EnsembleStepper:
    """All live members' step at once, through `StackedMembers` (one Adam over stacked parameters)."""

    def __init__(self, runs: list[TrainingRun], data, device: torch.device, vectorise: bool, hooks: TrainingHooks):
        self.settings = runs[0].config.train
        self.runs, self.device, self.hooks = list(runs), device, hooks
        self.graphed = self.settings.cuda_graph
        autocast = self.settings.bf16 and device.type == "cuda"
        self.members = {id(run): EnsembleMember(run.model, run.objective, autocast, cache_casts=not self.graphed)
                        for run in runs}
        self.noise_dtype = torch.bfloat16 if autocast else torch.float32
        self.latent_shape = runs[0].model.latent_shape
        # One shallow view of the data per seed: each caches its own epoch permutation, so K seeds do not
        # redraw randperm(N) K times a step (the data keeps only the last (seed, epoch) order).
        self.views = {run.seed: copy.copy(data) for run in runs}
        self.stack = StackedMembers([self.members[id(run)] for run in runs], [run.parts.optimizer for run in runs],
                                    vectorise, self.settings.channels_last)
        self._new_runner(runs[0].start_step)

    def _new_runner(self, step: int) -> None:
        """A runner (and device-side divergence record) for the current members; captured anew when graphed."""
        self.beta = torch.tensor([run.config.loss.beta for run in self.runs], device=self.device)
        self.watch = DivergenceWatch(step, self.device, len(self.runs))
        self.runner = (self.hooks.step_runner or StepRunner)(self._step, capture=self.graphed)

    def _step(self) -> dict[str, torch.Tensor]:
        inputs = self.runner.inputs
        self.stack.optimizer.zero_grad(set_to_none=True)
        terms = self.stack.losses(inputs["x"], inputs["noise"], inputs["beta"])
        terms["loss"].sum().backward()
        if self.settings.grad_clip is not None:
            self.stack.clip_gradients(self.settings.grad_clip)
        self.stack.optimizer.step()
        self.watch.update(terms["loss"])
        return {key: value.detach() for key, value in terms.items()}

    def step(self, step: int) -> dict[str, torch.Tensor]:
        batches: dict[int, torch.Tensor] = {}
        for run in self.runs:
            if run.seed not in batches:
                batches[run.seed] = self.views[run.seed].batch(step, self.settings.batch_size, run.seed)
        x = torch.stack([batches[run.seed] for run in self.runs])
        noise = torch.stack([torch.randn((self.settings.batch_size, *self.latent_shape), generator=run.noise,
                                         device=self.device, dtype=self.noise_dtype) for run in self.runs])
        self.runner.feed(x=x, noise=noise, beta=self.beta)
        return self.runner()

    def first_bad_steps(self) -> list[int | None]:
        return self.watch.first_bad_step()

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.stack.optimizer]

    def keep(self, slots: list[int], step: int) -> None:
        self.runs = [self.runs[slot] for slot in slots]
        if self.runs:
            self.stack.keep(slots)
            self._new_runner(step)

    def sync_runs(self) -> None:
        for slot, run in enumerate(self.runs):
            self.stack.write_back(slot, self.members[id(run)], run.parts.optimizer)


def _ensemble_summary(runs: list[TrainingRun], stats, vectorise: bool) -> dict:
    images_per_s = stats.steps * runs[0].config.train.batch_size / stats.seconds if stats.steps else None
    return {"ensemble": {"models": len(runs), "vectorised": vectorise,
                         "model_images_per_s": images_per_s * len(runs) if images_per_s else None}}


def train_ensemble(configs: list[RunConfig], run_dirs: list[Path], resume: bool = False, progress: bool = True,
                   vectorise: bool | None = None, hooks: TrainingHooks | None = None) -> list[RunResult]:
    """Train every config into its run directory as one ensemble; with `resume`, continue interrupted
    members from their newest common checkpoint. Returns one RunResult per config, in order (a diverged
    member's summary has status "diverged"). `vectorise` runs the members' forward and backward as one
    vmapped call; None (default) vectorises on CUDA only, where it pays (see StackedMembers.losses)."""
    hooks = hooks or TrainingHooks()
    directories = [RunDirectory(d) for d in run_dirs]
    check_compatible(configs, [d.path for d in directories])
    with ExitStack() as locks:  # every member's run directory is locked for the life of the ensemble
        for config, directory in zip(configs, directories):
            directory.check_usable(resume)
            locks.enter_context(directory.lock("a training run (an ensemble member)"))
            prepare_directory(directory, config, resume)
        return _train_members(configs, directories, resume, progress, vectorise, hooks)


def _train_members(configs: list[RunConfig], directories: list[RunDirectory], resume: bool, progress: bool,
                   vectorise: bool | None, hooks: TrainingHooks) -> list[RunResult]:
    settings = configs[0].train
    device = resolve_device(settings.device, "train.device")
    if hooks.step_runner is None:
        check_device(configs[0], device)
    data = load_dataset(configs[0].data, split="train").to(device)
    check_data_fits(configs[0], data)
    check_model_fits(configs[0], data.image_shape, device, members=len(configs))
    vectorise = device.type == "cuda" if vectorise is None else bool(vectorise)
    runs = [TrainingRun(config, directory, data, device) for config, directory in zip(configs, directories)]
    if resume:
        _resume_together(runs)
    for run in runs:
        run.start()
    eval_images, eval_subset = evaluation_subset(configs[0], data)
    stepper = EnsembleStepper(runs, data, device, vectorise, hooks)
    with ExitStack() as logs:
        for run in runs:
            logs.enter_context(run.logging())
        try:
            stats = train_loop(stepper, settings, runs[0].start_step, eval_images, hooks, progress,
                               f"ensemble of {len(runs)}")
        except Exception as error:
            for run in stepper.runs:
                run.record_failure(runs[0].start_step, error)
            raise
        finish_runs(stepper, stats, eval_images, eval_subset, _ensemble_summary(runs, stats, vectorise))
    return [run.result() for run in runs]


def _resume_together(runs: list[TrainingRun]) -> None:
    """Restore every member from one step: the newest at which all have a good checkpoint (a corrupt one
    sends every member back to an earlier common step), or none."""
    directories = [run.directory for run in runs]
    step = max(common_checkpoints(directories), default=0)
    while step:
        found = [run.directory.latest_good_checkpoint(at_most=step, set_aside=True) for run in runs]
        lowest = min((checkpoint.step if checkpoint else 0) for checkpoint in found)
        if lowest == step:
            for run, checkpoint in zip(runs, found):
                run.resume_from(checkpoint)
            return
        step = max((s for s in common_checkpoints(directories) if s <= lowest), default=0)
