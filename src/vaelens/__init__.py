"""vaelens: what your reconstruction loss does to a VAE's latent space.

The top-level names are imported lazily so that `import vaelens.metrics` stays light.
"""

from __future__ import annotations

from vaelens.lazy import exported_names, lazy_getattr

__version__ = "0.1.0"

_MODULES = {
    "vaelens.config": ("RunConfig", "resolve"),
    "vaelens.runs": ("LoadedRun", "load_run"),
    "vaelens.training": ("RunResult", "train"),
    "vaelens.analysis": ("analyze",),
}

__all__ = [*exported_names(_MODULES), "__version__"]

__getattr__ = lazy_getattr(__name__, _MODULES)
