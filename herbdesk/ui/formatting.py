"""Human-readable numbers for the window (kept Qt-free in spirit; used by widgets)."""

from __future__ import annotations

import math

from herbdesk.monitor import projection


def duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:  # None or NaN
        return "–"
    s = round(seconds)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m:02d}m"
    return f"{m}m {s:02d}s"


def number(value: object) -> float | None:
    """A value read from a log as a finite number, else None: a log may hold anything there
    ("n/a", null, a list), and the window must draw it all the same."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def whole_percent(value: object) -> str:
    """A logged rate as `42%`, or `?` when it is no number."""
    rate = number(value)
    return "?" if rate is None else f"{rate:.0%}"


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f} %"


def money(usd: float | None) -> str:
    return projection.money(usd) if usd else "$0"


def rate(per_min: float) -> str:
    """Throughput that fits a KPI card: 12.3/min, 4,560/min, 1.1M/min."""
    if per_min >= 1_000_000:
        return f"{per_min / 1_000_000:.1f}M/min"
    if per_min >= 10_000:
        return f"{per_min / 1000:.0f}k/min"
    if per_min >= 100:
        return f"{per_min:,.0f}/min"
    return f"{per_min:.1f}/min"


def count(n: int | None) -> str:
    return "–" if n is None else f"{n:,}"


def short_count(n: int | None) -> str:
    """A count that fits a KPI card beside nine others: 9,999, 50k, 333k, 1.2M."""
    if n is None:
        return "–"
    if abs(n) < 10_000:
        return f"{n:,}"
    if abs(n) < 1_000_000:
        return f"{n / 1000:.0f}k"
    return f"{n / 1_000_000:.1f}M"
