"""Filtering inside EventLogModel over an opened log and live events; rows on the refresh tick."""

from __future__ import annotations

import random
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_ui_widgets import Events, column, realistic_run, sid, wait_text

from herbdesk.events.codec import encode
from herbdesk.events.reader import EventStore
from herbdesk.events.types import Event, EventType
from herbdesk.ui import loader as loader_mod
from herbdesk.ui.document import RunDocument
from herbdesk.ui.eventlog import (
    COL_TYPE,
    EventFilterProxy,
    EventLogModel,
    EventLogPane,
    summarize,
    type_mask,
)
from herbdesk.ui.loader import LogLoader

if TYPE_CHECKING:
    from pytestqt.modeltest import ModelTester
    from pytestqt.qtbot import QtBot

FAILED, COMPLETED, QUEUED = (
    EventType.SPECIMEN_FAILED,
    EventType.SPECIMEN_COMPLETED,
    EventType.SPECIMEN_QUEUED,
)


@pytest.fixture()
def doc(qtbot: QtBot) -> RunDocument:
    return RunDocument()


def run_events(ev: Events, n: int, seed: int = 3) -> list[Event]:
    """A run of n specimens: queued, processing, then completed or failed (and some retries)."""
    rng = random.Random(seed)
    out = realistic_run(ev)
    out += [ev.queued(i) for i in range(10, 10 + n)]
    for i in range(10, 10 + n):
        out.append(ev(EventType.SPECIMEN_PROCESSING, i, image=f"specimen_{i:03d}.jpg"))
        if rng.random() < 0.1:
            out.append(ev(EventType.SPECIMEN_RETRYING, i, attempt=1, delay_s=1.0))
        if rng.random() < 0.2:
            out.append(ev.failed(i, rng.choice(["timeout", "http_500"])))
        else:
            out.append(ev.completed(i, round(rng.random(), 2)))
    return out


def write_log(path: Path, events: list[Event]) -> Path:
    path.write_bytes(b"".join(encode(e) for e in events))
    return path


def open_log(qtbot: QtBot, doc: RunDocument, path: Path) -> list[tuple[int, int]]:
    """Load a log into the document in blocks, as the window does; the (first, count) of
    every block."""
    blocks: list[tuple[int, int]] = []
    doc.events_added.connect(lambda first, count: blocks.append((first, count)))
    doc.reset(None, str(path))
    loader = LogLoader(path)
    loader.events_loaded.connect(doc.apply_events)
    with qtbot.waitSignal(loader.loaded, timeout=20000):
        loader.start()
    loader.wait()
    qtbot.waitUntil(lambda: len(doc.events) == len(doc.events.file_index or []), timeout=5000)
    doc.flush()
    return blocks


@pytest.fixture()
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader_mod, "FIRST_BYTES", 2048)
    monkeypatch.setattr(loader_mod, "CHUNK_BYTES", 4096)


def shown(model: EventLogModel) -> list[int]:
    return [model.event_index(r) for r in range(model.rowCount())]


def expected(store: EventStore | list[Event], event_type: str | None, text: str) -> list[int]:
    needle = text.strip().casefold()
    out = []
    for i, e in enumerate(store):
        if event_type is not None and e.event_type != event_type:
            continue
        if needle and not any(
            needle in s.casefold() for s in (e.event_type, e.specimen_id or "", summarize(e))
        ):
            continue
        out.append(i)
    return out


