"""Run configuration: dataclasses with a docstring and a role per field, YAML presets, dotted overrides."""

from vaelens.config.fields import ROLES
from vaelens.config.parse import (
    ConfigError,
    check_config,
    default_config,
    field_docs,
    from_dict,
    load_preset,
    load_yaml,
    parse_override,
    preset_names,
    resolve,
    safe_load_unique,
    save_yaml,
    to_dict,
    update,
)
from vaelens.config.roles import (
    config_hash,
    differences,
    ensemble_key,
    field_info,
    keys_where,
    pairing_setup,
    resume_conflicts,
    undeclared_fields,
)
from vaelens.config.sections import SECTIONS, DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig

__all__ = ["ROLES", "SECTIONS", "ConfigError", "DataConfig", "LossConfig", "ModelConfig", "RunConfig", "TrainConfig",
           "check_config", "config_hash", "default_config", "differences", "ensemble_key", "field_docs", "field_info",
           "from_dict", "keys_where", "load_preset", "load_yaml", "pairing_setup", "parse_override", "preset_names",
           "resolve", "resume_conflicts", "safe_load_unique", "save_yaml", "to_dict", "undeclared_fields", "update"]
