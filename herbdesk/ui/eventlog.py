"""The raw event stream as a lazy table: what happened, in log order, one line per event."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import numpy as np
from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from herbdesk.events.reader import EventIndex, EventStore, open_regular
from herbdesk.events.types import Event, EventType
from herbdesk.ui.columns import ROW_HEIGHT, SHORT_ID, STATUS_COLORS, plain_tooltip
from herbdesk.ui.document import RunDocument

Index = QModelIndex | QPersistentModelIndex

COL_SEQ, COL_TIME, COL_TYPE, COL_SPECIMEN, COL_SUMMARY = range(5)
HEADERS = ("seq", "time", "type", "specimen", "summary")
MAX_SUMMARY = 300
_RED, _AMBER = STATUS_COLORS["failed"], QColor("#d08a00")
TYPE_COLORS: dict[str, QColor] = {
    EventType.SPECIMEN_COMPLETED: STATUS_COLORS["completed"],
    EventType.SPECIMEN_FAILED: _RED,
    EventType.SPECIMEN_RETRYING: _AMBER,
    EventType.SPECIMEN_SKIPPED: STATUS_COLORS["skipped"],
    EventType.VALIDATION_WARNING: _AMBER,
    EventType.CONSUMER_ERROR: _RED,
    EventType.EXTRACTION_FAILED: _RED,
    EventType.EXTRACTION_CANCELLED: _AMBER,
}


def clock_time(ts: str) -> str:
    """HH:MM:SS.mmm in local time (events are stamped in UTC); the raw text if unparsable."""
    try:
        dt = datetime.fromisoformat(ts)
    except (TypeError, ValueError):
        return ts or ""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone()
    return f"{dt:%H:%M:%S}.{dt.microsecond // 1000:03d}"


def _err(err: Any) -> str:
    if isinstance(err, Mapping):
        kind, msg = err.get("kind"), err.get("message")
        return f"{kind}: {msg}" if kind else str(msg or "")
    return str(err or "")


def _pct(x: Any) -> str:
    return f"{x:.0%}" if isinstance(x, int | float) else "?"


def _describe(ev: Event) -> str:
    d = ev.data
    et = ev.event_type
    image = str(d.get("image") or "")
    if et == EventType.EXTRACTION_STARTED:
        cfg = d.get("config")
        cfg = cfg if isinstance(cfg, Mapping) else {}
        engine = " / ".join(str(x) for x in (cfg.get("engine"), cfg.get("model")) if x)
        resumed = " (resumed)" if d.get("resumed") else ""
        return f"{d.get('total', '?')} images{resumed}" + (f" · {engine}" if engine else "")
    if et == EventType.PREFLIGHT_COMPLETED:
        checks = d.get("checks")  # a log may hold anything here: a number would raise
        checks = checks if isinstance(checks, list | tuple) else []
        bad = [c for c in checks if isinstance(c, Mapping) and not c.get("ok")]
        if not bad:
            return "all checks passed"
        return "failed: " + "; ".join(f"{c.get('name')}: {c.get('detail')}" for c in bad)
    if et in (EventType.SPECIMEN_QUEUED, EventType.SPECIMEN_PROCESSING):
        return image
    if et == EventType.SPECIMEN_SKIPPED:
        return f"{image}: {d.get('reason') or ''}"
    if et == EventType.SPECIMEN_RETRYING:
        return f"attempt {d.get('attempt')} failed, retry in {d.get('delay_s')} s — " + _err(
            d.get("error")
        )
    if et == EventType.SPECIMEN_COMPLETED:
        conf = d.get("confidence")
        conf_s = f" · confidence {conf:.2f}" if isinstance(conf, int | float) else ""
        ms = d.get("processing_time_ms")
        time_s = f" · {ms / 1000:.1f} s" if isinstance(ms, int | float) else ""
        return f"{image} · {d.get('fields_extracted', 0)} fields{conf_s}{time_s}"
    if et == EventType.SPECIMEN_FAILED:
        return f"{image} · {_err(d.get('error'))}"
    if et == EventType.VALIDATION_CHECKPOINT:
        return (
            f"checkpoint at {d.get('checkpoint')}: {d.get('status')}, success rate "
            f"{_pct(d.get('success_rate'))} (threshold {_pct(d.get('threshold'))})"
        )
    if et == EventType.VALIDATION_WARNING:
        return str(d.get("message") or f"success rate {_pct(d.get('success_rate'))}")
    if et == EventType.CONSUMER_ERROR:
        return f"{d.get('consumer')} on {d.get('on_event')} #{d.get('on_seq')}: {d.get('error')}"
    if et in (EventType.EXTRACTION_PAUSED, EventType.EXTRACTION_RESUMED):
        word = "paused" if et == EventType.EXTRACTION_PAUSED else "resumed"
        why = d.get("reason") or "by the user"
        until = f" until {d.get('until')}" if d.get("until") else ""
        return f"{word} ({why}){until}" + (f" — {d.get('message')}" if d.get("message") else "")
    if et in (
        EventType.EXTRACTION_COMPLETED,
        EventType.EXTRACTION_FAILED,
        EventType.EXTRACTION_CANCELLED,
    ):
        head = f"{d['reason']}: " if et == EventType.EXTRACTION_FAILED and d.get("reason") else ""
        counts = ""
        if d.get("processed") is not None:
            counts = f" ({d.get('succeeded')}/{d.get('processed')} succeeded)"
        return f"{head}{d.get('message') or ''}{counts}"
    if d:
        return json.dumps(dict(d), ensure_ascii=False, default=str)
    return ""


def summarize(ev: Event) -> str:
    """A one-line plain-text summary of an event's data, whatever the data holds."""
    text = " ".join(_describe(ev).split())  # newlines (tracebacks, replies) would break rows
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1] + "…"


