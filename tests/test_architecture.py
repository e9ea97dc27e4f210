"""The package's shape, read from its source: every import points down the layers, no private helper crosses a
package, vaelens imports sit at the top of their modules (the command-line entry points excepted), and files and
functions stay small enough to read in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
LAYERS = (
    ("base", ("vaelens.errors", "vaelens.io", "vaelens.locks", "vaelens.dotted", "vaelens.lazy", "vaelens.devices",
              "vaelens.sampling", "vaelens.posterior", "vaelens.checks", "vaelens.quantities",
              "vaelens.claims_design")),
    ("config", ("vaelens.config", "vaelens.options")),
    ("data", ("vaelens.data",)),
    ("models", ("vaelens.models",)),
    ("distances", ("vaelens.distances",)),
    ("metrics", ("vaelens.metrics", "vaelens.theory.linear", "vaelens.theory.metric", "vaelens.theory.probe")),
    ("features", ("vaelens.features",)),
    ("losses", ("vaelens.losses",)),
    ("training", ("vaelens.training", "vaelens.runs", "vaelens.pretrained")),
    ("export", ("vaelens.export",)),
    ("analysis", ("vaelens.analysis", "vaelens.theory.sources", "vaelens.theory.config", "vaelens.theory.plots")),
    ("sweep", ("vaelens.sweep",)),
    ("report", ("vaelens.report",)),
    ("applications", ("vaelens.study", "vaelens.demo", "vaelens.theory", "vaelens.theory.experiment",
                      "vaelens.theory.cli", "vaelens.features.cli", "vaelens.export.cli", "vaelens.compare_cli",
                      "vaelens.cli_options")),
    ("command line", ("vaelens.cli", "vaelens.cli_errors")),
)
"""Lowest first: a module may import from its own layer and the ones before it. The longest matching prefix
places a module, so the theory's pure maths sits with the metrics and its experiment (which trains models) on
top."""
ENTRY_POINTS = ("vaelens.cli", "vaelens.features.cli", "vaelens.theory.cli", "vaelens.export.cli",
                "vaelens.compare_cli", "vaelens.cli_options")
"""Command-line modules: each handler imports what it runs when it runs, so `vaelens --help` stays light."""
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, ast.Module]:
    modules = {}
    for path in sorted((SOURCE / "vaelens").rglob("*.py")):
        name = ".".join(path.relative_to(SOURCE).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = ast.parse(path.read_text(), filename=str(path))
    return modules


MODULES = _modules()


def layer_of(module: str) -> int | None:
    matches = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1] if matches else None


def _imported(node) -> list[tuple[str, list[str]]]:
    """(vaelens module, names) of an import statement."""
    if isinstance(node, ast.Import):
        return [(alias.name, []) for alias in node.names if alias.name.startswith("vaelens")]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("vaelens"):
        names = [alias.name for alias in node.names]
        if node.module == "vaelens":
            return [(f"vaelens.{name}", []) if f"vaelens.{name}" in MODULES else ("vaelens", [name]) for name in names]
        return [(node.module, names)]
    return []


def test_every_module_has_a_layer():
    assert [name for name in MODULES if name != "vaelens" and layer_of(name) is None] == []


def test_no_import_runs_up_a_layer():
    upward = []
    for name, tree in MODULES.items():
        if name == "vaelens":  # the package's lazy exports reach every layer by design
            continue
        for node in ast.walk(tree):
            for target, _ in _imported(node):
                if target != "vaelens" and layer_of(target) > layer_of(name):
                    upward.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} "
                                  f"({LAYERS[layer_of(target)][0]})")
    assert upward == []


def test_no_private_name_crosses_a_package():
    crossing = []
    for name, tree in MODULES.items():
        package = name.split(".")[1] if "." in name else ""
        for node in ast.walk(tree):
            for target, names in _imported(node):
                target_package = target.split(".")[1] if "." in target else ""
                crossing += [f"{name} imports {target}.{item}" for item in names
                             if item.startswith("_") and not item.startswith("__") and target_package != package]
    assert crossing == []


def test_vaelens_imports_sit_at_the_top_of_their_module():
    inside = []
    for name, tree in MODULES.items():
        if name in ENTRY_POINTS:
            continue
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inside += [f"{name}.{function.name}: {target}" for node in ast.walk(function)
                           for target, _ in _imported(node)]
    assert inside == []


def test_files_and_functions_are_small():
    long_files = [f"{name}: {tree.body[-1].end_lineno} lines" for name, tree in MODULES.items()
                  if tree.body and tree.body[-1].end_lineno > MAX_FILE_LINES]
    long_functions = [f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines" for name, tree in MODULES.items()
                      for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long_files == [] and long_functions == []


def test_the_layer_check_would_catch_an_upward_import():
    tree = ast.parse("from vaelens.report.claims import evaluate_claims\n")
    (target, _), = [item for node in ast.walk(tree) for item in _imported(node)]
    assert layer_of(target) > layer_of("vaelens.losses.terms")
