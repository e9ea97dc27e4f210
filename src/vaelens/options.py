"""Command-line options generated from a config dataclass: one --option per field, documented by its docstring.

    add_dataclass_options(parser, TheoryConfig, names={"num_samples": "--samples"})
    config = dataclass_from_options(TheoryConfig, parser.parse_args(argv))

A field's annotation gives the option's type and its default the option's default; its docstring
(`vaelens.config.field_docs`) is the help. A bool field that defaults to true becomes --no-<name>.
List fields take a comma-separated value (empty means None where the field allows it), converted by
`dataclass_from_options` so that a bad item is a ValueError naming the option (the command line
reports it as one line).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing

from vaelens.config import field_docs


def _option_kind(annotation) -> tuple[type, bool, bool]:
    """(scalar type, is a list, may be None) of a field annotation such as int or list[float] | None."""
    optional = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(annotation) if option is not type(None)]
        if len(options) != 1:
            raise TypeError(f"no command-line form for the annotation {annotation}")
        annotation, optional = options[0], True
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0], True, optional
    if annotation in (int, float, str, bool):
        return annotation, False, optional
    raise TypeError(f"no command-line form for the annotation {annotation}")


def _default(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def option_name(field_name: str, names: dict[str, str] | None = None) -> str:
    """The option of a field: `names[field_name]` where given, else --field-name."""
    return (names or {}).get(field_name, "--" + field_name.replace("_", "-"))


def add_dataclass_options(parser, cls, names: dict[str, str] | None = None, prefix: str = "",
                          unset: bool = False) -> None:
    """Add one option per field of dataclass `cls` to `parser` (an ArgumentParser or an argument group; dest = the
    field name). `prefix` heads each help text (e.g. "ray: "). With `unset`, an option not given is None rather
    than the field's default, so a caller can pass on only what was given (the executors' options)."""
    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    for field in dataclasses.fields(cls):
        kind, is_list, _ = _option_kind(hints[field.name])
        default, doc = _default(field), docs.get(field.name, "").rstrip(".")
        option = option_name(field.name, names)
        if kind is bool and default is True:
            parser.add_argument("--no-" + option[2:], dest=field.name, action="store_false",
                                default=None if unset else True, help=f"{prefix}do not {doc[:1].lower()}{doc[1:]}")
            continue
        if kind is bool:
            parser.add_argument(option, dest=field.name, action="store_true", default=None if unset else False,
                                help=prefix + doc)
            continue
        metavar = option[2:].upper().replace("-", "_")
        if is_list:
            shown = "none" if default is None else ",".join(str(item) for item in default)
            parser.add_argument(option, dest=field.name, metavar=metavar,
                                default=None if default is None or unset else shown,
                                help=f"{prefix}{doc} (comma-separated; default {shown})")
        else:
            parser.add_argument(option, dest=field.name, metavar=metavar, type=kind,
                                default=None if unset else default, help=f"{prefix}{doc} (default {default})")


def _comma_list(text: str, kind: type, option: str) -> list:
    try:
        return [kind(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise ValueError(f"{option} must be a comma-separated list, got {text!r}") from error


def dataclass_from_options(cls, args: argparse.Namespace, names: dict[str, str] | None = None):
    """An instance of `cls` from options added by `add_dataclass_options` (comma lists parsed here)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        value = getattr(args, field.name)
        kind, is_list, optional = _option_kind(hints[field.name])
        if is_list and value is not None:
            # An empty value of a list that may be None asks for None (the field's own choice).
            value = None if optional and not value else _comma_list(value, kind, option_name(field.name, names))
        values[field.name] = value
    return cls(**values)