class _Keep:
    """`EventLogModel.reset`'s default: keep the type filter."""


KEEP = _Keep()


def type_codes(
    events: Sequence[Event], start: int, stop: int
) -> list[tuple[np.ndarray, list[str]]]:
    """The type codes of events start..stop-1: (codes, names) segments in log order.

    An EventStore keeps a small code per event (`EventIndex.types` for an opened file, its own
    array for held events): they are copied out in C and nothing is decoded. A list is coded
    here, one event at a time.
    """
    stop = min(stop, len(events))
    if start >= stop:
        return []
    if not isinstance(events, EventStore):
        code_of: dict[str, int] = {}
        codes = np.fromiter(
            (code_of.setdefault(e.event_type, len(code_of)) for e in events[start:stop]),
            np.uint16,
            stop - start,
        )
        return [(codes, list(code_of))]
    out: list[tuple[np.ndarray, list[str]]] = []
    limit, idx = events.limit, events.file_index
    if start < limit and idx is not None:
        # slice first (a copy): a numpy view of the growing array would block its appends;
        # the names are read after the codes, so every code has its name
        part = idx.types[start : min(stop, limit)]
        out.append((np.frombuffer(part, dtype=np.uint16), list(idx.type_names)))
    if stop > limit:
        part = events._tail_types[max(0, start - limit) : stop - limit]
        out.append((np.frombuffer(part, dtype=np.uint16), list(events._type_names)))
    return out


def type_mask(
    events: Sequence[Event], start: int, stop: int, accept: Callable[[str], bool]
) -> np.ndarray:
    """Which of events start..stop-1 have a type `accept`s: one call per distinct type."""
    parts = []
    for codes, names in type_codes(events, start, stop):
        lut = np.array([accept(name) for name in names] + [False], dtype=bool)
        parts.append(lut[codes])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def _types_of(events: Sequence[Event], start: int, stop: int) -> set[str]:
    out: set[str] = set()
    for codes, names in type_codes(events, start, stop):
        counts = np.bincount(codes, minlength=len(names))
        out.update(names[c] for c in np.flatnonzero(counts).tolist())
    return out


def _text_match(ev: Event, needle: str) -> bool:
    """The needle (casefolded) in an event's specimen id or summary (its type is checked
    without decoding, by `type_mask`)."""
    return needle in (ev.specimen_id or "").casefold() or needle in summarize(ev).casefold()


# --------------------------------------------------------------------------- text search
# Text `_describe`, `_err`, `_pct` and `summarize` write themselves, not copied from the event
# (a test keeps this in step with their string constants). "None" is how a missing value shows.
SUMMARY_LITERALS: tuple[str, ...] = (
    " / ", " (resumed)", " images", " · ", "?", "all checks passed", "failed: ", "; ", ": ",
    "attempt ", " failed, retry in ", " s — ", " · confidence ", " s", " fields",
    "checkpoint at ", ", success rate ", " (threshold ", ")", "success rate ", " on ", " #",
    "paused", "resumed", "by the user", " until ", " (", " — ", "/", " succeeded)", " ", "…",
    "None",
)  # fmt: skip
_LITERALS_CF = tuple(s.casefold() for s in SUMMARY_LITERALS)
# Punctuation a summary writes next to copied text (and JSON/repr structure): a needle holding
# one could straddle copied and written text.
_GLUE = frozenset(":,;()#/[]{}'%?\"\\")
# What str() or a format spec makes of a number: 1e-05, inf, nan, 0.87 (rounded, not copied).
_NUMBER_CHARS = frozenset("0123456789.+-einfa")

