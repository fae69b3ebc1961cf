"""Reading values out of log fields: opened and tailed logs may hold anything."""

from __future__ import annotations

import math
from typing import Any

_EXACT = float(2**53)


def num(value: Any) -> float | None:
    """A plausible number from a log field, else None: opened and tailed logs may hold anything.

    Magnitudes past 2**53 are no count or cost a run produces, and summed they would overflow
    the 64-bit integers JSON output can carry.
    """
    t = type(value)
    if t is float:  # the common cases first: this runs several times per finished specimen
        return value if -_EXACT <= value <= _EXACT else None  # NaN fails both comparisons
    if t is int and -_EXACT <= value <= _EXACT:
        return float(value)
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) and abs(f) <= 2**53 else None


def count(value: Any) -> int:
    """A plausible count from a log field, else 0."""
    if type(value) is int and -_EXACT <= value <= _EXACT:
        return value
    f = num(value)
    return int(f) if f is not None else 0


def error_text(err: Any) -> str:
    """An event's error (`{kind, message}` or a string) as one line of text."""
    if isinstance(err, dict):
        kind, msg = err.get("kind"), err.get("message")
        return f"{kind}: {msg}" if kind else str(msg or "")
    return str(err or "")
