"""The errors vaelens raises on purpose. Their messages say what happened and what to do, so the command
line prints them as one line; anything else is a bug (or an unexpected failure) and keeps its traceback."""

from __future__ import annotations


class VaelensError(Exception):
    """Base of every deliberate vaelens error."""


class DeviceUnavailable(VaelensError, RuntimeError):
    """A setting asks for a device (CUDA) this machine does not have."""


class MissingDependency(VaelensError, ImportError):
    """An optional package a chosen feature needs is not installed; the message names the pip extra."""


class UnsafePickle(VaelensError):
    """A file holds a Python pickle that torch refused to load safely; vaelens never unpickles it."""

    def __init__(self, path, what: str = "file"):
        super().__init__(
            f"{path} is not a safe checkpoint: it is a Python pickle holding objects other than tensors, which "
            f"could run code when loaded, and vaelens will not unpickle it. If you trust its origin, convert the "
            f"{what} to safetensors on a machine where you may (safetensors.torch.save_file of its state dict), "
            "then point vaelens at the converted file")
