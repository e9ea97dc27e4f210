"""Which torch device a setting names."""

from __future__ import annotations

import torch


def resolve_device(name) -> torch.device:
    """'auto' -> cuda when available, else cpu; any other name as torch.device, refusing CUDA where there is none."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={name} but CUDA is not available here; use train.device=cpu or auto")
    return device