def test_type_filter_over_opened_log_and_live_events(
    qtbot: QtBot, tmp_path: Path, doc: RunDocument, small_blocks: None
) -> None:
    ev = Events()
    pane = EventLogPane()
    qtbot.addWidget(pane)
    pane.resize(700, 220)
    pane.show()
    qtbot.waitExposed(pane)
    pane.attach(doc)
    blocks = open_log(qtbot, doc, write_log(tmp_path / "events.jsonl", run_events(ev, 150)))
    store, model = doc.events, pane.model
    assert len(blocks) > 5 and store.file_index is not None and store.limit == len(store)
    assert model.rowCount() == pane.proxy.rowCount() == len(store)

    pane.type_combo.setCurrentText(FAILED)
    want = expected(store, FAILED, "")
    assert 10 < len(want) < 60
    assert shown(model) == want
    assert column(pane.proxy, COL_TYPE) == [FAILED] * len(want)
    wait_text(qtbot, pane.count_label, f"{len(want)} of {len(store)} events")

    # live events after the opened file (held in the store's tail): matching ones appear
    sb = pane.table.verticalScrollBar()
    qtbot.waitUntil(lambda: sb.maximum() > 0 and sb.value() == sb.maximum())
    total = len(store)
    live = [ev.queued(500), ev.failed(500, "http_500"), ev.queued(501), ev.failed(501)]
    doc.apply_events(live[:2])
    doc.apply_events(live[2:])
    assert store.limit < len(store) == total + 4
    assert model.rowCount() == len(want)  # announced on the refresh tick
    doc.flush()
    assert shown(model) == [*want, total + 1, total + 3]
    assert column(pane.proxy, COL_TYPE)[-2:] == [FAILED, FAILED]
    assert pane.proxy.index(pane.proxy.rowCount() - 1, 3).data() == sid(501)[:12]
    qtbot.waitUntil(lambda: sb.value() == sb.maximum())  # still following the newest
    wait_text(qtbot, pane.count_label, f"{len(want) + 2} of {total + 4} events")
    doc.apply_events([ev.queued(502)])  # none matching: nothing inserted, the total grows
    doc.flush()
    assert model.rowCount() == len(want) + 2
    wait_text(qtbot, pane.count_label, f"{len(want) + 2} of {total + 5} events")

    # a type that only held events have, and one code over both parts of the store
    pane.type_combo.setCurrentText(COMPLETED)
    assert shown(model) == expected(store, COMPLETED, "")
    pane.type_combo.setCurrentText(QUEUED)
    assert shown(model) == expected(store, QUEUED, "")
    assert shown(model)[-3:] == [total, total + 2, total + 4]


def test_text_filter_narrows_widens_and_clears(
    qtbot: QtBot, tmp_path: Path, doc: RunDocument, small_blocks: None
) -> None:
    ev = Events()
    pane = EventLogPane()
    qtbot.addWidget(pane)
    pane.attach(doc)
    open_log(qtbot, doc, write_log(tmp_path / "events.jsonl", run_events(ev, 80)))
    doc.apply_events([ev.failed(300, "http_500", "upstream said NO"), ev.queued(301)])
    doc.flush()
    store, model = doc.events, pane.model
    total = len(store)

    steps: list[tuple[str | None, str]] = [
        (None, "HTTP_500"),  # in the summary
        (None, "http_500 · upstream"),  # longer: narrows the rows shown
        (None, "said no"),  # held event
        (None, "specimen_01"),
        (None, "specimen_012"),
        (FAILED, "specimen_012"),
        (FAILED, "specimen_0"),  # shorter: widens
        (None, "retrying"),  # type name only, no decoding needed
        (None, sid(42)[:10].upper()),  # specimen id
        (EventType.SPECIMEN_PROCESSING, ""),
        (EventType.SPECIMEN_PROCESSING, "specimen_02"),
        (None, "no such text"),
    ]
    for event_type, text in steps:
        pane.type_combo.setCurrentText(event_type or "All")
        pane.search_edit.setText(text)
        assert shown(model) == expected(store, event_type, text), (event_type, text)
    assert model.rowCount() == 0
    wait_text(qtbot, pane.count_label, f"0 of {total} events")

    pane.search_edit.clear()
    pane.type_combo.setCurrentText("All")
    assert model.rowCount() == pane.proxy.rowCount() == total
    assert model._order is None  # no filter: rows map 1:1, no permutation is built
    assert shown(model) == list(range(total))
    wait_text(qtbot, pane.count_label, f"{total} of {total} events")


