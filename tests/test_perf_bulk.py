"""The bulk load path (chunks of lines folded without Event objects, an offsets index) must
give exactly what the event-by-event path gives, damage included. Correctness only: no timing.
"""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest

from herbdesk.events import EventBus, EventLogWriter, EventType
from herbdesk.events import reader as reader_mod
from herbdesk.events.legacy import AutoDecoder
from herbdesk.events.reader import (
    EventIndex,
    EventStore,
    ReadStats,
    iter_events,
    iter_line_chunks,
    read_events,
)
from herbdesk.runstate.chunks import apply_chunk
from herbdesk.runstate.load import load_state
from herbdesk.runstate.state import RunState

FIXTURES = Path(__file__).parent / "fixtures"
COLUMNS = [
    "specimen_id",
    "image",
    "path",
    "row_status",
    "sequence",
    "fields_extracted",
    "confidence",
    "time_ms",
    "cost_usd",
    "error",
    "attempts",
    "finish_x",
    "cum_rate",
    "roll_rate",
    "finish_conf",
    "checkpoints",
    "warnings",
    "consumer_errors",
    "latest_metrics",
    "type_counts",
    "preflight",
    "config",
]


def _write_run(path: Path, n: int = 60) -> None:
    bus = EventBus("run-1", EventLogWriter(path))
    bus.emit(EventType.EXTRACTION_STARTED, data={"total": n, "config": {"engine": "x"}})
    for i in range(n):
        bus.emit(EventType.SPECIMEN_QUEUED, specimen_id=f"s{i}", data={"image": f"{i}.jpg"})
    for i in range(n):
        sid = f"s{i}"
        bus.emit(EventType.SPECIMEN_PROCESSING, specimen_id=sid, data={"image": f"{i}.jpg"})
        if i % 7 == 3:
            bus.emit(EventType.SPECIMEN_RETRYING, specimen_id=sid, data={"error": "x"})
        ok = i % 5 != 2
        bus.emit(
            EventType.SPECIMEN_COMPLETED if ok else EventType.SPECIMEN_FAILED,
            specimen_id=sid,
            sequence=i + 1,
            data={
                "image": f"{i}.jpg",
                "success": ok,
                "confidence": 0.5 + i / 200,
                "processing_time_ms": 1000.0 + i,
                "tokens": 10,
                "cost_usd": 0.001,
                "error": None if ok else {"kind": "bad_reply", "message": "no"},
                "dwc": {"scientificName": f"Quercus {i % 7}", "catalogNumber": f"MO-{i}"}
                if ok
                else None,
            },
            metrics={"processed": i + 1},
        )
        if i == 10:
            bus.emit(EventType.VALIDATION_CHECKPOINT, data={"checkpoint": 10, "status": "passed"})
    bus.emit(EventType.EXTRACTION_COMPLETED, data={"processed": n})


def _damage(path: Path) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    odd = {
        "schema_version": 1,
        "seq": "9999",
        "event_type": "specimen.queued",
        "timestamp": "2026-01-01T00:00:00Z",
        "run_id": "run-1",
        "specimen_id": "odd",
        "sequence": 4.0,
        "data": {"image": "odd.jpg"},
    }
    extra = [
        b"\n",
        b"   \n",
        b"{not json\n",
        b"[1, 2]\n",
        b'{"schema_version": 1, "event_type": 5}\n',
        b'{"schema_version": 1, "event_type": "x", "data": [1]}\n',
        b'{"schema_version": 1, "event_type": "x", "seq": -1}\n',
        orjson.dumps(odd) + b"\n",  # converted by from_dict, not the fast path
        b"x" * 3000 + b"\n",  # longer than the (patched) limit
        (FIXTURES / "legacy_events.jsonl").read_bytes().splitlines(keepends=True)[1],
        b"y" * 2500,  # over-long and unterminated, in the middle after the insert below
    ]
    out = lines[:20] + extra[:-1] + lines[20:40] + [extra[-1] + b"\n"] + lines[40:]
    out[-1] = out[-1].rstrip(b"\n")[:-5]  # a torn last line without its newline
    path.write_bytes(b"".join(out))


