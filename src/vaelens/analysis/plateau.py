"""The paired plateau check: a run's training objective at two of its checkpoints, on the same images and noise.

The logged convergence figure (vaelens.training.convergence) compares window means of the objective
logged during training. On 32-image batches their scatter gives it a standard error of about 1%, half the
2% threshold, and its end window is centred at 0.95 T, so it sees three quarters of the stretch it judges.
This check removes both: it evaluates the objective at step a, the run's last checkpoint at or before
0.8 T, and at the final step T on the same training images with the same posterior sample per image
(common random numbers), so the two values are paired image by image and their difference carries no
batch or sampling noise of its own. The run is on its plateau when

    (L(a) - L(T)) / |L(a) - origin| < 2%,

the origin being the objective's parameter-free constant (vaelens.losses.objective.objective_constant)
as in the logged figure. With a < 0.8 T the judged stretch is longer than the rule's last 20%, so the
check is stricter than the rule, not laxer; the record names the stretch it used.

What is evaluated is distortion + beta * rate, each image's own value (eval mode), both checkpoints'
models under the final checkpoint's objective. That changes nothing for a fixed-scale objective; a learned
scale (the learned-sigma Gaussian's sigma, ldm's s) is thereby frozen at its final value, which gives the
objective an origin, the constant at that scale (vaelens.losses.objective.frozen_scale_constant): the
figure is then the progress of the encoder and decoder, on the same footing as a fixed-scale run's, and the
scale's own last moves are left out (it follows the reconstruction error). The adversarial term is left out
too: its value is set by a discriminator that moves with the model, so it has no fixed value at two
checkpoints to compare.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vaelens.data import load_dataset
from vaelens.losses.objective import frozen_scale_constant, kl_per_unit, objective_constant
from vaelens.posterior import DiagonalGaussian
from vaelens.runs import load_run
from vaelens.sampling import random_subset
from vaelens.training.convergence import NO_ORIGIN, TAIL, THRESHOLD
from vaelens.training.rundir import PLATEAU_FILE, RunDirectory
from vaelens.training.sweepdir import SweepDirectory

RULE = ("(L(a) - L(T)) / |L(a) - the objective's parameter-free constant|, L the mean of distortion + beta * rate "
        "over fixed training images with one shared posterior sample each, under the final checkpoint's objective "
        "(a learned scale frozen at its final value), a the last checkpoint at or before "
        f"0.8 T; converged when below {THRESHOLD:g}")
METHOD_VERSION = 2
"""Bumped when the figure's definition changes, so that older records are checked again. 2: both checkpoints
under the final objective, a learned scale frozen there (1 judged a learned-scale run from an arbitrary zero)."""


@torch.no_grad()
def per_image_objective(model, objective, images: torch.Tensor, seed: int, chunk_size: int = 256) -> torch.Tensor:
    """distortion + beta * rate of each image (N,), in nats, with one posterior sample per image drawn from
    a generator seeded with `seed`: the same images and seed give the same noise for any weights of the
    same model."""
    generator = torch.Generator(images.device).manual_seed(seed)
    values = []
    for chunk in images.split(chunk_size):
        _, mu, logvar = model(chunk)
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        output = model.decode(DiagonalGaussian(mu, logvar).sample(noise))
        rate = kl_per_unit(mu, logvar).sum(1)
        values.append(objective.per_image_distortion(chunk, output).float() + objective.beta * rate)
    return torch.cat(values)


def paired_improvement(before: torch.Tensor, after: torch.Tensor, origin: float | None) -> dict:
    """The relative improvement from `before` to `after` (per-image objectives, paired), measured from
    `origin` (None: the objective has a learned scale, see NO_ORIGIN), with its standard error over images."""
    if before.shape != after.shape or before.numel() < 2:
        raise ValueError(f"the paired check needs two equal-length series of at least 2 images, "
                         f"got {tuple(before.shape)} and {tuple(after.shape)}")
    before, after = before.double(), after.double()
    start, end = float(before.mean()), float(after.mean())
    scale = abs(start - (origin or 0.0))
    differences = before - after
    figure = {"objective_before": start, "objective_after": end, "improvement_nats": start - end,
              "origin": origin, "images": int(before.numel())}
    if origin is None:
        figure["note"] = NO_ORIGIN
    if not scale:
        return {**figure, "relative_improvement": None, "standard_error": None, "converged": None,
                "reason": "the objective equals its origin at the earlier checkpoint; no relative figure"}
    error = float(differences.std()) / math.sqrt(differences.numel())
    improvement = (start - end) / scale
    return {**figure, "relative_improvement": improvement, "standard_error": error / scale,
            "converged": improvement < THRESHOLD}


def plateau_steps(steps: list[int], total: int) -> tuple[int, int] | None:
    """(a, T): the last checkpoint at or before (1 - TAIL) T and the final one; None when either is missing."""
    earlier = [step for step in steps if step <= (1 - TAIL) * total]
    if total not in steps or not earlier:
        return None
    return earlier[-1], total


def training_images(data, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` training images chosen by a generator seeded with `seed` (all of them when fewer), and
    their indices."""
    indices = random_subset(data.num_images, count, seed)
    return data.images(indices), indices


