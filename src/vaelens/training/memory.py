"""Whether a model fits in memory, checked before anything is allocated: a model of 10**9 latent units
otherwise ends in a 30-line allocation traceback (or the kernel's OOM killer) instead of one line that names
the key to lower.

The model is built on PyTorch's "meta" device, which records shapes and allocates nothing, so the count is
exact for every architecture in the registry. Training needs four float32 copies of the parameters (weights,
gradients, Adam's two moments); activations come on top and are not counted, so a refusal is certain and a
pass is not a promise.
"""

from __future__ import annotations

import dataclasses
import os

import torch

from vaelens.config import ModelConfig, RunConfig
from vaelens.models import build_model

TRAINING_COPIES = 4
"""float32 copies of each parameter that Adam training keeps: weights, gradients, first and second moment."""
SIZE_KEYS = ("latent_dim", "channels", "hidden_dim", "num_res_blocks", "channel_multipliers")
"""The model keys that set its size."""


def parameter_count(model_config: ModelConfig, image_shape) -> int:
    """The number of parameters of the model `model_config` builds for `image_shape` (nothing allocated)."""
    with torch.device("meta"):
        model = build_model(model_config, tuple(image_shape))
    return sum(parameter.numel() for parameter in model.parameters())


def available_bytes(device: torch.device) -> int | None:
    """Memory free for a new allocation on `device` (CUDA: the device's free memory; CPU: the kernel's
    MemAvailable, else total physical memory); None where it cannot be read."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _largest_key(model_config: ModelConfig, image_shape, count: int) -> str:
    """The size key whose value, set back to its default, shrinks the model most (the one to lower)."""
    defaults = ModelConfig()
    shrink = {}
    for key in SIZE_KEYS:
        if getattr(model_config, key) != getattr(defaults, key):
            smaller = dataclasses.replace(model_config, **{key: getattr(defaults, key)})
            shrink[key] = count - parameter_count(smaller, image_shape)
    return max(shrink, key=shrink.get) if shrink else "latent_dim"


def check_model_fits(config: RunConfig, image_shape, device: torch.device, members: int = 1) -> None:
    """Raise a ValueError naming the key to lower when training `members` such models cannot fit in memory."""
    count = parameter_count(config.model, image_shape)
    needed = count * TRAINING_COPIES * 4 * members
    free = available_bytes(torch.device(device))
    if free is None or needed <= free:
        return
    key = _largest_key(config.model, image_shape, count)
    of = f"{members} models of " if members > 1 else ""
    raise ValueError(f"model.{key}={getattr(config.model, key)} makes {of}model {config.model.name} {count:,} "
                     f"parameters: training needs at least {needed / 2**30:,.1f} GiB (weights, gradients and "
                     f"Adam's two moments in float32) and {device} has {free / 2**30:,.1f} GiB free; lower "
                     f"model.{key}")