BLOCK_EVENTS = 8192  # events per block of a scan (a block's rows show together)
BLOCK_BYTES = 2 << 20  # at most this much of the file read per block
CHECK_CHUNK = 256  # events decoded and checked per step (a few ms)
SYNC_S = 0.03  # work done at once when a filter is set or events arrive
SLICE_S = 0.015  # work per timer tick, between which the GUI runs


# a run of printable ASCII but space and glue
_TOKEN = re.compile("[" + re.escape("".join(sorted(set(map(chr, range(33, 127))) - _GLUE))) + "]+")


def _copied_only(token: str) -> bool:
    """Whether a token (printable ASCII, no space or glue) can only be found in a summary
    inside text copied from the event: not inside a literal, not all number characters."""
    return not set(token) <= _NUMBER_CHARS and not any(token in lit for lit in _LITERALS_CF)


def raw_needle(needle: str) -> re.Pattern[bytes] | None:
    """A pattern that the raw JSON line of every event whose summary or specimen id holds
    the (casefolded) needle also holds once lowercased; None if there is none (then every
    event is decoded and checked).

    A summary copies strings from the event (whitespace collapsed, cut at MAX_SUMMARY) between
    text it writes itself: SUMMARY_LITERALS, glue punctuation, formatted numbers, reprs. A
    run of printable ASCII without spaces or glue lies inside one piece; if it is not inside
    a literal and not made of number characters, that piece is copied, so the run's bytes are
    in the line (`_line_hits` also flags lines with escapes or non-ASCII bytes, where JSON
    escaping or case folding could hide them). Any such run of the needle will do: the
    longest is the most selective.
    """
    tokens = [t for t in _TOKEN.findall(needle) if _copied_only(t)]
    if not tokens:
        return None
    return re.compile(re.escape(max(tokens, key=len).encode("ascii")))


def _line_hits(buf: bytes, starts: np.ndarray, pattern: re.Pattern[bytes]) -> np.ndarray:
    """Which lines of `buf` (beginning at the ascending `starts`) may hold the pattern: a
    match after ASCII lowercasing, or a backslash or non-ASCII byte."""
    low = buf.lower()
    pos = np.fromiter((m.start() for m in pattern.finditer(low)), np.int64)
    if not low.isascii() or b"\\" in low:
        arr = np.frombuffer(low, np.uint8)
        pos = np.concatenate([pos, np.flatnonzero((arr >= 0x80) | (arr == ord("\\")))])
    hits = np.zeros(len(starts), dtype=bool)
    line = np.searchsorted(starts, pos, side="right") - 1
    hits[line[line >= 0]] = True
    return hits


def _file_hits(
    index: EventIndex, a: int, b: int, pattern: re.Pattern[bytes], fh: IO[bytes]
) -> np.ndarray | None:
    """`_line_hits` for events a..b-1 of an opened file, read in one piece (held events are
    always flagged); None if the file no longer holds those lines."""
    starts = np.frombuffer(index.starts[a:b], dtype=np.int64)
    lengths = np.frombuffer(index.lengths[a:b], dtype=np.uint32)
    hits = starts < 0  # held: decoded from elsewhere, checked as objects
    lines = np.flatnonzero(~hits)
    if not len(lines):
        return hits
    lo = int(starts[lines[0]])
    hi = int(starts[lines[-1]]) + int(lengths[lines[-1]])
    fh.seek(lo)
    buf = fh.read(hi - lo)
    if len(buf) != hi - lo:
        return None
    hits[lines] = _line_hits(buf, starts[lines] - lo, pattern)
    return hits


def _tail_hits(items: Sequence[bytes | Event], pattern: re.Pattern[bytes]) -> np.ndarray:
    """`_line_hits` over held events (encoded lines; Events that could not be are flagged)."""
    parts = [x if isinstance(x, bytes) else b"" for x in items]
    lens = np.fromiter(map(len, parts), np.int64, len(parts)) + 1
    hits = _line_hits(b"\n".join(parts), np.cumsum(lens) - lens, pattern)
    hits |= np.fromiter((not isinstance(x, bytes) for x in items), bool, len(items))
    return hits


def _within_bytes(index: EventIndex, a: int, b: int, limit: int) -> int:
    """How many of events a..b-1 (at least one) start within `limit` bytes of the first
    line among them (held events, at -1, count as inside)."""
    reach = np.maximum.accumulate(np.frombuffer(index.starts[a:b], dtype=np.int64))
    if not len(reach) or reach[-1] < 0:
        return b - a
    base = int(reach[int(np.argmax(reach >= 0))])
    return max(1, int(np.searchsorted(reach, base + limit)))


