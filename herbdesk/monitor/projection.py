"""Cost and time ahead: the projected total cost and finish time of a run, with a range.

The method (docs/events.md, "Projection"): the specimens still to do are taken as more draws
from what the finished ones cost and took. With n finished specimens of mean m and standard
deviation s, the sum of the r still to do is r*m, with a 95 % prediction interval of

    r*m ± 1.96 * s * sqrt(r * (1 + r/n))

(r*s² is how much r new draws vary around the true mean, r²*s²/n how uncertain that mean is
after n of them). It narrows as specimens finish and closes at the end (r = 0). Cost uses
each finished specimen's recorded cost; time uses the gaps between finishes (the run's own
pace, concurrency and pacing included), the middle figure being the ETA of the throughput
so far. Below MIN_BASIS finished specimens there is no projection: two points say nothing.

One computation for every view: RunState feeds it from its columns (window, `summary`,
opened and tailed logs), `ProjectionFold` from the events of a live bus (terminal, alerts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from herbdesk.events.types import FINISHED_SPECIMEN_TYPES, Event, EventType

Z95 = 1.96
MIN_BASIS = 3  # finished specimens before anything is projected


@dataclass
class Moments:
    """Count, mean and sum of squared deviations (Welford), folded one value at a time."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)

    @property
    def sd(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0


@dataclass(frozen=True)
class Range:
    """A projected figure: the middle estimate and its 95 % range."""

    low: float
    mid: float
    high: float


@dataclass(frozen=True)
class Projection:
    """What is ahead of a running run. `cost` is None when no specimen recorded a cost (the
    OCR engine, a server that reports none); `seconds_left` is None while the run is paused
    (a quota may hold it for hours) or nothing finished yet in this invocation."""

    remaining: int
    basis: int
    cost: Range | None
    seconds_left: Range | None

    def to_dict(self, now: float) -> dict[str, Any]:
        """The `projection` object of `herbdesk summary --json` (finish times as epochs)."""
        c, t = self.cost, self.seconds_left
        return {
            "remaining": self.remaining,
            "basis": self.basis,
            "cost_usd": None if c is None else [round(c.low, 6), round(c.mid, 6), round(c.high, 6)],
            "seconds_left": None if t is None else [round(t.low), round(t.mid), round(t.high)],
            "finish_epoch": None
            if t is None
            else [round(now + t.low), round(now + t.mid), round(now + t.high)],
        }


def sum_ahead(remaining: int, m: Moments) -> Range:
    """The sum of `remaining` more draws like the `m.n` seen: middle and 95 % range."""
    mid = remaining * m.mean
    half = Z95 * m.sd * math.sqrt(remaining * (1 + remaining / m.n)) if m.n else 0.0
    return Range(max(0.0, mid - half), mid, mid + half)


def project(
    remaining: int,
    finished: int,
    spent: float,
    cost: Moments,
    gaps: Moments,
    elapsed_s: float,
    paused: bool = False,
) -> Projection | None:
    """The projection from the run's figures so far, or None below MIN_BASIS finishes.

    `cost`: the finished specimens' recorded costs; `gaps`: seconds between finishes (the
    first from the start); `elapsed_s`: the run's time so far, so the middle figure is the
    ETA of the throughput to now (a silence lengthens it, as the ETA card's does).
    """
    remaining = max(0, remaining)
    if finished < MIN_BASIS:
        return None
    cost_range = None
    if cost.n:
        ahead = sum_ahead(remaining, cost)
        cost_range = Range(spent + ahead.low, spent + ahead.mid, spent + ahead.high)
    time_range = None
    if not paused and elapsed_s > 0 and gaps.n:
        per = Moments(gaps.n, elapsed_s / finished, gaps.m2)  # the pace to now
        time_range = sum_ahead(remaining, per)
    return Projection(remaining, finished, cost_range, time_range)


# ------------------------------------------------------------------ words
def money(usd: float) -> str:
    return f"${usd:.4f}" if usd < 10 else f"${usd:,.2f}"


def duration(seconds: float) -> str:
    s = round(seconds)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{d}d{h:02d}h"
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def cost_text(p: Projection | None) -> str:
    """ "$1.23 ($1.10-$1.40)" or "" when nothing is projected."""
    if p is None or p.cost is None:
        return ""
    c = p.cost
    if c.high - c.low < 0.00005:
        return money(c.mid)
    return f"{money(c.mid)} ({money(c.low)}-{money(c.high)})"


def time_text(p: Projection | None, now: float | None = None) -> str:
    """ "2h10m (1h50m-2h30m)", with the finish clock time when `now` is given."""
    if p is None or p.seconds_left is None:
        return ""
    t = p.seconds_left
    text = duration(t.mid)
    if t.high - t.low >= 1:
        text += f" ({duration(t.low)}-{duration(t.high)})"
    if now is not None:
        text += f", done about {datetime.fromtimestamp(now + t.mid):%Y-%m-%d %H:%M}"
    return text


def sentence(p: Projection | None, now: float | None = None) -> str:
    """One line for the terminal and alerts: "projected total $1.23 ($1.10-$1.40), 2h10m
    left (...)", or "" when there is nothing to project."""
    parts = []
    if cost := cost_text(p):
        parts.append(f"projected total {cost}")
    if t := time_text(p, now):
        parts.append(f"{t} left" if now is None else t.replace(", done", " left, done", 1))
    if not parts or p is None:
        return ""
    return ", ".join(parts) + f" (from {p.basis} finished, {p.remaining} to go)"


# ------------------------------------------------------------------ live fold
class ProjectionFold:
    """The projection's inputs folded from a live bus's events, in constant memory: for the
    consumers that keep no RunState (terminal progress, alerts). The same numbers RunState
    gives from its columns (tests/test_projection.py checks the two agree)."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.finished = 0
        self.skipped = 0
        self.spent = 0.0
        self.cost = Moments()
        self.gaps = Moments()
        self._started: float | None = None
        self._last: float | None = None
        self._paused: set[str] = set()

    def on_event(self, ev: Event) -> None:
        et = ev.event_type
        if et in FINISHED_SPECIMEN_TYPES:
            self.finished += 1
            c = ev.data.get("cost_usd")
            if isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c):
                self.spent += c
                self.cost.add(float(c))
            t = _epoch(ev.timestamp)
            prev = self._last if self._last is not None else self._started
            if t is not None and prev is not None:
                self.gaps.add(max(0.0, t - prev))
            if t is not None:
                self._last = t
        elif et == EventType.EXTRACTION_STARTED:
            before = ev.data.get("cost_before_usd")  # a resume: what earlier invocations spent
            if isinstance(before, int | float) and not isinstance(before, bool):
                self.spent += before
            total = ev.data.get("total")
            self.total = total if isinstance(total, int) else None
            if self._started is None:
                self._started = _epoch(ev.timestamp)
        elif et == EventType.SPECIMEN_SKIPPED:
            self.skipped += 1
        elif et == EventType.EXTRACTION_PAUSED:
            self._paused.add(str(ev.data.get("reason") or "user"))
        elif et == EventType.EXTRACTION_RESUMED:
            self._paused.discard(str(ev.data.get("reason") or "user"))

    def projection(self, now: float) -> Projection | None:
        if self.total is None or self._started is None:
            return None
        return project(
            self.total - self.finished - self.skipped,
            self.finished,
            self.spent,
            self.cost,
            self.gaps,
            now - self._started,
            paused=bool(self._paused),
        )


def _epoch(ts: str) -> float | None:
    from herbdesk.events.types import parse_ts

    return parse_ts(ts)
