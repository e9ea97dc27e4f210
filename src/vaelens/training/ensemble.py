"""Train K beta-VAEs that differ only in loss.beta and train.seed together, one run directory each.

The members share architecture, data, objective and optimiser settings (`ensemble_key`). Each is
built, seeded and (on resume) restored exactly as `vaelens.training.train` builds it, then trained
inside one ensemble (`StackedMembers`: stacked parameters, one Adam; on CUDA one vmapped
functional_call for all members, on CPU the members one after another, which is faster there). Member k
sees the batches and reparameterisation noise the single trainer would give it
(`data.batch(step, B, seed_k)`; a noise generator seeded seed_k + 1), so it follows the trajectory of a
separately trained run up to floating-point rounding (vmapped convolutions run as grouped kernels
whose summation order differs from the single model's).

Run directories are written with the single trainer's own helpers (config.yaml, checkpoints with
per-member Adam and generator state, metrics.jsonl, images/, summary.json with the same keys plus
`ensemble`), so `load_run`, `vaelens analyze` and `train(..., resume=True)` work on them.

Only pointwise objectives are supported (any likelihood; additive, or ldm without a perceptual
term): perceptual, adversarial and structural terms run per model with their own networks and
state, so such configs raise `EnsembleIncompatible` and belong to the single-run trainer.

Divergence: a member whose loss turns NaN/inf at some step is recorded as the single trainer records
it (summary.json status "diverged" with the message, last good checkpoint kept, weights not updated
with that step) and dropped from the ensemble; the others go on. Its RunResult carries that summary.
"""

from __future__ import annotations

import copy
import json
import time
from contextlib import ExitStack
from pathlib import Path

import torch
from tqdm.auto import tqdm

import vaelens
from vaelens import config as config_module
from vaelens.config import RunConfig
from vaelens.data import load_dataset
from vaelens.io import atomic_write_json
from vaelens.losses import build_objective
from vaelens.models import build_model
from vaelens.training.checkpoint import list_checkpoints, load_checkpoint, restore, save_checkpoint
from vaelens.training.graphed import DivergenceWatch, StepRunner
from vaelens.training.images import save_image_grids
from vaelens.training.stacked import EnsembleMember, StackedMembers
from vaelens.training.trainer import (
    RunExistsError,
    RunResult,
    TrainingDiverged,
    _check_fast_path,
    _check_resumable,
    _config_differences,
    _record_divergence,
    _trim_metrics,
    _validate,
    evaluate,
    make_adam,
    resolve_device,
)

FREE_KEYS = ("loss.beta", "train.seed")
"""What members of one ensemble may differ in."""


class EnsembleIncompatible(ValueError):
    """Configs that cannot be trained as one ensemble; the message says which keys and what to do."""


def ensemble_key(config: RunConfig) -> str:
    """Everything in `config` except loss.beta and train.seed, as a canonical JSON string (hashable):
    configs with equal keys can be trained together."""
    values = config_module.to_dict(config)
    values["loss"].pop("beta")
    values["train"].pop("seed")
    return json.dumps(values, sort_keys=True)


def unsupported_reason(config: RunConfig) -> str | None:
    """Why `config`'s objective cannot be trained in an ensemble, or None when it can."""
    loss = config.loss
    reasons = [text for text, present in (
        (f"loss.perceptual={loss.perceptual!r}", bool(loss.perceptual)),
        (f"loss.disc_weight={loss.disc_weight}", loss.disc_weight > 0),
        (f"loss.ssim_weight={loss.ssim_weight}", loss.ssim_weight > 0)) if present]
    if not reasons:
        return None
    return (f"the ensemble executor supports pointwise objectives only, and this config sets {', '.join(reasons)}; "
            "train it with vaelens.training.train (the local executor)")


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
        _validate(config)
        reason = unsupported_reason(config)
        if reason:
            raise EnsembleIncompatible(reason)
    first = config_module.to_dict(configs[0])
    for index, config in enumerate(configs[1:], start=1):
        if ensemble_key(config) != ensemble_key(configs[0]):
            differences = [d for d in _config_differences(first, config_module.to_dict(config))
                           if d.split(":")[0] not in FREE_KEYS]
            raise EnsembleIncompatible(
                f"configs 0 and {index} differ in more than {' and '.join(FREE_KEYS)}, so they cannot share an "
                "ensemble:\n  " + "\n  ".join(d.replace("(saved)", "(config 0)").replace("(now)", f"(config {index})")
                                              for d in differences) + "\ngroup runs by ensemble_key(config)")