def _exact_hits(events: Sequence[Event], idx: np.ndarray, needle: str) -> list[bool]:
    """`_text_match` for some events (ascending indices), decoding runs of consecutive ones
    a block at a time."""
    cuts = (np.flatnonzero(np.diff(idx) != 1) + 1).tolist()
    found: list[bool] = []
    for a, b in zip([0, *cuts], [*cuts, len(idx)], strict=True):
        first = int(idx[a])
        if b - a == 1:  # a lone candidate: one read, no generator
            found.append(_text_match(events[first], needle))
            continue
        run: Iterable[Event] = (
            events.iter_range(first, first + b - a)
            if isinstance(events, EventStore)
            else events[first : first + b - a]
        )
        found.extend(_text_match(ev, needle) for ev in run)
    return found


@dataclass
class _Block:
    """Events a scan is deciding: `rows` pass the type filter; `auto` ones pass already (the
    needle is in their type name); `check` ones are decoded and checked a chunk at a time."""

    end: int
    rows: np.ndarray
    auto: np.ndarray
    check: np.ndarray
    found: list[bool] = field(default_factory=list)


class _FilterScan:
    """One filter's pass over the events, in log order, a block at a time.

    With a text needle, `raw_needle` lets a block of the file (or of held lines) be searched
    as bytes, and only the events whose line may match are decoded; otherwise every event of
    the block is. Events before `within_end` are only those of `within` (a narrowing filter
    searches the rows shown before).
    """

    def __init__(
        self,
        events: Sequence[Event],
        event_type: str | None,
        needle: str,
        within: np.ndarray | None = None,
        within_end: int = 0,
    ) -> None:
        self.events = events
        self.event_type = event_type
        self.needle = needle
        self.pattern = raw_needle(needle)
        self.within = within
        self.within_end = within_end if within is not None else 0
        self.pos = 0  # events before it are decided
        self.block: _Block | None = None
        self._fh: IO[bytes] | None = None

    def done(self, stop: int) -> bool:
        return self.block is None and self.pos >= stop

    def busy(self) -> bool:
        """Part of a block is checked: stopping now leaves its rows unshown until later."""
        return self.block is not None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def step(self, stop: int) -> np.ndarray | None:
        """Decide a little more of events pos..stop-1: the rows of a finished block, else
        None."""
        if self.block is None:
            if self.pos >= stop:
                return None
            self.block = self._open_block(stop)
        block = self.block
        k = len(block.found)
        if k < len(block.check):
            chunk = block.check[k : k + CHECK_CHUNK]
            block.found.extend(_exact_hits(self.events, chunk, self.needle))
            if len(block.found) < len(block.check):
                return None
        keep = block.auto.copy()
        keep[np.searchsorted(block.rows, block.check)] = np.array(block.found, dtype=bool)
        self.pos, self.block = block.end, None
        return block.rows[keep]

    # ------------------------------------------------------------------ blocks
    def _open_block(self, stop: int) -> _Block:
        a = self.pos
        b = self._block_end(a, stop)
        rows = self._rows(a, b)
        needle = self.needle
        if not needle:
            return _Block(b, rows, np.ones(len(rows), dtype=bool), rows[:0])
        auto = type_mask(self.events, a, b, lambda t: needle in t.casefold())[rows - a]
        check = rows[~auto]
        if self.pattern is not None and len(check) * 32 >= b - a:  # sparse: decode those
            maybe = self._maybe(a, b)
            if maybe is not None:
                check = check[maybe[check - a]]
        return _Block(b, rows, auto, check)

    def _block_end(self, a: int, stop: int) -> int:
        """Where the block from a ends: at most BLOCK_EVENTS events (or rows of `within`) and
        BLOCK_BYTES of the file, never across `within_end` or the end of the file part."""
        if not self.needle:
            b = stop  # the type filter alone is numpy over type codes: all at once
        elif a < self.within_end:
            assert self.within is not None
            k = int(np.searchsorted(self.within, a)) + BLOCK_EVENTS
            b = min(stop, self.within_end, int(self.within[k]) if k < len(self.within) else stop)
        else:
            b = min(stop, a + BLOCK_EVENTS)
        if a < self.within_end:
            b = min(b, self.within_end)
        events = self.events
        if isinstance(events, EventStore) and a < events.limit:
            b = min(b, events.limit)
            if self.pattern is not None and events.file_index is not None:
                b = a + _within_bytes(events.file_index, a, b, BLOCK_BYTES)
        return max(b, a + 1)

    def _rows(self, a: int, b: int) -> np.ndarray:
        """The events of a..b-1 that pass the type filter (and are in `within`), ascending."""
        if a < self.within_end:
            assert self.within is not None
            w = self.within
            rows = w[int(np.searchsorted(w, a)) : int(np.searchsorted(w, b))]
        else:
            rows = np.arange(a, b, dtype=np.int64)
        rows = rows.astype(np.int64, copy=False)
        if self.event_type is not None and len(rows):
            wanted = self.event_type
            rows = rows[type_mask(self.events, a, b, lambda t: t == wanted)[rows - a]]
        return rows

    def _maybe(self, a: int, b: int) -> np.ndarray | None:
        """Which of events a..b-1 may hold the needle, from their raw lines; None: unknown."""
        events, pattern = self.events, self.pattern
        assert pattern is not None
        if not isinstance(events, EventStore):
            return None
        if a >= events.limit:
            return _tail_hits(events.tail[a - events.limit : b - events.limit], pattern)
        index = events.file_index
        if index is None or index.path is None:
            return None
        try:
            if self._fh is None:
                self._fh = open_regular(index.path)
            return _file_hits(index, a, b, pattern, self._fh)
        except OSError:
            return None