def test_filtered_model_and_proxy_pass_modeltester(
    qtmodeltester: ModelTester, doc: RunDocument
) -> None:
    ev = Events()
    model = EventLogModel()
    events = run_events(ev, 20)
    store = EventStore()
    store.extend(events)
    model.reset(store)
    proxy = EventFilterProxy()
    proxy.setSourceModel(model)
    proxy.set_type_filter(FAILED)
    proxy.set_text_filter("TIMEOUT")
    assert model.rowCount() == len(expected(store, FAILED, "timeout")) > 0
    qtmodeltester.check(model)
    qtmodeltester.check(proxy)  # and every insertion below
    more = [ev.failed(90, "timeout"), ev.queued(91), ev.failed(92, "http_500")]
    store.extend(more)
    model.grow_to(len(store))
    assert shown(model) == expected(store, FAILED, "timeout")
    assert proxy.rowCount() == model.rowCount()
    assert column(proxy, 3)[-1] == sid(90)[:12]
    proxy.set_text_filter("")
    assert shown(model) == expected(store, FAILED, "")
    proxy.set_type_filter("All")
    assert shown(model) == list(range(len(store)))
    qtmodeltester.check(proxy)


def test_rows_announced_per_refresh_not_per_block(
    qtbot: QtBot, tmp_path: Path, doc: RunDocument, small_blocks: None
) -> None:
    pane = EventLogPane()
    qtbot.addWidget(pane)
    pane.attach(doc)
    inserts: list[tuple[int, int]] = []
    pane.model.rowsInserted.connect(lambda _p, first, last: inserts.append((first, last)))
    proxy_inserts: list[int] = []
    pane.proxy.rowsInserted.connect(lambda *_a: proxy_inserts.append(1))
    blocks = open_log(qtbot, doc, write_log(tmp_path / "events.jsonl", run_events(Events(), 300)))
    total = len(doc.events)
    assert len(blocks) >= 20
    # the load folds ~4 refreshes a second: a handful of insertions, not one per block
    assert 1 <= len(inserts) <= max(3, len(blocks) // 5), (len(inserts), len(blocks))
    assert len(proxy_inserts) == len(inserts)
    assert inserts[0][0] == 0 and inserts[-1][1] == total - 1
    assert all(b[0] == a[1] + 1 for a, b in pairwise(inserts))

    # live batches between two refreshes: one insertion
    inserts.clear()
    ev = Events()
    for i in range(10):
        doc.apply_events([ev.queued(1000 + i), ev(EventType.SPECIMEN_PROCESSING, 1000 + i)])
    doc.flush()
    assert inserts == [(total, total + 19)]


def test_selection_kept_across_filter_changes(qtbot: QtBot, doc: RunDocument) -> None:
    pane = EventLogPane()
    qtbot.addWidget(pane)
    pane.resize(700, 220)
    pane.show()
    qtbot.waitExposed(pane)
    pane.attach(doc)
    doc.apply_events(run_events(Events(), 60))
    doc.flush()
    model = pane.model
    target = next(i for i in expected(doc.events, FAILED, "") if i > 100)
    pane.table.setCurrentIndex(pane.proxy.index(model.view_row(target), 0))
    pane.type_combo.setCurrentText(FAILED)
    assert model.event_index(pane.table.currentIndex().row()) == target
    pane.type_combo.setCurrentText("All")
    assert model.event_index(pane.table.currentIndex().row()) == target
    pane.type_combo.setCurrentText(COMPLETED)  # filtered out: no current row
    assert not pane.table.currentIndex().isValid()


def test_type_mask_reads_codes_of_both_parts(tmp_path: Path) -> None:
    ev = Events()
    events = run_events(ev, 10)
    store = EventStore()
    store.extend(events)
    want = [e.event_type == FAILED for e in events]
    assert type_mask(store, 0, len(store), lambda t: t == FAILED).tolist() == want
    assert type_mask(events, 3, 20, lambda t: t == FAILED).tolist() == want[3:20]
    assert type_mask(store, 5, 5, lambda t: True).tolist() == []
