"""Train one beta-VAE: Adam, seeded, resumable, with progress, metrics.jsonl, image grids and checkpoints.

A run directory holds config.yaml, checkpoints/, metrics.jsonl, images/ and summary.json. On CPU a
resumed run ends with exactly the weights of an uninterrupted one: batches are a pure function of
(step, seed) and the reparameterisation noise comes from a generator whose state is checkpointed.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

import vaelens
from vaelens import config as config_module
from vaelens.config import RunConfig
from vaelens.data import load_dataset
from vaelens.io import atomic_write_json, atomic_write_text
from vaelens.losses import build_objective
from vaelens.models import VAE, build_model
from vaelens.training.checkpoint import list_checkpoints, load_checkpoint, restore, save_checkpoint
from vaelens.training.graphed import DivergenceWatch, StepRunner
from vaelens.training.images import save_image_grids


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class RunExistsError(FileExistsError):
    """The output directory already holds a run and resume was not asked for."""


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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={name} but CUDA is not available here; use train.device=cpu or auto")
    return device


def _validate(config: RunConfig) -> None:
    train = config.train
    for key in ("steps", "batch_size", "log_every", "checkpoint_every", "eval_images"):
        if getattr(train, key) < 1:
            raise ValueError(f"train.{key} must be at least 1, got {getattr(train, key)}")
    if train.lr <= 0:
        raise ValueError(f"train.lr must be positive, got {train.lr}")
    if train.cuda_graph and config.loss.disc_weight > 0:
        raise ValueError(f"train.cuda_graph=true cannot capture an adversarial objective (loss.disc_weight="
                         f"{config.loss.disc_weight}): its discriminator step and disc_start switch run on the "
                         "host; set train.cuda_graph=false")


def _check_fast_path(config: RunConfig, device: torch.device) -> None:
    if config.train.cuda_graph and device.type != "cuda":
        raise ValueError(f"train.cuda_graph=true needs a CUDA device, and this run is on {device}; "
                         "set train.cuda_graph=false (or train.device=cuda on a machine with a GPU)")


def make_adam(parameters, train_config, device: torch.device) -> torch.optim.Adam:
    """The trainer's Adam: fused (one kernel for all tensors) on CUDA, capturable when the step is graphed."""
    on_cuda = device.type == "cuda"
    return torch.optim.Adam(parameters, lr=train_config.lr, betas=tuple(train_config.adam_betas),
                            fused=on_cuda or None, capturable=on_cuda and train_config.cuda_graph)


def memory_format(train_config) -> torch.memory_format:
    return torch.channels_last if train_config.channels_last else torch.contiguous_format


def _config_differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
    differences = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            differences += _config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            differences.append(f"{prefix}{key}: {a!r} (saved) != {b!r} (now)")
    return differences


def _check_resumable(run_dir: Path, config: RunConfig) -> None:
    saved = config_module.load_yaml(run_dir / "config.yaml")
    current = config_module.to_dict(config)
    # A run may be extended (more steps) or watched differently; anything else changes the result.
    free = {"train.steps", "train.progress", "train.log_every", "train.checkpoint_every", "train.device",
            *config_module.EXECUTION_ONLY_KEYS}
    differences = [d for d in _config_differences(saved, current) if d.split(":")[0] not in free]
    if differences:
        raise ValueError(f"cannot resume {run_dir}: the config differs from the saved one:\n  "
                         + "\n  ".join(differences) + "\nstart a new run directory instead")