def _checkpoint_steps(run_dir: Path) -> set[int]:
    return {int(path.stem.split("_")[1]) for path in list_checkpoints(run_dir / "checkpoints")}


def _resume_step(run_dirs: list[Path], resume: bool) -> int:
    """The newest step every member has a checkpoint of (0: start afresh). Members are checkpointed one
    after another, so an interruption can leave some a checkpoint ahead; they all go back to the common one."""
    if not resume:
        return 0
    common = None
    for run_dir in run_dirs:
        steps = _checkpoint_steps(run_dir) if (run_dir / "config.yaml").exists() else set()
        common = steps if common is None else common & steps
    return max(common, default=0)


class _Run:
    """One member's single-run objects (model, objective, Adam, generators) and its files."""

    def __init__(self, config: RunConfig, run_dir: Path, data, device, start_step: int):
        self.config, self.run_dir, self.seed = config, run_dir, config.train.seed
        torch.manual_seed(self.seed)
        self.model = build_model(config.model, data.image_shape).to(device)
        self.objective = build_objective(config.loss, data.image_shape, self.model, device)
        parameters = list(self.model.parameters()) + self.objective.generator_parameters()
        self.optimizer = make_adam(parameters, config.train, device)
        self.noise = torch.Generator(device).manual_seed(self.seed + 1)
        self.modules = {"model": self.model, "objective": self.objective}
        self.had_checkpoint = bool(list_checkpoints(run_dir / "checkpoints")) if run_dir.exists() else False
        if start_step:
            tensors, meta = load_checkpoint(run_dir / "checkpoints" / f"step_{start_step:09d}.json")
            restore(tensors, meta, self.modules, {"adam": self.optimizer}, {"noise": self.noise})
            _trim_metrics(run_dir / "metrics.jsonl", start_step)
        run_dir.mkdir(parents=True, exist_ok=True)
        config_module.save_yaml(config, run_dir / "config.yaml")
        self.context = {"vaelens_version": vaelens.__version__, "torch_version": torch.__version__,
                        "objective": self.objective.describe(), "data": data.describe()}
        self.member = EnsembleMember(self.model, self.objective, config.train.bf16 and device.type == "cuda",
                                     cache_casts=not config.train.cuda_graph)
        self.metrics = None
        self.summary: dict | None = None

    def checkpoint(self, step: int, eval_images: torch.Tensor) -> None:
        save_checkpoint(self.run_dir / "checkpoints", step, self.modules, {"adam": self.optimizer},
                        {"noise": self.noise}, self.context)
        save_image_grids(self.model, self.objective, eval_images, self.run_dir / "images", self.seed)

    def diverge(self, step: int, terms: dict, first_seen: int | None = None) -> None:
        try:
            _record_divergence(self.run_dir, step, terms, self.context, first_seen)
        except TrainingDiverged:
            self.summary = json.loads((self.run_dir / "summary.json").read_text())


