"""Reading configs: YAML presets and files, dotted key=value overrides, type and value checks.

Every field is validated by type and by its declared check when it is set from YAML or the command
line, and an unknown key names itself and the valid keys, so a typo or a nonsensical value never
silently trains the wrong model.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from importlib import resources
from pathlib import Path

import yaml

from vaelens.config.sections import SECTIONS, RunConfig
from vaelens.dotted import flatten_dotted
from vaelens.io import atomic_write_text


class ConfigError(ValueError):
    """A configuration key or value that cannot be used; the message says which and why."""


def to_dict(config) -> dict:
    """Plain nested dict of a config dataclass (YAML/JSON friendly)."""
    return dataclasses.asdict(config)


def field_docs(cls) -> dict[str, str]:
    """Field name -> docstring, read from the string literal that follows each field in the source."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for node, following in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr):
            if isinstance(following.value, ast.Constant) and isinstance(following.value.value, str):
                docs[node.target.id] = following.value.value
    return docs


def _coerce(value, annotation, key: str):
    """Check `value` against a field annotation, converting where it is lossless (int -> float)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise ConfigError(f"unknown {key} {value!r}; choose one of: {', '.join(map(str, choices))}")
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{key}: {value!r} is not allowed")
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{key} expects a list of {item_type.__name__}, got {value!r}")
        return [_coerce(item, item_type, f"{key}[{i}]") for i, item in enumerate(value)]
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} expects a number (float), got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} expects an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} expects true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} expects a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported field type {annotation}")


def _apply(config, key: str, value) -> None:
    """Set a dotted key on a nested config dataclass, validating the key and the value's type."""
    parts = key.split(".")
    target = config
    for depth, part in enumerate(parts):
        hints = typing.get_type_hints(type(target))
        if part not in hints:
            prefix = ".".join(parts[:depth])
            valid = ", ".join(f"{prefix + '.' if prefix else ''}{name}" for name in hints)
            raise ConfigError(f"unknown config key '{key}'; valid keys here: {valid}")
        if depth == len(parts) - 1:
            if dataclasses.is_dataclass(hints[part]):
                raise ConfigError(f"'{key}' is a section; set one of its keys, e.g. {key}.<name>")
            value = _coerce(value, hints[part], key)
            _check_value(target, part, value, key)
            setattr(target, part, value)
        else:
            target = getattr(target, part)
            if not dataclasses.is_dataclass(target):
                raise ConfigError(f"'{'.'.join(parts[: depth + 1])}' is a value, not a section")


def _check_value(section, name: str, value, key: str) -> None:
    """Apply the check the field was declared with (None passes: it means "off" or "all")."""
    check = {item.name: item for item in dataclasses.fields(section)}[name].metadata.get("check")
    problem = check(value) if check is not None and value is not None else None
    if problem:
        raise ConfigError(f"{key} {problem}, got {value!r}")


def check_config(config: RunConfig) -> RunConfig:
    """Re-check every field of a config built or edited in Python (types, choices and value checks),
    naming the first bad key; returns the config."""
    for section_name in SECTIONS:
        section = getattr(config, section_name)
        hints = typing.get_type_hints(type(section))
        for item in dataclasses.fields(section):
            key = f"{section_name}.{item.name}"
            value = _coerce(getattr(section, item.name), hints[item.name], key)
            _check_value(section, item.name, value, key)
    return config


def update(config: RunConfig, values: dict) -> RunConfig:
    """Apply a (nested or dotted) mapping of values to `config` in place and return it."""
    for key, value in flatten_dotted(values).items():
        _apply(config, key, value)
    return config


def default_config() -> RunConfig:
    """A RunConfig of every section's defaults, each section built from its SECTIONS class (so a section a
    plugin or a test extends is the one every config is read into)."""
    return RunConfig(**{name: section() for name, section in SECTIONS.items()})


def from_dict(values: dict) -> RunConfig:
    """Build a RunConfig from defaults plus a nested mapping (as saved in a run's config.yaml)."""
    return update(default_config(), values)


def parse_override(text: str) -> tuple[str, object]:
    """Split 'a.b=value' and parse the value as YAML (so 4 is an int, 1e-4 a float, null None)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value, e.g. loss.beta=4")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else ""
    # YAML 1.1 reads "1e-4" as a string; accept it as the number a user meant. "nan" and "inf" become
    # numbers too, so that the field's own check says what is wrong with them.
    if isinstance(value, str):
        try:
            numeric = any(c in value for c in ".eE") or value.strip().lower().lstrip("+-") in ("nan", "inf")
            value = float(value) if numeric else value
        except ValueError:
            pass
    return key.strip(), value


def preset_names() -> list[str]:
    """Names of the YAML presets shipped with vaelens."""
    folder = resources.files("vaelens") / "configs"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


class DuplicateKey(yaml.YAMLError):
    """A YAML mapping names the same key twice; the message names the key and both lines."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping holding the same key twice (PyYAML keeps the last silently, so
    `loss: {beta: 1, beta: 64}` would train at 64)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKey(f"the key '{key}' appears twice in one mapping (lines {seen[key]} and {line}); "
                                   "keep one")
            seen[key] = line
        return super().construct_mapping(node, deep)


def safe_load_unique(text: str):
    """yaml.safe_load, refusing duplicate keys (one owner for every YAML vaelens reads: configs, sweep specs)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        values = safe_load_unique(path.read_text()) or {}
    except DuplicateKey as error:
        raise ConfigError(f"config file {path}: {error}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(values).__name__}")
    return values


def load_preset(name: str) -> dict:
    """The mapping stored in a shipped preset."""
    if name not in preset_names():
        raise ConfigError(f"unknown preset '{name}'; available presets: {', '.join(preset_names())}")
    resource = resources.files("vaelens") / "configs" / f"{name}.yaml"
    return safe_load_unique(resource.read_text()) or {}


def resolve(preset: str | None = None, config_file: str | Path | None = None,
            overrides: typing.Sequence[str] = ()) -> RunConfig:
    """Defaults, then a preset, then a YAML file, then key=value overrides, in that order."""
    config = default_config()
    if preset:
        update(config, load_preset(preset))
    if config_file:
        update(config, load_yaml(config_file))
    for text in overrides:
        _apply(config, *parse_override(text))
    return config


def save_yaml(config, path: str | Path) -> None:
    """Write the fully resolved config atomically."""
    atomic_write_text(Path(path), yaml.safe_dump(to_dict(config), sort_keys=False))
