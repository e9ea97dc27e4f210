"""Sweep specs: a base config plus grid and zipped axes over any config keys, expanded to run tasks.

A spec is a YAML mapping:

    name: dsprites-beta            # optional label
    preset: dsprites-bvae          # optional shipped preset
    config: base.yaml              # optional YAML config file (relative to the spec file)
    overrides: {data.subset: 512}  # optional dotted (or nested) values, or a list of "key=value"
    grid: {loss.beta: [1, 4], train.seed: [0, 1]}           # every combination
    zip: [{loss.perceptual: [null, lpips-vgg], loss.convention: [additive, convex]}]  # in step
    analyze: true                  # analyse each run after training (RUN_DIR/analysis.json)
    analysis_images: 2000          # images encoded by the analysis (default "auto")
    analysis_quick: true           # smaller disentanglement estimates in the analysis
    analysis: {disentanglement: false, distortion_images: 128, seed: 0}  # any AnalysisOptions field
    executors: {ensemble: {max_models: 16}}  # options of an executor, used when it runs the sweep

Runs are ordered by the grid axes first, then each zip group, in the order written, the last axis
varying fastest; the order is therefore a pure function of the spec.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from vaelens import config as config_module
from vaelens.analysis.options import AnalysisOptions
from vaelens.analysis.sample_size import DEFAULT_IMAGES
from vaelens.claims_design import ClaimsDesign
from vaelens.config import ConfigError, safe_load_unique
from vaelens.config.parse import DuplicateKey
from vaelens.dotted import flatten_dotted
from vaelens.sweep.executors import executor_options
from vaelens.sweep.tasks import RunTask


@dataclass
class SweepSpec:
    name: str = "sweep"
    """A label for the sweep (shown in the summary and the report)."""
    preset: str | None = None
    """Shipped preset the base config starts from (None: the defaults)."""
    config: str | None = None
    """YAML config file applied after the preset (absolute once loaded)."""
    overrides: dict = field(default_factory=dict)
    """Dotted key -> value applied after the preset and config file."""
    grid: dict = field(default_factory=dict)
    """Dotted key -> list of values; every combination of the lists is one run."""
    zip: list = field(default_factory=list)
    """Groups of dotted key -> equal-length lists whose i-th values go together in one run."""
    analyze: bool = True
    """Analyse each finished run (RUN_DIR/analysis.json)."""
    analysis_images: int | str = DEFAULT_IMAGES
    """Images the analysis encodes per run, or "auto" (vaelens.analysis.sample_size)."""
    analysis_quick: bool = True
    """Use the analysis' smaller disentanglement estimates."""
    analysis: dict = field(default_factory=dict)
    """Further analysis options by AnalysisOptions field name (disentanglement, distortion_images, seed, ...);
    they take precedence over analyze / analysis_images / analysis_quick."""
    executors: dict = field(default_factory=dict)
    """Executor name -> its options (e.g. ensemble: {max_models: 16}), used when that executor runs the sweep;
    command-line options override them."""
    claims: dict = field(default_factory=dict)
    """The claims' design, declared before the data (vaelens.claims_design.ClaimsDesign fields: primary_setting,
    endpoints, rate_windows, alpha, min_seeds); the report decides by it. Empty: the default design."""

    def analysis_options(self) -> AnalysisOptions:
        """How each run of the sweep is analysed (unknown option names are an error naming the valid ones)."""
        base = {"enabled": self.analyze, "images": self.analysis_images, "quick": self.analysis_quick}
        return AnalysisOptions.from_mapping({**base, **(self.analysis or {})})


SPEC_KEYS = tuple(SweepSpec.__dataclass_fields__)


def _flat_overrides(overrides, where: str) -> dict:
    if overrides is None:
        return {}
    if isinstance(overrides, list):
        return dict(config_module.parse_override(str(text)) for text in overrides)
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}: 'overrides' must be a mapping of key: value or a list of "
                          f"'key=value' strings, got {type(overrides).__name__}")
    return flatten_dotted(overrides)


def _check_axis(key, values, where: str) -> list:
    if not isinstance(key, str):
        raise ConfigError(f"{where}: axis key {key!r} must be a dotted config key such as loss.beta")
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: axis '{key}' must be a non-empty list of values, got {values!r}")
    probe = config_module.default_config()
    for value in values:
        config_module.update(probe, {key: value})  # names an unknown key or a wrongly typed value
    return values


