"""Which events pass the event log's filter: type codes and the raw-bytes text search.

Apart from the pane because it is numpy and file reading, not Qt: the type filter works on
the store's type codes without decoding, and the text filter (`FilterScan`) searches the
raw JSON lines for a run of the needle that every matching line must hold (`raw_needle`), a
block at a time, so that a model can run it in short slices and keep the GUI live.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO

import numpy as np

from herbdesk.events.reader import EventIndex, EventStore, open_regular
from herbdesk.events.types import Event
from herbdesk.ui.eventlog_format import SUMMARY_LITERALS, summarize

BLOCK_EVENTS = 8192  # events per block of a scan (a block's rows show together)
BLOCK_BYTES = 2 << 20  # at most this much of the file read per block
CHECK_CHUNK = 256  # events decoded and checked per step (a few ms)


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
        part, names = events.held_type_codes(start, stop)
        out.append((np.frombuffer(part, dtype=np.uint16), names))
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


def types_of(events: Sequence[Event], start: int, stop: int) -> set[str]:
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
_LITERALS_CF = tuple(s.casefold() for s in SUMMARY_LITERALS)
# Punctuation a summary writes next to copied text (and JSON/repr structure): a needle holding
# one could straddle copied and written text.
_GLUE = frozenset(":,;()#/[]{}'%?\"\\")
# What str() or a format spec makes of a number: 1e-05, inf, nan, 0.87 (rounded, not copied).
_NUMBER_CHARS = frozenset("0123456789.+-einfa")


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


class FilterScan:
    """One filter's pass over the events, in log order, a block at a time.

    With a text needle, `raw_needle` lets a block of the file (or of held lines) be searched
    as bytes, and only the events whose line may match are decoded; otherwise every event of
    the block is. Events before `within_end` are only those of `within` (a narrowing filter
    searches the rows shown before). The block sizes default to this module's constants;
    EventLogModel passes those of `herbdesk.ui.eventlog` (the same values, re-exported), where
    they are tuned with its timer's slices (and shrunk by tests).
    """

    def __init__(
        self,
        events: Sequence[Event],
        event_type: str | None,
        needle: str,
        within: np.ndarray | None = None,
        within_end: int = 0,
        *,
        block_events: int = BLOCK_EVENTS,
        block_bytes: int = BLOCK_BYTES,
        check_chunk: int = CHECK_CHUNK,
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
        self.block_events, self.block_bytes = block_events, block_bytes
        self.check_chunk = check_chunk

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
            chunk = block.check[k : k + self.check_chunk]
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
        """Where the block from a ends: at most `block_events` events (or rows of `within`)
        and `block_bytes` of the file, never across `within_end` or the end of the file part."""
        if not self.needle:
            b = stop  # the type filter alone is numpy over type codes: all at once
        elif a < self.within_end:
            assert self.within is not None
            k = int(np.searchsorted(self.within, a)) + self.block_events
            b = min(stop, self.within_end, int(self.within[k]) if k < len(self.within) else stop)
        else:
            b = min(stop, a + self.block_events)
        if a < self.within_end:
            b = min(b, self.within_end)
        events = self.events
        if isinstance(events, EventStore) and a < events.limit:
            b = min(b, events.limit)
            if self.pattern is not None and events.file_index is not None:
                b = a + _within_bytes(events.file_index, a, b, self.block_bytes)
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
