"""How a config field is declared: its role (what changing it changes) and the check its value must pass.

Every field of every section is declared with `result(...)`, `bookkeeping(...)` or `execution(...)`,
so the run id, the resume check, which runs may share an ensemble and which runs the claims may pair
are all derived from one place (`vaelens.config.roles`); a field declared without a role fails a test.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

ROLES = {
    "result": "changes what the run computes: part of the run id; must match on resume, within an ensemble "
              "(but for per-member keys) and between a neural run and its pointwise baseline",
    "bookkeeping": "how the run is watched, recorded or placed (logging, checkpoints, progress, device): part of "
                   "the run id (it names what the directory holds) and of an ensemble's shared settings, free on "
                   "resume, ignored when pairing runs",
    "execution": "how the same computation runs (memory layout, graph replay): results agree up to floating-point "
                 "rounding; left out of the run id, free on resume, ignored when pairing runs",
}
"""Role name -> what it means for the consumers of the config."""

Check = Callable[[object], "str | None"]
"""A value check: None when the value is acceptable, else what is wrong ("must be at least 1")."""


def _declare(role: str, default, factory, check: Check | None, **flags) -> dataclasses.Field:
    metadata = {"role": role, "check": check, **flags}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def result(default=dataclasses.MISSING, *, factory=dataclasses.MISSING, check: Check | None = None,
           resumable: bool = False, per_member: bool = False, term: str | None = None,
           added_later: bool = False) -> dataclasses.Field:
    """A field that changes what the run computes.

    `resumable`: may still change on resume (a run may be extended with more steps).
    `per_member`: members of one ensemble may differ in it (beta and seed; everything else they share).
    `term`: the reconstruction term the field configures (perceptual, adversarial, structural, neural);
    the claims compare runs that differ in such terms, so those fields are not part of their pairing.
    `added_later`: the field came after run ids were first handed out; at its default (what every earlier
    run did) it is left out of the run id, so earlier runs keep theirs.
    """
    return _declare("result", default, factory, check, resumable=resumable, per_member=per_member, term=term,
                    added_later=added_later)


def bookkeeping(default=dataclasses.MISSING, *, factory=dataclasses.MISSING,
                check: Check | None = None) -> dataclasses.Field:
    """A field that decides how a run is watched, recorded or placed, not what it computes."""
    return _declare("bookkeeping", default, factory, check)


def execution(default=dataclasses.MISSING, *, factory=dataclasses.MISSING,
              check: Check | None = None) -> dataclasses.Field:
    """A field that decides how the same computation runs (results equal up to float rounding)."""
    return _declare("execution", default, factory, check)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def at_least(minimum: int) -> Check:
    """An integer (or a number) of at least `minimum`."""
    return lambda value: None if _is_number(value) and value >= minimum else f"must be at least {minimum}"


def seed_value(value) -> str | None:
    """A seed torch's generators take, with room for the seeds derived from it (seed + 1, ...): 64 bits."""
    inside = isinstance(value, int) and not isinstance(value, bool) and -2**63 <= value < 2**63
    return None if inside else "must be an integer from -2**63 to 2**63 - 1 (a 64-bit seed)"


def positive(value) -> str | None:
    """A finite number > 0."""
    return None if _is_number(value) and math.isfinite(value) and value > 0 else "must be a finite number > 0"


def non_negative(value) -> str | None:
    """A finite number >= 0."""
    return None if _is_number(value) and math.isfinite(value) and value >= 0 else "must be a finite number >= 0"


def weight_or_auto(value) -> str | None:
    """A finite number >= 0, or "auto" (a weight calibrated before training)."""
    return None if value == "auto" else non_negative(value)


def fraction(value) -> str | None:
    """A number in [0, 1]."""
    return None if _is_number(value) and 0.0 <= value <= 1.0 else "must lie in [0, 1]"


def proper_fraction(value) -> str | None:
    """A number in [0, 1)."""
    return None if _is_number(value) and 0.0 <= value < 1.0 else "must lie in [0, 1)"


def each(check: Check, minimum_length: int = 1, exact_length: int | None = None) -> Check:
    """A list whose every item passes `check` (and that has the required length)."""
    def check_list(values) -> str | None:
        if exact_length is not None and len(values) != exact_length:
            return f"must hold exactly {exact_length} values"
        if len(values) < minimum_length:
            return f"must hold at least {minimum_length} value(s)"
        problems = [check(value) for value in values]
        return next((f"items {problem}" for problem in problems if problem), None)

    return check_list


def adam_beta(value) -> str | None:
    """An Adam decay rate: a number in [0, 1)."""
    return proper_fraction(value)