def check_run(run_dir, images: int = 1024, seed: int = 0, device="cpu", data_cache: dict | None = None) -> dict:
    """The paired plateau check of one finished run (see the module docstring); the record plateau.json holds."""
    directory = RunDirectory(run_dir)
    config = directory.read_config()
    total = config.train.steps
    pair = plateau_steps(directory.checkpoint_steps(), total)
    record = {"rule": RULE, "method_version": METHOD_VERSION, "steps": total, "images_requested": images,
              "seed": seed, "split": "train"}
    if directory.status() != "finished":
        return {**record, "converged": None, "reason": f"the run is {directory.status()}, not finished"}
    if pair is None:
        return {**record, "converged": None,
                "reason": f"no checkpoint at or before step {int((1 - TAIL) * total)} beside the final one "
                          f"(it has {directory.checkpoint_steps()}); set train.checkpoint_every <= train.steps / 5"}
    cache = data_cache if data_cache is not None else {}
    key = repr(config.data)
    if key not in cache:
        cache[key] = load_dataset(config.data, split="train")
    chosen, indices = training_images(cache[key], images, seed)
    final = load_run(directory.path, device, step=pair[1])
    earlier = load_run(directory.path, device, step=pair[0])
    values = [per_image_objective(loaded.model, final.objective, chosen.to(device), seed).cpu()
              for loaded in (earlier, final)]
    shape = tuple(chosen.shape[1:])
    origin = objective_constant(config.loss, shape)
    frozen = frozen_scale_constant(final.objective, shape) if origin is None else None
    if frozen is not None:
        record["origin_note"] = (f"a learned scale, frozen at its value at step {pair[1]}: the origin is the "
                                 "objective's constant at that scale")
    return {**record, "from_step": pair[0], "to_step": pair[1], "stretch": (pair[1] - pair[0]) / total,
            "image_indices_sha": _indices_digest(indices),
            **paired_improvement(values[0], values[1], origin if frozen is None else frozen)}


def _indices_digest(indices: torch.Tensor) -> str:
    """A short digest of the chosen image indices, so two records can be seen to use the same images."""
    return hashlib.sha256(indices.numpy().astype("<i8").tobytes()).hexdigest()[:16]


def run_directories(folder) -> list[Path]:
    """The run directories of `folder`: itself if it is a run, else the runs its sweep.json lists."""
    folder = Path(folder).expanduser()
    if RunDirectory(folder).is_run:
        return [folder]
    sweep = SweepDirectory(folder)
    if not sweep.exists():
        raise FileNotFoundError(f"{folder} is neither a run directory nor a sweep or study directory "
                                "(no config.yaml, no sweep.json)")
    return [sweep.run_directory(entry).path for entry in sweep.read_index().runs]


def check_runs(folder, images: int = 1024, seed: int = 0, device="cpu", progress: bool = True,
               redo: bool = False) -> list[tuple[Path, dict]]:
    """Check every finished run of `folder` (a run, sweep or study directory) and write its plateau.json;
    a run whose record was made with the same images, seed and checkpoints is skipped unless `redo`."""
    results, cache = [], {}
    for run_dir in tqdm(run_directories(folder), desc="plateau check", disable=not progress, dynamic_ncols=True):
        existing = RunDirectory(run_dir).read_plateau()
        if existing and not redo and _still_valid(existing, run_dir, images, seed):
            record = existing
        else:
            record = check_run(run_dir, images, seed, device, cache)
            if record.get("converged") is not None:
                RunDirectory(run_dir).write_plateau(record)
        if record.get("converged") is not None:
            _put_in_summary(run_dir, record)
        results.append((run_dir, record))
    return results


SUMMARY_KEYS = ("converged", "relative_improvement", "standard_error", "improvement_nats", "from_step", "to_step",
                "images", "method_version")
"""What summary.json's "plateau" holds of the check: the verdict and its figure beside the logged "convergence"
figure, so that one file has both; plateau.json keeps the whole record."""


def _put_in_summary(run_dir: Path, record: dict) -> None:
    directory = RunDirectory(run_dir)
    summary = directory.read_summary()
    entry = {**{key: record.get(key) for key in SUMMARY_KEYS}, "record": PLATEAU_FILE}
    if summary is not None and summary.get("plateau") != entry:
        directory.write_summary({**summary, "plateau": entry})


def _still_valid(record: dict, run_dir: Path, images: int, seed: int) -> bool:
    steps = RunDirectory(run_dir).checkpoint_steps()
    return (record.get("method_version") == METHOD_VERSION and record.get("images_requested") == images
            and record.get("seed") == seed
            and record.get("to_step") in steps and record.get("from_step") in steps)
