"""Which torch device a setting names: 'cpu', 'cuda', 'cuda:N', 'auto' (CUDA when available)."""

from __future__ import annotations

import torch

from vaelens.errors import DeviceUnavailable


def resolve_device(name, setting: str = "device") -> torch.device:
    """torch.device from 'cpu' | 'cuda' | 'cuda:N' | 'auto' (CUDA when available) or a torch.device.

    A CUDA request on a machine without CUDA raises a RuntimeError naming `setting` (the config key
    or option the value came from, e.g. "train.device"), so the user knows what to change.
    """
    if isinstance(name, str) and name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"{setting}={name!r} is not a device; use cpu, cuda, cuda:N or auto") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable(f"{setting}={name} but CUDA is not available here; use {setting}=cpu or auto")
    return device
