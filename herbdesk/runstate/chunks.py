"""Folding a whole log's blocks of lines into a RunState (opening a log, `herbdesk summary`).

`apply_chunk` folds a block of lines. Blocks the compiled scanner read (events/fastscan.py) fold
runs of specimen lines in columns (fastfold.py) and every other line one by one; blocks split
in Python decode the frequent specimen lines into typed structs (events/bulk.py) and the rest
through orjson. Every path ends in the same `RunState` fold rules (tests/test_bulk_fold.py,
tests/test_fastscan.py).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable

import numpy as np
import orjson

from herbdesk.events.bulk import BulkLine, decode_bulk, metrics_object
from herbdesk.events.codec import BadLine, from_dict
from herbdesk.events.fastscan import KIND_OTHER
from herbdesk.events.reader import MAX_LINE_BYTES, EventIndex, LineChunk, ReadStats
from herbdesk.events.types import Event, EventType
from herbdesk.runstate.fold_columns import MIN_SEGMENT, TYPE_NAMES, fold_records
from herbdesk.runstate.state import RunState, judged


def apply_chunk(
    state: RunState,
    chunk: LineChunk,
    stats: ReadStats,
    decoder: Callable[[bytes], Event],
    index: EventIndex | None = None,
) -> None:
    """Fold a block of raw log lines (bulk loads): bad lines are counted, never fatal.

    herbdesk lines are folded from their decoded objects with no Event built; other
    shapes (the original scripts' logs, result records) go through `decoder`. With an
    `index`, every event's place in the file is recorded for lazy views.
    """
    for line_no, start, head in chunk.too_long:
        stats.lines += 1
        stats.record_bad(line_no, start, f"line longer than {MAX_LINE_BYTES} bytes", head)
    if chunk.records is not None:
        _apply_scanned(state, chunk, stats, decoder, index)
        return
    starts = chunk.starts
    line_no = chunk.first_line_no - 1
    # where the typed lines are, handed to the index in one go (kept in file order: the
    # list is flushed before any other line is indexed)
    at: list[int] = []
    lengths: list[int] = []
    types: list[str] = []
    keep = index is not None
    lines = events = 0
    for i, raw in enumerate(chunk.lines):
        line = raw.strip()
        if not line:
            continue
        lines += 1
        bulk = decode_bulk(line)
        if bulk is not None:
            fold_bulk(state, bulk)
            events += 1
            if keep:
                at.append(starts[i])
                lengths.append(len(raw))
                types.append(bulk.event_type)
            continue
        if index is not None and at:
            index.extend_lines(at, lengths, types)
            at, lengths, types = [], [], []
        events += _fold_general(
            state, line, starts[i], len(raw), line_no + i + 1, stats, decoder, index
        )
    if index is not None and at:
        index.extend_lines(at, lengths, types)
    stats.lines += lines
    stats.events += events
    decode_metrics(state)


def _fold_general(
    state: RunState,
    line: bytes,
    start: int,
    raw_len: int,
    line_no: int,
    stats: ReadStats,
    decoder: Callable[[bytes], Event],
    index: EventIndex | None,
) -> bool:
    """Fold one stripped line of any shape; False if it was bad (and counted)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        stats.record_bad(line_no, start, f"invalid JSON: {exc}", line)
        return False
    if type(obj) is dict and "schema_version" in obj and "event_type" in obj:
        if not state.apply_object(obj):
            try:
                state.apply(from_dict(obj))
            except BadLine as exc:
                stats.record_bad(line_no, start, str(exc), line)
                return False
        if index is not None:
            index.add_line(start, raw_len, str(obj["event_type"]))
        return True
    try:
        ev = decoder(line)
    except BadLine as exc:
        stats.record_bad(line_no, start, str(exc), line)
        return False
    state.apply(ev)
    if index is not None:
        index.add_event(ev)
    return True


def _fold_line(
    state: RunState,
    line: bytes,
    start: int,
    raw_len: int,
    line_no: int,
    stats: ReadStats,
    decoder: Callable[[bytes], Event],
    index: EventIndex | None,
) -> bool:
    """`_fold_general`, trying the typed decode of frequent specimen lines first."""
    bulk = decode_bulk(line)
    if bulk is None:
        return _fold_general(state, line, start, raw_len, line_no, stats, decoder, index)
    fold_bulk(state, bulk)
    if index is not None:
        index.add_line(start, raw_len, bulk.event_type)
    return True


def _apply_scanned(
    state: RunState,
    chunk: LineChunk,
    stats: ReadStats,
    decoder: Callable[[bytes], Event],
    index: EventIndex | None,
) -> None:
    """`apply_chunk` for a block the compiled scanner read (events/fastscan.py).

    Runs of scanned specimen lines fold in columns (fastfold.py); every other line, and
    runs too short to be worth it, fold one by one as in the Python path.
    """
    recs, data, base, scanner = chunk.records, chunk.data, chunk.base, chunk.scanner
    assert recs is not None and scanner is not None
    kind = recs.kind
    stats.lines += int(np.count_nonzero(kind))
    events = 0
    edges = [-1, *np.flatnonzero(kind == KIND_OTHER).tolist(), len(recs)]
    for a, b in itertools.pairwise(edges):
        sel = np.flatnonzero(kind[a + 1 : b]) + (a + 1)
        if len(sel) >= MIN_SEGMENT:
            run = recs.take(slice(a + 1, b) if len(sel) == b - a - 1 else sel)
            fold_records(state, data, run, scanner, base)
            if index is not None:
                starts = base + run.start.astype(np.int64)
                index.extend_kinds(starts, run.len, run.kind, TYPE_NAMES)
            events += len(run)
        else:
            for i in sel.tolist():
                events += _fold_scanned_line(state, chunk, i, stats, decoder, index)
        if b < len(recs):
            events += _fold_scanned_line(state, chunk, b, stats, decoder, index)
    stats.events += events
    decode_metrics(state)


def _fold_scanned_line(
    state: RunState,
    chunk: LineChunk,
    i: int,
    stats: ReadStats,
    decoder: Callable[[bytes], Event],
    index: EventIndex | None,
) -> bool:
    assert chunk.records is not None
    start, length = int(chunk.records.start[i]), int(chunk.records.len[i])
    line = bytes(chunk.data[start : start + length]).strip()
    return _fold_line(
        state, line, chunk.base + start, length, chunk.first_line_no + i, stats, decoder, index
    )


def fold_bulk(state: RunState, ev: BulkLine) -> None:
    """`RunState.apply` for a typed specimen line (events/bulk.py): same outcome, no dicts."""
    et, seq, sid, sequence, d = ev.event_type, ev.seq, ev.specimen_id, ev.sequence, ev.data
    # `_header`, written out: this runs for nine lines in ten of an opened log
    state.events += 1
    if seq:
        last = state.last_seq
        if last and seq > last + 1:
            state.seq_gaps += seq - last - 1
        if seq > last:
            state.last_seq = seq
    ts = ev.timestamp
    if ts:
        if state.first_ts is None:
            state.first_ts = ts
        state.last_ts = ts
    tc = state.type_counts
    tc[et] = tc.get(et, 0) + 1
    if state.run_id is None and ev.run_id:
        state.run_id = ev.run_id
    if et == EventType.SPECIMEN_PROCESSING or et == EventType.SPECIMEN_QUEUED:
        # a known row with nothing to fill in: `_row`'s work is only marking it changed
        row = state.row_of.get(sid) if sid else None
        if row is None or (d.image and not state.image[row]) or (d.path and not state.path[row]):
            row = state.row_for(sid, sequence, seq, d.image, d.path)
        else:
            state.changed.add(row)
        if et == EventType.SPECIMEN_PROCESSING and state.row_status[row] != "processing":
            state.set_status(row, "processing")
    else:
        state.apply_finished(
            et,
            ev.timestamp,
            sid,
            sequence,
            seq,
            d.image,
            d.path,
            d.success,
            d.fields_extracted,
            d.confidence,
            d.processing_time_ms,
            d.cost_usd,
            orjson.loads(memoryview(d.error)) if d.error else None,
            d.attempts,
            d.tokens,
        )
        q = orjson.loads(memoryview(d.quality)) if d.quality else None
        if q is None and d.dwc:  # values without a quality object: judged, as in RunState
            with contextlib.suppress(orjson.JSONDecodeError):
                q = judged(orjson.loads(memoryview(d.dwc)))
        if q is not None or state.quality:
            row = state.last_finished_row
            assert row is not None
            ok = et == EventType.SPECIMEN_COMPLETED and d.success is not False
            state.quality.set(row, q if ok else None)
        if d.dwc or state.terms:
            row = state.last_finished_row
            assert row is not None
            ok = et == EventType.SPECIMEN_COMPLETED and d.success is not False
            state.terms.set_raw(row, memoryview(d.dwc) if ok and d.dwc else None)
    if ev.metrics:
        raw = metrics_object(ev.metrics)
        if raw is not None:
            state.metrics_raw = raw


def decode_metrics(state: RunState) -> None:
    if state.metrics_raw is not None:
        # e.g. 1e400 in it: msgspec skipped over it, orjson cannot read it
        with contextlib.suppress(orjson.JSONDecodeError):
            state.latest_metrics = orjson.loads(state.metrics_raw)
        state.metrics_raw = None
