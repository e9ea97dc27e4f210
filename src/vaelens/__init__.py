"""vaelens: what your reconstruction loss does to a VAE's latent space.

The top-level names are imported lazily so that `import vaelens.metrics` stays light.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "RunConfig": "vaelens.config",
    "resolve": "vaelens.config",
    "LoadedRun": "vaelens.runs",
    "load_run": "vaelens.runs",
    "RunResult": "vaelens.training",
    "train": "vaelens.training",
    "analyze": "vaelens.analysis",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vaelens' has no attribute '{name}'")
