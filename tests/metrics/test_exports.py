"""`vaelens.metrics` exports every public metric of its modules, lazily, and the README example runs."""

from __future__ import annotations

import importlib
import inspect
import math
import os
import subprocess
import sys
from pathlib import Path

import vaelens
import vaelens.metrics

METRIC_MODULES = ("information", "geometry", "variance", "spatial", "latent_stats", "distortion", "disentangle")
README = Path(__file__).resolve().parents[2] / "README.md"


def _public_definitions(module) -> set[str]:
    """Functions and classes a module defines itself, without a leading underscore, and those its `__all__`
    re-exports (distortion re-exports SSIM from vaelens.distances, which the training losses share)."""
    exported = set(getattr(module, "__all__", ()))
    return {name for name, value in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
            and (value.__module__ == module.__name__ or name in exported)}


def test_every_exported_name_is_the_object_of_its_module():
    owners = {}
    for short in METRIC_MODULES:
        module = importlib.import_module(f"vaelens.metrics.{short}")
        for name in _public_definitions(module):
            owners[name] = module
    assert sorted(vaelens.metrics.__all__) == sorted(owners), "vaelens.metrics.__all__ must list each public metric"
    for name in vaelens.metrics.__all__:
        exported = getattr(vaelens.metrics, name)
        assert exported is getattr(owners[name], name), name
    namespace = {}
    exec("from vaelens.metrics import *", namespace)
    assert set(vaelens.metrics.__all__) <= set(namespace)


def test_unknown_name_is_an_attribute_error():
    try:
        vaelens.metrics.no_such_metric  # noqa: B018
    except AttributeError as error:
        assert "no_such_metric" in str(error)
    else:
        raise AssertionError("vaelens.metrics.no_such_metric should not exist")


def _run_python(code: str) -> str:
    source_root = str(Path(vaelens.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source_root, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importing_the_package_or_an_information_metric_stays_light():
    heavy = ("torchmetrics", "sklearn", "lpips", "vaelens.metrics.distortion", "vaelens.metrics.disentangle")
    output = _run_python(
        "import sys\nimport vaelens.metrics\nfrom vaelens.metrics import isoscore, mutual_information\n"
        f"print(sorted(name for name in {heavy!r} if name in sys.modules))"
    )
    assert output.strip() == "[]"


def _readme_metrics_example() -> str:
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("The metrics themselves are plain functions"))
    block = []
    for line in lines[start + 2:]:
        if not line.startswith("    "):
            break
        block.append(line[4:])
    return "\n".join(block)


def test_readme_example_runs():
    code = _readme_metrics_example()
    assert "from vaelens.metrics import" in code
    information, score = (float(value) for value in _run_python(code).split())
    assert 0 < information <= math.log(1000) and 0 < score <= 1