class EventLogModel(QAbstractTableModel):
    """Rows are the events that pass the type and text filter, in log order; cells are computed
    on demand.

    Attached to a document, the model reads the document's EventStore itself: for an opened
    file that is an index of byte offsets, and only the rows a view asks for are decoded (a
    few hundred at a time are cached), so a million events never become a million objects.

    Filtering lives here, not in a proxy's filterAcceptsRow (one Python call per row from Qt,
    a million for a million events): `_order` maps a view row to its event, built with numpy
    from the events' type codes, and is None while every event shows (rows map 1:1). A text
    filter searches the raw lines as bytes where it can and decodes only the events that may
    match (`_FilterScan`); what does not fit in a few ms goes on in slices on a timer, rows
    inserted as they are found. `total_events` is the number of events announced, which lags
    the store until `grow_to`, so views never see a row before its `rowsInserted`.
    """

    total_changed = Signal()
    """More events are known (some may be filtered out, so no rowsInserted says so)."""
    search_progressed = Signal()
    """A filter's scan went on in the background (`searching` and `scanned` changed)."""

    CACHE_ROWS = 1024

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._events: Sequence[Event] = []
        self._known = 0  # events announced
        self._rows = 0  # rows shown (rowCount)
        self._order: np.ndarray | None = None  # view row -> event index; None: identity
        self._buf: np.ndarray | None = None  # `_order` is a prefix of it (amortized appends)
        self._scan: _FilterScan | None = None  # deciding the rows of a filter, if any
        self._type: str | None = None
        self._needle = ""
        self._summaries: dict[int, str] = {}  # by event index, like the cache
        self._cache: dict[int, Event] = {}
        self._timer = QTimer(self)  # runs a scan a slice per tick while the GUI stays live
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._on_tick)

    # ------------------------------------------------------------------ feeding
    @property
    def events(self) -> Sequence[Event]:
        return self._events

    def total_events(self) -> int:
        """Events announced, shown or filtered out."""
        return self._known

    def reset(self, events: Iterable[Event], event_type: str | _Keep | None = KEEP) -> None:
        """Show these events (through the filter; `event_type` replaces the type filter). An
        EventStore is read in place (and may grow: see `grow_to`)."""
        self.beginResetModel()
        self._events = events if isinstance(events, EventStore) else list(events)
        self._known = len(self._events)
        if not isinstance(event_type, _Keep):
            self._type = event_type
        self._summaries = {}
        self._cache = {}
        self._refilter(None, 0)
        self.endResetModel()
        self.total_changed.emit()

    def append(self, batch: list[Event]) -> None:
        """Add a batch at the end with one row insertion (a model holding its own list)."""
        if not batch:
            return
        events = self._events
        if isinstance(events, list):
            events.extend(batch)
        else:  # the store grew elsewhere: only announce
            assert len(events) >= self._known + len(batch)
        self.grow_to(self._known + len(batch))

    def grow_to(self, n: int) -> None:
        """Announce events up to n (the shared store was appended to): those passing the
        filter are inserted at the end, in one insertion (a text filter over many new
        events goes on in slices, see `searching`)."""
        old = self._known
        n = min(n, len(self._events))
        if n <= old:
            return
        self._known = n
        if self._scan is None:  # every event shows
            self.beginInsertRows(QModelIndex(), old, n - 1)
            self._rows = n
            self.endInsertRows()
        elif not self._timer.isActive():  # else the running scan reaches them
            self._advance(SYNC_S, announce=True, whole_block=True)
        self.total_changed.emit()

    # ------------------------------------------------------------------ filtering
    def filtering(self) -> bool:
        return self._type is not None or bool(self._needle)

    def filter(self) -> tuple[str | None, str]:
        """The type filter (None: any) and the casefolded text filter ("" for none)."""
        return self._type, self._needle

    def searching(self) -> bool:
        """Rows of the filter are still being found (they are inserted as they are)."""
        return self._scan is not None and not self._scan.done(self._known)

    def scanned(self) -> int:
        """Events the filter has decided so far (all known ones once `searching` is over)."""
        return self._known if self._scan is None else min(self._scan.pos, self._known)

    def set_filter(self, event_type: str | None, needle: str) -> None:
        """Show only events of `event_type` (None: any) whose type, specimen id or summary
        holds `needle` (casefolded). Resets the model with the rows found at once; a long
        search goes on in slices on a timer, inserting rows as it finds them."""
        if (event_type, needle) == (self._type, self._needle):
            return
        old_type, old_needle = self._type, self._needle
        # a longer needle of the same type only narrows: search the rows shown now (those of
        # the events decided so far; later ones are searched in full)
        narrowing = old_needle in needle and (old_type is None or old_type == event_type)
        within, within_end = (self._order, self.scanned()) if narrowing else (None, 0)
        self.beginResetModel()
        self._type = event_type
        self._needle = needle
        self._refilter(within, within_end)
        self.endResetModel()

    def _refilter(self, within: np.ndarray | None, within_end: int) -> None:
        """Start deciding the shown rows over the known events (before `within_end`, only
        those in `within`), and decide what fits in SYNC_S at once."""
        if self._scan is not None:
            self._scan.close()
        self._timer.stop()
        self._buf = None
        if not self.filtering():
            self._scan, self._order, self._rows = None, None, self._known
            return
        self._scan = _FilterScan(self._events, self._type, self._needle, within, within_end)
        self._order, self._rows = np.zeros(0, dtype=np.int64), 0
        self._advance(SYNC_S, announce=False, whole_block=True)

    def _on_tick(self) -> None:
        self._advance(SLICE_S, announce=True, whole_block=False)
        self.search_progressed.emit()

    def _advance(self, budget_s: float, announce: bool, whole_block: bool) -> None:
        """Run the scan for about `budget_s` (finishing a started block if `whole_block`),
        add the rows found, and keep the timer going while events are left."""
        scan = self._scan
        if scan is None:
            return
        deadline = time.perf_counter() + budget_s
        found: list[np.ndarray] = []
        while not scan.done(self._known):
            rows = scan.step(self._known)
            if rows is not None and len(rows):
                found.append(rows)
            if time.perf_counter() >= deadline and not (whole_block and scan.busy()):
                break
        if found:
            self._add_rows(np.concatenate(found), announce)
        if scan.done(self._known):
            scan.close()
            self._timer.stop()
        elif not self._timer.isActive():
            self._timer.start()

    def _add_rows(self, rows: np.ndarray, announce: bool) -> None:
        """Append found rows to `_order`, growing its buffer geometrically."""
        first, need = self._rows, self._rows + len(rows)
        buf = self._buf
        if buf is None or len(buf) < need:
            buf = np.empty(max(need, 2 * len(buf) if buf is not None else 0, 1024), np.int64)
            buf[:first] = self._order if self._order is not None else []
            self._buf = buf
        if announce:
            self.beginInsertRows(QModelIndex(), first, need - 1)
        buf[first:need] = rows
        self._order, self._rows = buf[:need], need
        if announce:
            self.endInsertRows()

    # ------------------------------------------------------------------ rows
    def event_index(self, row: int) -> int:
        """The index in the event store of the event shown at a model row."""
        return row if self._order is None else int(self._order[row])

    def view_row(self, event_index: int) -> int:
        """The model row showing an announced event, -1 if it is filtered out or unknown."""
        if not 0 <= event_index < self._known:
            return -1
        order = self._order
        if order is None:
            return event_index
        p = int(np.searchsorted(order, event_index))
        return p if p < len(order) and int(order[p]) == event_index else -1

    def first_row_from(self, event_index: int) -> int:
        """The model row of the first shown event at or after an event (rowCount if none)."""
        order = self._order
        if order is None:
            return min(max(event_index, 0), self._rows)
        return int(np.searchsorted(order, event_index))

    def _event(self, i: int) -> Event:
        ev = self._cache.get(i)
        if ev is None:
            if len(self._cache) >= self.CACHE_ROWS:
                self._cache.clear()
            ev = self._cache[i] = self._events[i]
        return ev

    def event_at(self, row: int) -> Event:
        """The event shown at a model row."""
        return self._event(self.event_index(row))

    def event_type(self, row: int) -> str:
        """The type of a row's event without decoding it."""
        events, i = self._events, self.event_index(row)
        if isinstance(events, EventStore):
            return events.event_type(i)
        return events[i].event_type

    def summary(self, row: int) -> str:
        i = self.event_index(row)
        s = self._summaries.get(i)
        if s is None:
            if len(self._summaries) >= self.CACHE_ROWS:
                self._summaries.clear()
            s = self._summaries[i] = summarize(self._event(i))
        return s

    # ------------------------------------------------------------------ Qt model
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._rows

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return HEADERS[section] if 0 <= section < len(HEADERS) else None
        return section + 1

    def data(self, index: Index, role: int = 0) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            ev, col = self.event_at(index.row()), index.column()
            if col == COL_SEQ:
                return str(ev.seq)
            if col == COL_TIME:
                return clock_time(ev.timestamp)
            if col == COL_TYPE:
                return ev.event_type
            if col == COL_SPECIMEN:
                return (ev.specimen_id or "")[:SHORT_ID]
            if col == COL_SUMMARY:
                return self.summary(index.row())
            return None
        if role == Qt.ItemDataRole.ForegroundRole:
            if index.column() != COL_TYPE:
                return None
            return TYPE_COLORS.get(self.event_type(index.row()))
        if role == Qt.ItemDataRole.ToolTipRole:
            ev, col = self.event_at(index.row()), index.column()
            if col == COL_TIME:
                return plain_tooltip(ev.timestamp)
            if col == COL_SPECIMEN and ev.specimen_id:
                return plain_tooltip(ev.specimen_id)
            if col == COL_SUMMARY:
                return plain_tooltip(json.dumps(dict(ev.data), indent=1, default=str)[:4000])
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == COL_SEQ:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None