def _one_by_one(path: Path) -> tuple[RunState, ReadStats]:
    st, stats = RunState(), ReadStats()
    for ev in iter_events(path, stats):
        st.apply(ev)
    st.bad_lines = stats.bad_lines
    return st, stats


def _bulk(
    path: Path, chunk: int, first: int | None = None
) -> tuple[RunState, ReadStats, EventIndex]:
    st, stats, index = RunState(), ReadStats(), EventIndex(path)
    dec = AutoDecoder()
    with open(path, "rb") as fh:
        for c in iter_line_chunks(fh, chunk_bytes=chunk, first_bytes=first):
            apply_chunk(st, c, stats, dec, index)
    st.bad_lines = stats.bad_lines
    return st, stats, index


def _same_state(a: RunState, b: RunState) -> None:
    for name in COLUMNS:
        assert getattr(a, name) == getattr(b, name), name
    ea, eb = a.finish_epoch, b.finish_epoch
    assert len(ea) == len(eb)
    assert all((x == y) or (math.isnan(x) and math.isnan(y)) for x, y in zip(ea, eb, strict=True))
    assert a.summary() == b.summary()
    assert a.terms.as_lists(a.rows) == b.terms.as_lists(b.rows)


@pytest.mark.parametrize(("chunk", "first"), [(1 << 20, None), (97, 13), (4096, 500), (1, None)])
def test_bulk_fold_equals_event_by_event_fold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, first: int | None
) -> None:
    monkeypatch.setattr(reader_mod, "MAX_LINE_BYTES", 2048)
    log = tmp_path / "events.jsonl"
    _write_run(log)
    _damage(log)
    ref, ref_stats = _one_by_one(log)
    got, stats, index = _bulk(log, chunk, first)
    _same_state(got, ref)
    assert (stats.lines, stats.events, stats.bad_lines) == (
        ref_stats.lines,
        ref_stats.events,
        ref_stats.bad_lines,
    )
    assert sorted((b.line_no, b.offset) for b in stats.bad_samples) == sorted(
        (b.line_no, b.offset) for b in ref_stats.bad_samples
    )
    assert ref_stats.bad_lines >= 8
    # the index gives back every event, lazily, in file order
    events = list(iter_events(log))
    assert len(index) == len(events)
    assert [index.event(i) for i in range(len(index))] == events
    assert list(index.iter_events()) == events
    assert [index.event_type(i) for i in range(len(index))] == [e.event_type for e in events]


def test_load_state_matches_fixtures() -> None:
    for f in sorted(FIXTURES.glob("*.jsonl")):
        ref, ref_stats = _one_by_one(f)
        got, stats = load_state(f)
        _same_state(got, ref)
        assert stats.bad_lines == ref_stats.bad_lines


