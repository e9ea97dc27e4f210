"""Metrics of latents and reconstructions: pure functions, tensors in, numbers out (nats for information).

    from vaelens.metrics import isoscore, mutual_information
    mutual_information(mu, logvar), isoscore(mu)

Every name a metric module lists in its `__all__` is exported here, imported lazily from that module, so
`import vaelens.metrics` stays light and only the module a name lives in is loaded (the distortions pull in
torchmetrics and lpips, disentanglement scikit-learn). The lists are read from the modules' source, so a new
metric is its function and its name in its own module's `__all__`, nothing here.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from vaelens.lazy import lazy_getattr

MODULES = ("information", "geometry", "variance", "spatial", "latent_stats", "distortion", "disentangle")
"""The metric modules, in the order their names are listed."""


@functools.cache
def _exports() -> dict[str, tuple[str, ...]]:
    """Module -> the names its `__all__` lists, read from its source without importing it."""
    exports = {}
    for short in MODULES:
        tree = ast.parse((Path(__file__).parent / f"{short}.py").read_text())
        listed = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                      and any(isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets))
        exports[f"vaelens.metrics.{short}"] = tuple(listed)
    return exports


def __getattr__(name: str):
    if name == "__all__":
        return [exported for names in _exports().values() for exported in names]
    return lazy_getattr(__name__, _exports())(name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__getattr__("__all__")])