class EventFilterProxy(QSortFilterProxyModel):
    """The view's model: forwards the type and text filter to EventLogModel; no sorting.

    The model filters by numpy over the events' type codes; a filterAcceptsRow in Python
    would be called once per row (a million calls for a million events, filter or not). This
    proxy keeps Qt's C++ default, which accepts every row.
    """

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setDynamicSortFilter(False)  # the model filters the rows it inserts
        self._model: EventLogModel | None = None
        self._type: str | None = None
        self._needle = ""

    def setSourceModel(self, model: QAbstractItemModel) -> None:
        self._model = model if isinstance(model, EventLogModel) else None
        if self._model is not None:
            self._type, self._needle = self._model.filter()
        super().setSourceModel(model)

    def set_type_filter(self, event_type: str | None) -> None:
        """Show one event type (None or "All": every type)."""
        self._type = None if not event_type or event_type == "All" else event_type
        self._forward()

    def set_text_filter(self, text: str) -> None:
        """Case-insensitive substring over type, specimen id and summary."""
        self._needle = text.strip().casefold()
        self._forward()

    def _forward(self) -> None:
        if self._model is not None:
            self._model.set_filter(self._type, self._needle)


class EventLogPane(QWidget):
    """Filter bar over the event table; follows new events while scrolled to the bottom.

    Attached to a document, new events are announced on the document's refresh tick (a few
    times a second while a file loads), not once per loaded block or live batch.
    """

    ALL = "All"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._document: RunDocument | None = None
        self._types: set[str] = set()
        self._follow = True
        self._pending = 0  # events the attached document announced, up to the next refresh
        self.model = EventLogModel(self)
        self.proxy = EventFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.type_combo = QComboBox()
        self.type_combo.addItem(self.ALL)
        self.type_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Filter by type, id or text")
        self.search_edit.setClearButtonEnabled(True)
        self.count_label = QLabel()
        self.count_label.setTextFormat(Qt.TextFormat.PlainText)

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        vh = self.table.verticalHeader()
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(ROW_HEIGHT)
        vh.hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        for col, width in enumerate((56, 96, 150, 110)):
            self.table.setColumnWidth(col, width)

        bar = QHBoxLayout()
        bar.setContentsMargins(2, 2, 6, 2)
        bar.addWidget(self.type_combo)
        bar.addWidget(self.search_edit, 1)
        bar.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.table)

        self.type_combo.currentTextChanged.connect(self.proxy.set_type_filter)
        self.search_edit.textChanged.connect(self.proxy.set_text_filter)
        sb = self.table.verticalScrollBar()
        sb.valueChanged.connect(self._on_scrolled)
        sb.rangeChanged.connect(self._on_range_changed)
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset):
            sig.connect(self._schedule_count)
        self.model.total_changed.connect(self._schedule_count)
        self.model.search_progressed.connect(self._schedule_count)
        # A filter change resets the model: keep the current event and the place read.
        self._kept: tuple[Sequence[Event], int | None, int | None] | None = None
        self.proxy.modelAboutToBeReset.connect(self._before_reset)
        self.proxy.modelReset.connect(self._after_reset)
        self._count_pending = False
        self._update_count()

    # ------------------------------------------------------------------ feeding
    def attach(self, document: RunDocument) -> None:
        """Show a document's events now and follow its resets and new events."""
        if self._document is not None:
            self._document.reset_done.disconnect(self._on_reset)
            self._document.events_added.disconnect(self._on_added)
            self._document.refreshed.disconnect(self._on_refreshed)
            self._document.flushed.disconnect(self._on_refreshed)
        self._document = document
        document.reset_done.connect(self._on_reset)
        document.events_added.connect(self._on_added)
        document.refreshed.connect(self._on_refreshed)
        document.flushed.connect(self._on_refreshed)
        self.reset(document.events)

    def reset(self, events: Iterable[Event]) -> None:
        if not isinstance(events, EventStore):
            events = list(events)
        keep = self.type_combo.currentText()
        self._types = _types_of(events, 0, len(events))
        self.type_combo.blockSignals(True)  # the filter is set once, with the new events
        self.type_combo.clear()
        self.type_combo.addItems([self.ALL, *sorted(self._types)])
        # keep a chosen type across a reopen if the new log has it; otherwise show all
        self.type_combo.setCurrentIndex(max(0, self.type_combo.findText(keep)))
        self.type_combo.blockSignals(False)
        chosen = self.type_combo.currentText()
        self._follow = True
        self._pending = len(events)
        self.model.reset(events, None if chosen == self.ALL else chosen)
        self.proxy.set_type_filter(chosen)  # the proxy learns it; the model has it already

    def append(self, batch: list[Event]) -> None:
        self.model.append(batch)
        self._add_types({e.event_type for e in batch})

    def _on_added(self, first: int, count: int) -> None:
        """The attached document's store grew: the rows are announced at the next refresh."""
        self._pending = max(self._pending, first + count)

    def _on_refreshed(self, *_args: Any) -> None:
        """The document's refresh tick: announce the events added since the last one."""
        old = self.model.total_events()
        if self._document is None or self._pending <= old:
            return
        if self.model.events is not self._document.events:  # replaced without reset_done
            self.reset(self._document.events)
            return
        self.model.grow_to(self._pending)
        self._add_types(_types_of(self.model.events, old, self.model.total_events()))

    def _on_reset(self) -> None:
        self.reset(self._document.events if self._document is not None else [])

    def _add_types(self, types: set[str]) -> None:
        new = types - self._types
        if not new:
            return
        self._types |= new
        current = self.type_combo.currentText()
        self.type_combo.blockSignals(True)  # rebuilding the list must not change the filter
        self.type_combo.clear()
        self.type_combo.addItems([self.ALL, *sorted(self._types)])
        self.type_combo.setCurrentIndex(max(0, self.type_combo.findText(current)))
        self.type_combo.blockSignals(False)

    # ------------------------------------------------------------------ following
    def _on_scrolled(self, value: int) -> None:
        self._follow = value >= self.table.verticalScrollBar().maximum()

    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._follow:
            self.table.verticalScrollBar().setValue(maximum)

    def _before_reset(self) -> None:
        current = self.table.currentIndex()
        top = self.table.indexAt(QPoint(0, 0))
        self._kept = (
            self.model.events,
            self._event_index(current.row()) if current.isValid() else None,
            self._event_index(top.row()) if top.isValid() else None,
        )

    def _after_reset(self) -> None:
        kept, self._kept = self._kept, None
        if kept is None or kept[0] is not self.model.events:  # other events: start afresh
            return
        _events, current, top = kept
        if self._follow:
            self.table.scrollToBottom()
        elif top is not None:  # the first shown event at or after the one read before
            row = self.model.first_row_from(top)
            if row < self.model.rowCount():
                idx = self.proxy.mapFromSource(self.model.index(row, 0))
                self.table.scrollTo(idx, QAbstractItemView.ScrollHint.PositionAtTop)
        if current is not None:
            row = self.model.view_row(current)
            if row >= 0:
                self.table.setCurrentIndex(self.proxy.mapFromSource(self.model.index(row, 0)))

    def _event_index(self, proxy_row: int) -> int:
        return self.model.event_index(self.proxy.mapToSource(self.proxy.index(proxy_row, 0)).row())

    def _schedule_count(self, *_args: Any) -> None:
        if not self._count_pending:
            self._count_pending = True
            QTimer.singleShot(0, self, self._update_count)  # cancelled if self is deleted

    def _update_count(self) -> None:
        self._count_pending = False
        text = f"{self.proxy.rowCount():,} of {self.model.total_events():,} events"
        if self.model.searching():
            text += f" (searched {self.model.scanned():,})"
        self.count_label.setText(text)
