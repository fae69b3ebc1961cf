"""RunState folding and the event batcher."""

from __future__ import annotations

import threading
import time

from herbdesk.events import EventBus, EventType
from herbdesk.events.batcher import EventBatcher
from herbdesk.events.types import Event
from herbdesk.runstate.state import RunState


def _run_events() -> list[Event]:
    bus = EventBus("r1")
    out: list[Event] = []
    bus.subscribe(out.append)
    bus.emit(EventType.EXTRACTION_STARTED, data={"total": 3})
    for sid in ("a", "b", "c"):
        bus.emit(EventType.SPECIMEN_QUEUED, specimen_id=sid, data={"image": f"{sid}.jpg"})
    bus.emit(EventType.SPECIMEN_PROCESSING, specimen_id="a")
    bus.emit(
        EventType.SPECIMEN_COMPLETED,
        specimen_id="a",
        sequence=1,
        data={
            "success": True,
            "fields_extracted": 4,
            "confidence": 0.8,
            "processing_time_ms": 1000,
            "tokens": 10,
            "cost_usd": 0.5,
        },
    )
    bus.emit(
        EventType.SPECIMEN_FAILED,
        specimen_id="b",
        sequence=2,
        data={
            "success": False,
            "processing_time_ms": 3000,
            "error": {"kind": "bad_reply", "message": "nope"},
        },
    )
    bus.emit(EventType.EXTRACTION_FAILED, data={"reason": "fatal_error", "message": "x"})
    return out


def test_fold_counts_rows_and_summary() -> None:
    st = RunState()
    st.apply_batch(_run_events())
    assert st.rows == 3
    assert (st.succeeded, st.failed, st.processed) == (1, 1, 2)
    assert st.row_status == ["completed", "failed", "queued"]
    assert st.error[1] == "bad_reply: nope"
    assert st.avg_confidence == 0.8 and st.avg_time_ms == 2000
    s = st.summary()
    assert s["status"] == "failed" and s["reason"] == "fatal_error"
    assert s["tokens"] == 10 and s["cost_usd"] == 0.5
    assert list(st.cum_rate) == [1.0, 0.5]
    assert st.take_changed_rows().tolist() == [0, 1, 2]
    assert st.take_changed_rows().tolist() == []


def test_refinished_specimen_is_counted_once() -> None:
    """A resumed run that redoes a failed specimen replaces its row status."""
    st = RunState()
    st.apply_batch(_run_events())
    bus = EventBus("r1", start_seq=st.last_seq)
    bus.subscribe(st.apply)
    bus.emit(EventType.EXTRACTION_STARTED, data={"total": 3})
    bus.emit(EventType.SPECIMEN_SKIPPED, specimen_id="a", data={"reason": "already completed"})
    bus.emit(EventType.SPECIMEN_COMPLETED, specimen_id="b", sequence=1, data={"success": True})
    assert (st.succeeded, st.failed, st.skipped) == (2, 0, 0)
    assert st.row_status[0] == "completed"


def test_seq_gaps_are_counted() -> None:
    st = RunState()
    evs = _run_events()
    st.apply_batch(evs[:2] + evs[4:])
    assert st.seq_gaps == 2


def test_batcher_delivers_everything_in_order_in_few_batches() -> None:
    got: list[list[Event]] = []
    batcher = EventBatcher(got.append, interval=0.02)
    bus = EventBus("r")
    bus.subscribe(batcher.add)

    def spam() -> None:
        for _ in range(2000):
            bus.emit(EventType.SPECIMEN_PROCESSING)

    threads = [threading.Thread(target=spam) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    seqs = [e.seq for b in got for e in b]
    assert seqs == list(range(1, 6001))
    assert len(got) < 600  # batched, not one call per event


def test_batcher_delivers_a_lone_event_promptly() -> None:
    got: list[float] = []
    batcher = EventBatcher(lambda b: got.append(time.monotonic()), interval=0.02)
    bus = EventBus("r")
    bus.subscribe(batcher.add)
    t0 = time.monotonic()
    bus.emit(EventType.SPECIMEN_PROCESSING)
    deadline = t0 + 2.0
    while not got and time.monotonic() < deadline:
        time.sleep(0.005)
    batcher.close()
    assert got, "a single event was never delivered"
    print(f"lone event delivered after {1000 * (got[0] - t0):.1f} ms")


def test_optional_floats_read_none_where_nothing_was_recorded() -> None:
    import copy
    import pickle

    import numpy as np

    from herbdesk.runstate.columns import OptionalFloats

    col = OptionalFloats([0.5, None, 2.0])
    col.append(None)
    col[0] = None
    assert list(col) == [None, None, 2.0, None] == col.tolist() and col[1] is None
    assert col[1:3] == [None, 2.0]
    assert col == [None, None, 2.0, None]
    assert (col != [None, None, 2.0, None]) is False  # array's own != would say True (NaN)
    assert col != [None, None, 2.5, None]
    for twin in (copy.copy(col), copy.deepcopy(col), pickle.loads(pickle.dumps(col))):
        assert twin == col and twin[0] is None
    assert np.isnan(np.frombuffer(col, np.float64)).tolist() == [True, True, False, True]
