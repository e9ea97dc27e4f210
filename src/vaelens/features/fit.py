"""Fit a feature network on the data vaelens has: supervised on ground-truth factors, or self-supervised.

    network, metadata = fit_feature_network(DataConfig(name="dsprites", subset=20000), "supervised", steps=600)

Methods (see `objectives`): `supervised` classifies every ground-truth factor (needs data with
factors, e.g. dSprites); `denoising` restores clean images from noised, block-masked ones;
`contrastive` is SimCLR's NT-Xent on two augmented views. Held-out numbers are measured on the
data's test split before and after fitting. On the CPU the result is a pure function of the
arguments (weights, batch order, noise and augmentations are all drawn from `seed`).
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from vaelens import __version__
from vaelens.data import load_dataset
from vaelens.devices import resolve_device
from vaelens.errors import VaelensError
from vaelens.features.network import DEFAULT_WIDTHS, FeatureNetwork
from vaelens.features.objectives import ContrastiveObjective, DenoisingObjective, SupervisedObjective
from vaelens.sampling import random_subset


class FeatureFitDiverged(VaelensError, RuntimeError):
    """The feature network's objective became NaN or infinite; the message says which setting to lower."""


METHODS = ("supervised", "denoising", "contrastive")
EVAL_IMAGES = 2048
"""Held-out images scored (a seeded random sample of the test split when it is larger)."""
FINAL_OBJECTIVE_WINDOW = 0.1
"""The reported final training objective averages the last 10% of steps (a single batch is noisy)."""


def _check_arguments(method: str, steps: int, batch_size: int, lr: float, seed: int) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")


def _build_objective(method: str, network: FeatureNetwork, train_data):
    if method == "supervised":
        if train_data.factors is None:
            raise ValueError(f"method='supervised' classifies ground-truth factors, but the data set "
                             f"'{train_data.name}' has none; use method='denoising' or 'contrastive' "
                             "(self-supervised), or data with factors such as dsprites")
        return SupervisedObjective(network, train_data.factors.names, train_data.factors.sizes)
    if method == "denoising":
        return DenoisingObjective(network)
    return ContrastiveObjective(network)


def _labels(data, indices: torch.Tensor, device) -> torch.Tensor | None:
    return None if data.factors is None else data.factors.classes[indices].to(device)


def _epoch_batches(count: int, batch_size: int, steps: int, generator: torch.Generator):
    """Index batches for `steps` steps: a fresh permutation each epoch, the last partial batch dropped."""
    per_epoch = count // batch_size
    order = None
    for step in range(steps):
        position = step % per_epoch
        if position == 0:
            order = torch.randperm(count, generator=generator)
        yield order[position * batch_size:(position + 1) * batch_size]


def _held_out_set(test_data, max_images: int, seed: int, device) -> tuple[torch.Tensor, torch.Tensor | None]:
    # A seeded random sample: the test split is stored in index order (for dSprites, sorted by factor).
    indices = random_subset(test_data.num_images, max_images, seed)
    return test_data.images(indices).to(device), _labels(test_data, indices, device)


def _load_splits(data_config, batch_size: int, device):
    """(training split on `device`, test split) of `data_config`, checked for what fitting needs."""
    train_data = load_dataset(data_config, split="train").to(device)
    test_data = load_dataset(data_config, split="test")
    if batch_size > train_data.num_images:
        raise ValueError(f"batch_size={batch_size} exceeds the {train_data.num_images} training images; "
                         "lower batch_size or use more data")
    _, height, width = train_data.image_shape
    if height != width:
        raise ValueError(f"feature networks are fitted on square images, got {height}x{width}")
    return train_data, test_data


def _optimise(modules: torch.nn.ModuleList, network: FeatureNetwork, objective, train_data, *, method: str,
              steps: int, batch_size: int, lr: float, seed: int, device, progress: bool) -> list[float]:
    """Adam on `modules` over `steps` batches of `objective`; returns the training objective of every step."""
    optimizer = torch.optim.Adam(modules.parameters(), lr=lr)
    # Cosine decay to 5% of lr: short fits end noticeably better than with a constant rate.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=0.05 * lr)
    noise_generator = torch.Generator(device).manual_seed(seed + 1)
    batches = _epoch_batches(train_data.num_images, batch_size, steps, torch.Generator().manual_seed(seed))
    losses = []
    bar = tqdm(batches, total=steps, desc=f"fitting {method} features", unit="step", disable=not progress)
    for step, indices in enumerate(bar):
        images = train_data.images(indices).to(device)
        loss = objective.loss(network, images, _labels(train_data, indices, device), noise_generator)
        if not torch.isfinite(loss):
            raise FeatureFitDiverged(f"the {method} objective became {float(loss)} at step {step}; lower lr (now {lr})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if step % 10 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    bar.close()
    return losses


def fit_feature_network(data_config, method: str, steps: int, batch_size: int = 64, lr: float = 1e-3,
                        seed: int = 0, device="cpu", progress: bool = True,
                        widths: Sequence[int] = DEFAULT_WIDTHS, convs_per_stage: int = 1,
                        eval_images: int = EVAL_IMAGES) -> tuple[FeatureNetwork, dict]:
    """Fit a `FeatureNetwork` on the training split of `data_config` with `method`.

    data_config: a `vaelens.config.DataConfig` (or anything with its fields). Returns the network
    (eval mode, on `device`, heads discarded) and JSON-friendly metadata: method, objective, data,
    optimisation settings, training objective (first step and final), held-out metrics before
    (`held_out_at_init`) and after (`held_out`) fitting, architecture, versions and date.
    """
    _check_arguments(method, steps, batch_size, lr, seed)
    device = resolve_device(device)
    started = time.perf_counter()
    train_data, test_data = _load_splits(data_config, batch_size, device)
    channels, height, _ = train_data.image_shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = FeatureNetwork(channels, height, widths, convs_per_stage)
        objective = _build_objective(method, network, train_data)
    network.to(device)
    objective.head.to(device)
    held_out_images, held_out_labels = _held_out_set(test_data, eval_images, seed, device)

    modules = torch.nn.ModuleList([network, objective.head])
    modules.eval()
    held_out_at_init = objective.evaluate(network, held_out_images, held_out_labels)
    modules.train()
    losses = _optimise(modules, network, objective, train_data, method=method, steps=steps, batch_size=batch_size,
                       lr=lr, seed=seed, device=device, progress=progress)
    modules.eval()
    held_out = objective.evaluate(network, held_out_images, held_out_labels)
    network.requires_grad_(False)
    window = max(1, round(FINAL_OBJECTIVE_WINDOW * steps))
    metadata = {
        "method": method,
        "objective": objective.description,
        "objective_value": {"first_step": losses[0], "final": sum(losses[-window:]) / window,
                            "final_window_steps": window},
        "held_out": held_out,
        "held_out_at_init": held_out_at_init,
        "data": {"config": dataclasses.asdict(data_config) if dataclasses.is_dataclass(data_config)
                 else dict(vars(data_config)),
                 "train": train_data.describe(), "test": test_data.describe()},
        "steps": steps, "batch_size": batch_size, "lr": float(lr), "seed": seed, "device": str(device),
        **network.architecture(),
        "vaelens_version": __version__, "torch_version": torch.__version__,
        # CPU kernels split their sums by thread, so the weights are bit-reproducible only at the same count.
        "torch_threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "fit_seconds": round(time.perf_counter() - started, 2),
    }
    return network, metadata