def _trim_metrics(path: Path, last_step: int) -> None:
    """Drop records written after the checkpoint we resume from, so the log has no duplicate steps."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError):
            break  # a torn last line from a killed run
    atomic_write_text(path, "".join(line + "\n" for line in kept))


@torch.no_grad()
def evaluate(model: VAE, objective, images: torch.Tensor, generator: torch.Generator) -> dict:
    """Mean loss terms over `images` with one posterior sample each (nats)."""
    model.eval()
    output_mu, mu, logvar = model(images)
    noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    output = model.decode(mu + torch.exp(0.5 * logvar) * noise)
    terms = objective(images, output, mu, logvar)
    model.train()
    return {"loss": float(terms["loss"]), "distortion": float(terms["distortion"]),
            "rate": float(terms["rate"]), "mean_distortion": float(objective(images, output_mu, mu, logvar)["distortion"]),
            "kl_per_unit": [float(v) for v in terms["kl_per_unit"]], "num_images": int(images.shape[0])}


def train(config: RunConfig, out_dir: str | Path | None = None, resume: bool = False) -> RunResult:
    """Train the model `config` describes into `out_dir` (default: runs/<config hash>); with `resume`,
    continue from its last checkpoint."""
    _validate(config)
    run_dir = Path(out_dir).expanduser() if out_dir is not None else Path("runs") / config_module.config_hash(config)
    checkpoint_dir = run_dir / "checkpoints"
    existing = list_checkpoints(checkpoint_dir) if checkpoint_dir.exists() else []
    if (run_dir / "config.yaml").exists() and not resume:
        raise RunExistsError(f"{run_dir} already holds a run; pass --resume (resume=True) to continue it, "
                             "or choose another output directory")
    if resume and (run_dir / "config.yaml").exists():
        _check_resumable(run_dir, config)

    device = resolve_device(config.train.device)
    _check_fast_path(config, device)
    data = load_dataset(config.data, split="train").to(device)
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, data.image_shape).to(device, memory_format=memory_format(config.train))
    # Perceptual and discriminator convolutions take the model's layout too.
    objective = build_objective(config.loss, data.image_shape, model, device).to(memory_format=memory_format(config.train))
    parameters = list(model.parameters()) + objective.generator_parameters()
    optimizer = make_adam(parameters, config.train, device)
    optimizers = {"adam": optimizer}
    if objective.adversarial is not None:
        optimizers["discriminator"] = objective.adversarial.optimizer
    noise_generator = torch.Generator(device).manual_seed(config.train.seed + 1)
    modules = {"model": model, "objective": objective}

    start_step = 0
    if resume and existing:
        tensors, meta = load_checkpoint(existing[-1])
        restore(tensors, meta, modules, optimizers, {"noise": noise_generator})
        start_step = meta["step"]
        _trim_metrics(run_dir / "metrics.jsonl", start_step)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_module.save_yaml(config, run_dir / "config.yaml")

    eval_generator = torch.Generator(device).manual_seed(config.train.seed + 2)
    eval_images = data.images(torch.arange(min(config.train.eval_images, data.num_images)))
    context = {"vaelens_version": vaelens.__version__, "torch_version": torch.__version__,
               "objective": objective.describe(), "data": data.describe()}

    def checkpoint(step: int) -> None:
        save_checkpoint(checkpoint_dir, step, modules, optimizers, {"noise": noise_generator}, context)
        save_image_grids(model, objective, eval_images, run_dir / "images", config.train.seed)

    autocast = config.train.bf16 and device.type == "cuda"
    graphed = config.train.cuda_graph
    layout = memory_format(config.train)
    objective.perceptual_bf16 = autocast
    noise_dtype = torch.bfloat16 if autocast else torch.float32
    noise_shape = (config.train.batch_size, *model.latent_shape)
    watch = DivergenceWatch(start_step, device)
    inputs: dict[str, torch.Tensor] = {}

    def training_step() -> dict[str, torch.Tensor]:
        """Forward, backward and Adam on inputs["x"] with inputs["noise"]; no host sync when graphed."""
        x, noise = inputs["x"], inputs["noise"]
        optimizer.zero_grad(set_to_none=True)
        # The autocast cache would keep weight casts made during capture, stale on every replay.
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast, cache_enabled=not graphed):
            output, mu, logvar = model(x, noise)
        terms = objective(x, output, mu, logvar, inputs["step"])
        if not graphed and not bool(torch.isfinite(terms["loss"])):
            _record_divergence(run_dir, inputs["step"], terms, context)
        terms["loss"].backward()
        if config.train.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(parameters, config.train.grad_clip)
        optimizer.step()
        if graphed:
            watch.update(terms["loss"])
        return terms

    runner = StepRunner(training_step, capture=graphed)

    def check_divergence(terms: dict, done: int) -> None:
        """Graphed steps record a non-finite loss on the device; stop here (before any checkpoint) if one did."""
        bad_step = watch.first_bad_step() if graphed else None
        if bad_step is not None:
            _record_divergence(run_dir, bad_step, terms, context, first_seen=done)

    metrics_file = open(run_dir / "metrics.jsonl", "a")
    bar = tqdm(total=config.train.steps, initial=start_step, desc=f"train {run_dir.name}",
               disable=not config.train.progress, dynamic_ncols=True)
    started, timed_steps = time.perf_counter(), 0
    try:
        for step in range(start_step, config.train.steps):
            # Batches and noise are drawn outside the step, in the same order as always, so a graphed
            # run sees exactly the data and noise of an eager one.
            x = data.batch(step, config.train.batch_size, config.train.seed).contiguous(memory_format=layout)
            noise = torch.randn(noise_shape, generator=noise_generator, device=device, dtype=noise_dtype)
            runner.feed(x=x, noise=noise)
            inputs.update(runner.inputs, step=step)
            terms = runner()
            discriminator_info = objective.discriminator_step(x, terms["reconstruction"], step)
            timed_steps += 1
            done = step + 1
            bar.update(1)
            if done % config.train.log_every == 0 or done == config.train.steps:
                check_divergence(terms, done)
                record = {"step": done, **{key: float(value.detach()) for key, value in terms.items()
                                           if value.ndim == 0}, **{key: float(value) for key, value in discriminator_info.items()},
                          "elapsed_s": time.perf_counter() - started,
                          "images_per_s": timed_steps * config.train.batch_size / (time.perf_counter() - started)}
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
                bar.set_postfix(loss=f"{record['loss']:.2f}", rate=f"{record['rate']:.2f}",
                                distortion=f"{record['distortion']:.2f}")
            if done % config.train.checkpoint_every == 0 and done != config.train.steps:
                check_divergence(terms, done)
                checkpoint(done)
    finally:
        bar.close()
        metrics_file.close()
    elapsed = time.perf_counter() - started
    objective.perceptual_bf16 = False  # the summary's evaluation is float32 throughout
    if start_step < config.train.steps or not existing:
        checkpoint(config.train.steps)

    summary = {"status": "finished", "steps": config.train.steps, "resumed_from": start_step,
               "weighting_convention": objective.describe()["convention"], **context,
               "images_per_s": timed_steps * config.train.batch_size / elapsed if timed_steps else None,
               "train_seconds_this_session": elapsed,
               "eval": evaluate(model, objective, eval_images, eval_generator)}
    atomic_write_json(run_dir / "summary.json", summary)
    model.eval()
    return RunResult(run_dir, config, model, objective, summary)


def _record_divergence(run_dir: Path, step: int, terms: dict, context: dict, first_seen: int | None = None) -> None:
    """Write the diverged summary.json and raise TrainingDiverged. `first_seen` is the step at which a
    graphed run read the device's record (its weights went on being updated until then; the values
    shown are that step's)."""
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    last = f"checkpoint {checkpoints[-1].stem} is kept" if checkpoints else "no checkpoint was written yet"
    values = {key: float(terms[key].detach()) for key in ("loss", "distortion", "rate")}
    bad = ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v)) or "a non-finite loss"
    if first_seen is None:
        what = f"training diverged at step {step}: {bad}; the weights were not updated with it and {last}. "
    else:
        what = (f"training diverged at step {step} (a non-finite loss, found at step {first_seen} by the CUDA-graph "
                f"path, which checks at log and checkpoint steps; at step {first_seen}: {bad}); {last} and "
                "holds no weights updated with it. ")
    message = what + "Lower train.lr, set train.grad_clip, or check the data for NaN/Inf values."
    atomic_write_json(run_dir / "summary.json", {"status": "diverged", "step": step, "error": message,
                                                 "weighting_convention": context["objective"]["convention"],
                                                 **context})
    raise TrainingDiverged(message)