def train_ensemble(configs: list[RunConfig], run_dirs: list[Path], resume: bool = False,
                   progress: bool = True, vectorise: bool | None = None) -> list[RunResult]:
    """Train every config into its run directory as one ensemble; with `resume`, continue interrupted
    members from their newest common checkpoint. Returns one RunResult per config, in order (a diverged
    member's summary has status "diverged"). `vectorise` runs the members' forward and backward as one
    vmapped call; None (default) vectorises on CUDA only, where it pays (see StackedMembers.losses)."""
    run_dirs = [Path(d).expanduser() for d in run_dirs]
    check_compatible(configs, run_dirs)
    for config, run_dir in zip(configs, run_dirs):
        if (run_dir / "config.yaml").exists():
            if not resume:
                raise RunExistsError(f"{run_dir} already holds a run; pass resume=True to continue it, "
                                     "or choose another output directory")
            _check_resumable(run_dir, config)
    settings = configs[0].train
    device = resolve_device(settings.device)
    _check_fast_path(configs[0], device)
    data = load_dataset(configs[0].data, split="train").to(device)
    vectorise = device.type == "cuda" if vectorise is None else bool(vectorise)
    start_step = _resume_step(run_dirs, resume)
    runs = [_Run(config, run_dir, data, device, start_step) for config, run_dir in zip(configs, run_dirs)]
    eval_images = data.images(torch.arange(min(settings.eval_images, data.num_images)))
    with ExitStack() as files:
        for run in runs:
            run.metrics = files.enter_context(open(run.run_dir / "metrics.jsonl", "a"))
        elapsed, timed_steps = _train_loop(runs, data, device, start_step, eval_images, progress, vectorise)
    results = []
    for run in runs:
        if run.summary is None:
            if start_step < settings.steps or not run.had_checkpoint:
                run.checkpoint(settings.steps, eval_images)
            images_per_s = timed_steps * settings.batch_size / elapsed if timed_steps else None
            run.summary = {
                "status": "finished", "steps": settings.steps, "resumed_from": start_step,
                "weighting_convention": run.objective.describe()["convention"], **run.context,
                "images_per_s": images_per_s, "train_seconds_this_session": elapsed,
                "eval": evaluate(run.model, run.objective, eval_images,
                                 torch.Generator(device).manual_seed(run.seed + 2)),
                "ensemble": {"models": len(runs), "vectorised": vectorise, "model_images_per_s":
                             images_per_s * len(runs) if images_per_s else None},
            }
            atomic_write_json(run.run_dir / "summary.json", run.summary)
        run.model.eval()
        results.append(RunResult(run.run_dir, run.config, run.model, run.objective, run.summary))
    return results


class _MembersDiverged(Exception):
    """Raised inside an eager ensemble step, before the update, when some members' losses are not finite."""

    def __init__(self, finite: list[bool], loss: torch.Tensor, terms: dict):
        super().__init__()
        self.finite, self.loss, self.terms = finite, loss, terms


