"""Event envelope, codec, writer, reader and bus."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson

from herbdesk.events import EventBus, EventLogWriter, EventType, decode, encode, read_events
from herbdesk.events.codec import BadLine
from herbdesk.events.types import ALL_EVENT_TYPES, Event


def test_encode_decode_roundtrip_and_envelope() -> None:
    ev = Event(
        event_type=EventType.SPECIMEN_COMPLETED,
        run_id="r1",
        seq=7,
        timestamp="2026-11-26T21:18:49.123Z",
        specimen_id="ab" * 32,
        sequence=3,
        data={"success": True},
        metrics={"success_rate": 1.0},
    )
    line = encode(ev)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    obj = orjson.loads(line)
    assert obj["schema_version"] == 1
    assert {"seq", "event_type", "timestamp", "run_id", "specimen_id", "sequence"} <= set(obj)
    assert decode(line) == ev


def test_decode_rejects_garbage() -> None:
    for bad in (b'{"event_type": "x", "data": 3}', b"[1,2]", b'{"seq": 1', b"not json"):
        try:
            decode(bad)
        except BadLine:
            continue
        raise AssertionError(f"accepted {bad!r}")


def test_reader_skips_and_counts_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    w = EventLogWriter(path)
    bus = EventBus("r1", w)
    bus.emit(EventType.EXTRACTION_STARTED, data={"total": 2})
    with open(path, "ab") as fh:
        fh.write(b"{this is not json}\n")
    bus.emit(EventType.EXTRACTION_COMPLETED)
    with open(path, "ab") as fh:
        fh.write(b'{"seq": 99, "event_type": "specimen.que')  # torn last line
    w.close()
    events, stats = read_events(path)
    assert [e.event_type for e in events] == ["extraction.started", "extraction.completed"]
    assert stats.bad_lines == 2
    assert stats.bad_samples[0].line_no == 2


def test_writer_repairs_torn_tail_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        b'{"schema_version": 1, "seq": 1, "event_type": "extraction.started"}\n{"seq": 2, "ev'
    )
    w = EventLogWriter(path)
    bus = EventBus("r1", w, start_seq=2)
    bus.emit(EventType.EXTRACTION_COMPLETED)
    w.close()
    events, stats = read_events(path)
    assert [e.seq for e in events] == [1, 3]
    assert stats.bad_lines == 1


def test_bus_isolates_failing_consumer_and_reports_it() -> None:
    bus = EventBus("r1")
    seen: list[str] = []

    def broken(ev: Event) -> None:
        if ev.event_type == EventType.SPECIMEN_QUEUED:
            raise RuntimeError("boom")

    bus.subscribe(broken, "broken")
    bus.subscribe(lambda ev: seen.append(ev.event_type), "recorder")
    bus.emit(EventType.SPECIMEN_QUEUED, specimen_id="s")
    assert seen == [EventType.SPECIMEN_QUEUED, EventType.CONSUMER_ERROR]


def test_nested_emit_is_dispatched_after_current_event_in_log_order(tmp_path: Path) -> None:
    w = EventLogWriter(tmp_path / "e.jsonl")
    bus = EventBus("r1", w)
    order: list[tuple[str, int]] = []

    def checkpointer(ev: Event) -> None:
        if ev.event_type == EventType.SPECIMEN_COMPLETED:
            bus.emit(EventType.VALIDATION_CHECKPOINT)

    bus.subscribe(checkpointer)
    bus.subscribe(lambda ev: order.append((ev.event_type, ev.seq)))
    bus.emit(EventType.SPECIMEN_COMPLETED)
    w.close()
    assert order == [(EventType.SPECIMEN_COMPLETED, 1), (EventType.VALIDATION_CHECKPOINT, 2)]
    logged, _ = read_events(tmp_path / "e.jsonl")
    assert [(e.event_type, e.seq) for e in logged] == order


def test_seq_is_strictly_increasing_under_concurrent_emits(tmp_path: Path) -> None:
    w = EventLogWriter(tmp_path / "e.jsonl")
    bus = EventBus("r1", w)

    def spam() -> None:
        for _ in range(500):
            bus.emit(EventType.SPECIMEN_PROCESSING)

    threads = [threading.Thread(target=spam) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    events, stats = read_events(tmp_path / "e.jsonl")
    assert stats.bad_lines == 0
    assert [e.seq for e in events] == list(range(1, 2001))


def test_documented_event_types_match_code() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "events.md").read_text()
    for et in ALL_EVENT_TYPES:
        assert f"`{et}`" in doc, f"{et} is not documented in docs/events.md"
