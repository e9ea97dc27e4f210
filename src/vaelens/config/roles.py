"""Everything that depends on which config keys change a result, derived from the fields' roles.

The run id (`config_hash`), the resume check (`resume_conflicts`), which configs may train as one
ensemble (`ensemble_key`) and which settings a neural run must share with its pointwise baseline
(`pairing_setup`) all read the role each field was declared with in `sections.py`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator

from vaelens.config.fields import ROLES
from vaelens.config.sections import SECTIONS


def config_fields() -> Iterator[tuple[str, dataclasses.Field]]:
    """(dotted key, dataclass field) of every config field, section by section."""
    for section_name, section in SECTIONS.items():
        for item in dataclasses.fields(section):
            yield f"{section_name}.{item.name}", item


def field_info(key: str) -> dict:
    """The metadata a field was declared with (role, check, flags); KeyError for an unknown key."""
    for dotted, item in config_fields():
        if dotted == key:
            return dict(item.metadata)
    raise KeyError(key)


def keys_where(**conditions) -> tuple[str, ...]:
    """Dotted keys whose declaration matches every condition, e.g. keys_where(role="execution")."""
    return tuple(key for key, item in config_fields()
                 if all(item.metadata.get(name) == value for name, value in conditions.items()))


def undeclared_fields() -> list[str]:
    """Keys declared without a known role (a test keeps this empty: every new field must say what it changes)."""
    return [key for key, item in config_fields() if item.metadata.get("role") not in ROLES]


def _flat(values: dict) -> dict:
    return {f"{section}.{name}": value for section, fields in values.items() for name, value in fields.items()}


def _nested(flat: dict) -> dict:
    nested: dict = {}
    for key, value in flat.items():
        section, name = key.split(".", 1)
        nested.setdefault(section, {})[name] = value
    return nested


MEANING_CHANGES = {
    ("loss.convention", "convex"): ("loss.convex_rule", "neural term weighted by w_p (0.2)"),
    ("model.name", "resnet"): ("model.resnet_layout", "latent-diffusion: one-sided downsampler padding, [-1, 1] "
                                                      "inside, one GroupNorm group count"),
}
"""(key, value) -> (marker key, marker) added to the hashed values of configs whose meaning changed while
their keys did not, so they must not share a run id (a rerun of an old sweep retrains such runs instead of
mixing the two meanings): a convex run of 0.1 ignored w_p, one of 0.2 applies it; the resnet model was
brought to latent-diffusion's layout (so that it exports to diffusers exactly), and its earlier checkpoints
are refused (VAE.architecture)."""


def config_hash(config) -> str:
    """A short, stable hash of the resolved config with the execution keys left out: it names run
    directories, so equal configs share one, and switching the fast path on does not retrain a sweep.
    Fields added later are left out at their default, so a run id handed out before they existed holds."""
    execution = set(keys_where(role="execution"))
    defaults = {key: item.default for key, item in config_fields() if item.metadata.get("added_later")}
    values = {key: value for key, value in _flat(dataclasses.asdict(config)).items()
              if key not in execution and not (key in defaults and value == defaults[key])}
    for (key, value), (marker, meaning) in MEANING_CHANGES.items():
        if values.get(key) == value:
            values[marker] = meaning
    return hashlib.sha256(json.dumps(_nested(values), sort_keys=True).encode()).hexdigest()[:12]


def resume_conflicts(saved: dict, current: dict) -> list[str]:
    """The result keys (other than resumable ones, like train.steps) whose value in `current` differs from
    the `saved` one, as 'key: saved (saved) != now (now)' lines; empty when a run may be resumed."""
    fixed = set(keys_where(role="result")) - set(keys_where(resumable=True))
    return [line for line in differences(saved, current) if line.split(":")[0] in fixed]


def differences(first: dict, second: dict, names: tuple[str, str] = ("saved", "now")) -> list[str]:
    """'key: a (first) != b (second)' for every dotted key whose value differs between two nested configs."""
    a, b = _flat(first), _flat(second)
    return [f"{key}: {a.get(key)!r} ({names[0]}) != {b.get(key)!r} ({names[1]})"
            for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def ensemble_key(config) -> str:
    """Every setting but the per-member ones (loss.beta, train.seed) as a canonical JSON string: configs
    with equal keys may train together as one ensemble (one device, one loop, one shared schedule)."""
    per_member = set(keys_where(per_member=True))
    values = {key: value for key, value in _flat(dataclasses.asdict(config)).items() if key not in per_member}
    return json.dumps(_nested(values), sort_keys=True)


def pairing_setup(config: dict, compared_terms: tuple[str, ...], exclude: tuple[str, ...] = ()) -> dict:
    """The result settings of a nested config dict that a neural run and its pointwise baseline must share:
    every result key except those configuring a compared reconstruction term (`compared_terms`, e.g.
    perceptual and adversarial) and those in `exclude` (the axes the pairing handles itself)."""
    varying = {key for key, item in config_fields() if item.metadata.get("term") in compared_terms}
    wanted = [key for key in keys_where(role="result") if key not in varying and key not in exclude]
    flat = _flat({section: values for section, values in config.items() if isinstance(values, dict)})
    return {key: flat.get(key) for key in wanted}