def _validate(spec: SweepSpec, where: str) -> SweepSpec:
    spec.overrides = _flat_overrides(spec.overrides, where)
    if not isinstance(spec.grid, dict):
        raise ConfigError(f"{where}: 'grid' must map config keys to lists of values")
    if not isinstance(spec.zip, list) or not all(isinstance(group, dict) for group in spec.zip):
        raise ConfigError(f"{where}: 'zip' must be a list of mappings, each key -> equal-length list")
    seen: set[str] = set()
    for key, values in spec.grid.items():
        _check_axis(key, values, f"{where} grid")
        seen.add(key)
    for number, group in enumerate(spec.zip):
        lengths = {key: len(_check_axis(key, values, f"{where} zip[{number}]")) for key, values in group.items()}
        if len(set(lengths.values())) > 1:
            raise ConfigError(f"{where} zip[{number}]: zipped lists must have equal lengths, got {lengths}")
        for key in group:
            if key in seen:
                raise ConfigError(f"{where}: '{key}' appears in more than one axis; an axis key may "
                                  "appear once in grid or zip")
            seen.add(key)
    if not isinstance(spec.analysis, dict):
        raise ConfigError(f"{where}: 'analysis' must map analysis option names to values")
    try:
        spec.analysis_options().check()
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where}: {error}") from error
    if not isinstance(spec.executors, dict):
        raise ConfigError(f"{where}: 'executors' must map executor names to option mappings")
    for name, options in spec.executors.items():
        try:
            executor_options(name, options if isinstance(options, dict) else {})
        except (ValueError, TypeError) as error:
            raise ConfigError(f"{where} executors: {error}") from error
    try:  # a design the report would refuse is refused before any model trains
        ClaimsDesign.from_json(spec.claims or None)
    except (ValueError, TypeError, AttributeError) as error:
        raise ConfigError(f"{where} claims: {error}") from error
    base_config(spec)  # the preset, file and overrides must resolve on their own
    return spec


def shipped_spec_names() -> list[str]:
    """Names of the example sweep specs shipped with vaelens (usable in place of a path)."""
    folder = resources.files("vaelens") / "configs" / "sweeps"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _spec_path(source) -> Path:
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if str(source) in shipped_spec_names():
        return Path(str(resources.files("vaelens") / "configs" / "sweeps" / f"{source}.yaml"))
    raise ConfigError(f"sweep spec not found: {path}; give a YAML file or a shipped spec name "
                      f"({', '.join(shipped_spec_names())})")


def load_spec(source, base_dir: str | Path | None = None) -> SweepSpec:
    """Read a spec from a YAML file (or a shipped spec's name), a mapping, or a SweepSpec; unknown keys are
    errors naming the valid ones.

    A relative `config` path is taken relative to the spec file (or `base_dir`, or the current folder).
    """
    if isinstance(source, SweepSpec):
        values, where = asdict(source), "sweep spec"
    elif isinstance(source, dict):
        values, where = copy.deepcopy(source), "sweep spec"
    else:
        path = _spec_path(source)
        try:
            values = safe_load_unique(path.read_text()) or {}
        except DuplicateKey as error:
            raise ConfigError(f"sweep spec {path}: {error}") from error
        except yaml.YAMLError as error:
            raise ConfigError(f"sweep spec {path} is not valid YAML: {error}") from error
        where, base_dir = f"sweep spec {path}", base_dir or path.parent
        if not isinstance(values, dict):
            raise ConfigError(f"{where} must hold a mapping, got {type(values).__name__}")
    unknown = sorted(set(values) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(SPEC_KEYS)}")
    spec = SweepSpec(**values)
    if spec.config:
        config_path = Path(spec.config).expanduser()
        if not config_path.is_absolute():
            config_path = Path(base_dir or ".") / config_path
        spec.config = str(config_path.resolve())
    return _validate(spec, where)


def base_config(spec: SweepSpec) -> config_module.RunConfig:
    """The resolved config every run starts from, before its axis values."""
    config = config_module.resolve(spec.preset, spec.config)
    return config_module.update(config, spec.overrides)


def axis_points(spec: SweepSpec) -> list[dict]:
    """Every run's axis values (dotted key -> value), in the sweep's deterministic order."""
    factors = [[{key: value} for value in values] for key, values in spec.grid.items()]
    for group in spec.zip:
        length = len(next(iter(group.values()))) if group else 0
        factors.append([{key: values[i] for key, values in group.items()} for i in range(length)])
    points = []
    for combination in itertools.product(*factors):
        point: dict = {}
        for part in combination:
            point.update(part)
        points.append(point)
    return points


def expand(spec: SweepSpec, sweep_dir: str | Path = ".") -> list[RunTask]:
    """The sweep's runs as RunTasks under SWEEP_DIR/runs/<run_id>, in a deterministic order.

    Axis values that resolve to the same config (e.g. a perceptual weight while the perceptual term
    is off) are one run: the first point keeps it.
    """
    tasks, seen = [], set()
    for axes in axis_points(spec):
        config = config_module.update(base_config(spec), axes)
        # The sweep shows its own progress; the training bar is switched per run by the executor.
        config.train.progress = False
        run_id = config_module.config_hash(config)
        if run_id in seen:
            continue
        seen.add(run_id)
        tasks.append(RunTask(run_id=run_id, config=config, axes=axes, run_dir=Path(sweep_dir) / "runs" / run_id,
                             analysis=spec.analysis_options()))
    return tasks


def spec_to_dict(spec: SweepSpec) -> dict:
    """The spec as a plain mapping (what spec.yaml and sweep.json hold)."""
    return asdict(spec)


def spec_to_yaml(spec: SweepSpec) -> str:
    return yaml.safe_dump(spec_to_dict(spec), sort_keys=False)
