"""The errors vaelens raises on purpose. Their messages say what happened and what to do, so the command
line prints them as one line; anything else is a bug (or an unexpected failure) and keeps its traceback."""

from __future__ import annotations


class VaelensError(Exception):
    """Base of every deliberate vaelens error."""


class DeviceUnavailable(VaelensError, RuntimeError):
    """A setting asks for a device (CUDA) this machine does not have."""


class MissingDependency(VaelensError, ImportError):
    """An optional package a chosen feature needs is not installed; the message names the pip extra."""
