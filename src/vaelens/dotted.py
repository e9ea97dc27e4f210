"""Nested mappings as one level of dotted keys: the shape of overrides and of analysis.json."""

from __future__ import annotations


def flatten_dotted(mapping: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}, "c": 2} -> {"a.b": 1, "c": 2}, every key preceded by `prefix`.

    Keys that are already dotted pass through unchanged, so nested and dotted forms mix freely.
    """
    flat = {}
    for name, value in mapping.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(flatten_dotted(value, key + "."))
        else:
            flat[key] = value
    return flat