def _train_loop(runs: list[_Run], data, device, start_step: int, eval_images, progress: bool,
                vectorise: bool) -> tuple[float, int]:
    """Step all live members from `start_step` to the end; returns (seconds, steps taken).

    Eagerly, a member whose loss is not finite is found before the update and written back unchanged.
    With train.cuda_graph the step has no host sync: the device records each member's first bad step,
    read at log and checkpoint steps; such a member is recorded as diverged (its last checkpoint holds
    no weights updated with the bad step; its in-memory model keeps the weights last written back) and
    the survivors' step is captured anew.
    """
    settings = runs[0].config.train
    graphed = settings.cuda_graph
    latent_shape = runs[0].model.latent_shape
    noise_dtype = torch.bfloat16 if runs[0].member.autocast else torch.float32
    # One shallow view of the data per seed: each caches its own epoch permutation, so K seeds do not
    # redraw randperm(N) K times a step (the data keeps only the last (seed, epoch) order).
    views = {run.seed: copy.copy(data) for run in runs}
    alive = list(runs)
    stack = StackedMembers([run.member for run in alive], [run.optimizer for run in alive], vectorise,
                           settings.channels_last)

    def ensemble_step() -> dict[str, torch.Tensor]:
        x, noise, beta = runner.inputs["x"], runner.inputs["noise"], runner.inputs["beta"]
        stack.optimizer.zero_grad(set_to_none=True)
        loss, terms = stack.losses(x, noise, beta)
        if not graphed:
            finite = torch.isfinite(loss).tolist()
            if not all(finite):
                raise _MembersDiverged(finite, loss, terms)
        loss.sum().backward()
        if settings.grad_clip is not None:
            stack.clip_gradients(settings.grad_clip)
        stack.optimizer.step()
        if graphed:
            watch.update(loss)
        return {"loss": loss, **terms}

    def new_runner(step: int) -> tuple[StepRunner, DivergenceWatch, torch.Tensor]:
        beta = torch.tensor([run.config.loss.beta for run in alive], device=device)
        return StepRunner(ensemble_step, capture=graphed), DivergenceWatch(step, device, len(alive)), beta

    def drop(slots_ok: list[bool]) -> None:
        nonlocal alive
        keep = [slot for slot, ok in enumerate(slots_ok) if ok]
        alive = [alive[slot] for slot in keep]
        if alive:
            stack.keep(keep)

    runner, watch, beta = new_runner(start_step)
    bar = tqdm(total=settings.steps, initial=start_step, desc=f"ensemble of {len(runs)}", disable=not progress,
               dynamic_ncols=True)
    started, timed_steps = time.perf_counter(), 0

    def check_graphed_divergence(outputs: dict, done: int) -> dict:
        """Drop members the device saw diverge; returns `outputs` restricted to the survivors."""
        nonlocal runner, watch, beta
        bad_steps = watch.first_bad_step() if graphed else None
        if not bad_steps or all(bad is None for bad in bad_steps):
            return outputs
        for slot, bad in enumerate(bad_steps):
            if bad is not None:
                alive[slot].diverge(bad, {key: outputs[key][slot] for key in ("loss", "distortion", "rate")}, done)
        survivors = [slot for slot, bad in enumerate(bad_steps) if bad is None]
        drop([bad is None for bad in bad_steps])
        runner, watch, beta = new_runner(done)
        index = torch.as_tensor(survivors, device=device, dtype=torch.int64)
        return {key: value[index] for key, value in outputs.items()}

    try:
        for step in range(start_step, settings.steps):
            batches: dict[int, torch.Tensor] = {}
            for run in alive:
                if run.seed not in batches:
                    batches[run.seed] = views[run.seed].batch(step, settings.batch_size, run.seed)
            x = torch.stack([batches[run.seed] for run in alive])
            noise = torch.stack([torch.randn((settings.batch_size, *latent_shape), generator=run.noise,
                                             device=device, dtype=noise_dtype) for run in alive])
            runner.feed(x=x, noise=noise, beta=beta)
            try:
                outputs = runner()
            except _MembersDiverged as diverged:
                for slot, ok in enumerate(diverged.finite):
                    if not ok:
                        stack.write_back(slot, alive[slot].member, alive[slot].optimizer)
                        alive[slot].diverge(step, {key: diverged.terms.get(key, diverged.loss)[slot].detach()
                                                   for key in ("loss", "distortion", "rate")})
                drop(diverged.finite)
                if not alive:
                    break
                index = torch.as_tensor([slot for slot, ok in enumerate(diverged.finite) if ok], device=device)
                runner, watch, beta = new_runner(step)
                runner.feed(x=x[index], noise=noise[index], beta=beta)
                outputs = runner()
            timed_steps += 1
            done = step + 1
            bar.update(1)
            if done % settings.log_every == 0 or done == settings.steps:
                outputs = check_graphed_divergence(outputs, done)
                if not alive:
                    break
                _log(alive, done, outputs["loss"], {k: v for k, v in outputs.items() if k != "loss"},
                     time.perf_counter() - started, timed_steps * settings.batch_size, bar)
            if done % settings.checkpoint_every == 0 and done != settings.steps:
                outputs = check_graphed_divergence(outputs, done)
                if not alive:
                    break
                for slot, run in enumerate(alive):
                    stack.write_back(slot, run.member, run.optimizer)
                    run.checkpoint(done, eval_images)
    finally:
        bar.close()
    for slot, run in enumerate(alive):
        stack.write_back(slot, run.member, run.optimizer)
    return time.perf_counter() - started, timed_steps


def _log(alive: list[_Run], done: int, loss, terms: dict, elapsed: float, images: int, bar) -> None:
    """One metrics.jsonl record per live member, with the single trainer's keys (images/s is per model)."""
    values = {"loss": loss.detach().tolist(), **{key: value.detach().tolist() for key, value in terms.items()}}
    for slot, run in enumerate(alive):
        record = {"step": done, **{key: float(column[slot]) for key, column in values.items()},
                  "elapsed_s": elapsed, "images_per_s": images / elapsed}
        run.metrics.write(json.dumps(record) + "\n")
        run.metrics.flush()
    bar.set_postfix(models=len(alive), mean_loss=f"{sum(values['loss']) / len(alive):.2f}")
