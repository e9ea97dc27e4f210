"""Lazy package exports: a package lists what each of its modules exports, and a name's module is imported
on first use, so `import vaelens.metrics` stays light (no torchmetrics, scikit-learn or LPIPS until a metric
needs them) and the command line starts without importing torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def exported_names(modules: dict[str, tuple[str, ...]]) -> list[str]:
    """Every exported name, module by module (a package's __all__)."""
    return [name for names in modules.values() for name in names]


def lazy_getattr(package: str, modules: dict[str, tuple[str, ...]]) -> Callable[[str], object]:
    """A module-level __getattr__ for `package` that imports each name from the module listing it."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str):
        if name in where:
            return getattr(importlib.import_module(where[name]), name)
        raise AttributeError(f"module '{package}' has no attribute '{name}'")

    return __getattr__