def test_event_store_is_a_sequence_over_index_and_tail(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    _write_run(log, n=20)
    events, _ = read_events(log)
    _, _, index = _bulk(log, 256)
    store = EventStore(index, limit=30)
    store.extend(events[:3])
    assert len(store) == 33
    assert list(store) == events[:30] + events[:3]
    assert store[5] == events[5] and store[-1] == events[2] and store[31] == events[1]
    assert store[25:32] == events[25:30] + events[:2]
    assert store[::10] == [events[0], events[10], events[20], events[0]]
    assert store.types_in(0, 33) == {e.event_type for e in events[:30]}
    assert store.event_type(32) == events[2].event_type
    with pytest.raises(IndexError):
        store[33]
    assert list(EventStore()) == []


def test_event_store_holds_live_events_compactly_and_gives_them_back() -> None:
    from herbdesk.events.types import Event

    ok = Event("specimen.queued", "r", 1, "2026-01-01T00:00:00Z", "s1", None, {"image": "a"})
    odd = Event("custom.thing", "r", 2, "", None, None, {"x": {1, 2}})  # a set: not JSON
    store = EventStore()
    store.extend([ok, odd])
    assert isinstance(store.tail[0], bytes) and store.tail[1] is odd
    assert store[0] == ok and store[1] is odd and list(store) == [ok, odd]
    assert [store.event_type(0), store.event_type(1)] == ["specimen.queued", "custom.thing"]
    assert store.types_in(0, 2) == {"specimen.queued", "custom.thing"}


def test_quality_tally_holds_judged_rows_compactly() -> None:
    """A judged row costs the tally a few bytes (its kind and fingerprint in arrays), not the
    tuples of term strings per row (~270 bytes here, ~1 KB with strings parsed per line) that
    put an opened million-event log's peak RSS past 400 MB once completed lines carried
    quality objects; the counts stay exact."""
    import tracemalloc

    from herbdesk.quality.tally import QualityTally

    objects = [
        orjson.loads(
            orjson.dumps(
                {
                    "usable": i % 7 != 0,
                    "filled": [
                        "catalogNumber",
                        "eventDate",
                        "locality",
                        "recordedBy",
                        "scientificName",
                    ],
                    "invalid": [] if i % 7 else ["scientificName"],
                    "findings": [] if i % 7 else [["name_boilerplate", "scientificName", "Host"]],
                    "fingerprint": f"{i * 2654435761 % 2**64:016x}",
                }
            )
        )
        for i in range(50_000)
    ]
    tracemalloc.start()
    tally = QualityTally()
    for row, q in enumerate(objects):
        tally.set(row, q)
    size, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert size < 3_000_000, f"{size / len(objects):.0f} bytes a row"
    assert tally.usable == sum(1 for i in range(50_000) if i % 7)
    assert tally.invalid["scientificName"] == tally.findings["name_boilerplate"] == 7143
    assert tally.identical_records == 0
    tally.set(5, objects[1])  # row 5 now holds row 1's record: two identical usable records
    assert tally.identical_records == 2 and tally.row_label(0) == "NOT usable: name_boilerplate"


def test_quality_counts_follow_single_rows_after_a_bulk_block() -> None:
    """Counts kept up per row (a live tail) after a block set at once (a load) equal a
    recount: the two ways of keeping them must not drift apart."""
    import numpy as np

    from herbdesk.quality.tally import QualityTally

    def q(usable: bool, invalid: list[str], checks: list[str]) -> dict[str, object]:
        findings = [[c, "scientificName", "x"] for c in checks]
        filled = ["eventDate", "scientificName"]
        return {"usable": usable, "filled": filled, "invalid": invalid, "findings": findings,
                "fingerprint": None}  # fmt: skip

    tally = QualityTally()
    good = tally.kind_of(q(True, [], []))
    bad = tally.kind_of(q(False, ["scientificName"], ["name_boilerplate", "required_missing"]))
    assert good is not None and bad is not None
    rows = np.arange(100)
    tally.set_kinds(rows, np.where(rows % 4, good, bad).astype(np.int32),
                    np.zeros(100, np.uint64), np.zeros(100, bool))  # fmt: skip
    assert tally.findings["name_boilerplate"] == 25  # counted from the block
    for row in range(0, 100, 2):  # then row by row: half the rows change kind, one is cleared
        tally.set(row, q(row % 3 == 0, [] if row % 3 == 0 else ["eventDate"], ["date_future"]))
    tally.clear_row(1)
    kept = (tally.filled.copy(), tally.invalid.copy(), tally.findings.copy(), tally.usable)
    tally._counts = None  # a recount from the kinds
    assert (tally.filled, tally.invalid, tally.findings, tally.usable) == kept
    assert kept[2]["date_future"] == 50 and kept[0]["eventDate"] == 99
