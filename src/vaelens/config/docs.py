"""The resolved config as YAML with every field's documentation as comments: a working starting config."""

from __future__ import annotations

import textwrap

import yaml

from vaelens.config.parse import field_docs
from vaelens.config.roles import field_info
from vaelens.config.sections import SECTIONS, RunConfig

WIDTH = 100
"""Comment lines are wrapped to this many characters."""


def _value(value) -> str:
    """One value in YAML flow style (null, true, 1.0e-04, [1, 2, 2], 'text')."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def documented_yaml(config: RunConfig) -> str:
    """Every section and key of `config` as YAML; above each key, its docstring and role as comments.
    Loading the text back (vaelens --config FILE) gives `config` again."""
    lines = ["# vaelens run configuration: every key with its documentation; edit, then",
             "#   vaelens train --config THIS_FILE --out RUN_DIR",
             "# [result] keys change what a run computes (they are part of its run id), [bookkeeping] keys how it",
             "# is watched and recorded, [execution] keys how the same computation runs.", ""]
    for section_name, section_class in SECTIONS.items():
        lines.append(f"{section_name}:")
        section = getattr(config, section_name)
        for key, doc in field_docs(section_class).items():
            role = field_info(f"{section_name}.{key}")["role"]
            text = " ".join(doc.split()) + f" [{role}]"
            lines += ["  # " + line for line in textwrap.wrap(text, WIDTH - 4)]
            lines.append(f"  {key}: {_value(getattr(section, key))}")
        lines.append("")
    return "\n".join(lines)
