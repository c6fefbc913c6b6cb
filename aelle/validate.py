"""Argument checks shared by the pruners, the AeLLE config and the tasks.

Each raises ``ValueError`` in Optuna's style, naming the argument and showing the bad value. A
``bool`` is never accepted as a number: ``True`` is an ``int`` to Python, not to a user.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None,
              optional: bool = False) -> int | None:
    """``value`` as an integer in [low, high] (either bound may be open); None if optional."""
    if value is None and optional:
        return None
    if not _is_int(value) or (low is not None and value < low) \
            or (high is not None and value > high):
        raise ValueError(f"{name} must be {_int_range(low, high)}"
                         f"{' or None' if optional else ''}, but got {name}={value!r}")
    return value


def check_number(name: str, value: Any, *, low: float | None = None,
                 high: float | None = None, low_open: bool = False, high_open: bool = False,
                 optional: bool = False) -> float | None:
    """``value`` as a finite float within the bounds (``*_open``: the bound itself is out)."""
    if value is None and optional:
        return None
    ok = _is_number(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise ValueError(f"{name} must be {_number_range(low, high, low_open, high_open)}"
                         f"{' or None' if optional else ''}, but got {name}={value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: Collection) -> Any:
    """``value`` if it is one of ``choices``."""
    if isinstance(value, bool) and not any(isinstance(c, bool) for c in choices):
        raise ValueError(f"{name} must be one of {_listed(choices)}, but got {name}={value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {_listed(choices)}, but got {name}={value!r}")
    return value


def check_type(name: str, value: Any, kind: type | tuple[type, ...], *,
               optional: bool = False) -> Any:
    """``value`` if it is an instance of ``kind`` (None too, if optional)."""
    if value is None and optional:
        return None
    if not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        wanted = " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"{name} must be {wanted}{' or None' if optional else ''}, but got "
                         f"{type(value).__name__}")
    return value


def _int_range(low, high) -> str:
    if low is not None and high is not None:
        return f"an integer in [{low}, {high}]"
    if low == 0:
        return "a non-negative integer"
    if low == 1:
        return "a positive integer"
    if low is not None:
        return f"an integer >= {low}"
    if high is not None:
        return f"an integer <= {high}"
    return "an integer"


def _number_range(low, high, low_open, high_open) -> str:
    if low is None and high is None:
        return "a finite number"
    if high is None:
        if low == 0:
            return "a positive number" if low_open else "a non-negative number"
        return f"a number {'>' if low_open else '>='} {low}"
    if low is None:
        return f"a number {'<' if high_open else '<='} {high}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def _listed(choices: Collection) -> str:
    return ", ".join(repr(c) for c in choices)
