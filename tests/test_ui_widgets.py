"""Specimen table, specimen detail and event log widgets (pytest-qt, offscreen)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel

from herbdesk.common.dwc import DWC_TERMS
from herbdesk.events.types import Event, EventType
from herbdesk.extraction.rawindex import RawIndex
from herbdesk.runstate.state import RunState
from herbdesk.ui.columns import (
    COL_CONFIDENCE,
    COL_COST,
    COL_ERROR,
    COL_FILE,
    COL_SEQ,
    COL_SPECIMEN,
    COL_STATUS,
    COL_TIME,
    HEADERS,
    STATUS_COLORS,
)
from herbdesk.ui.detail import SpecimenDetail
from herbdesk.ui.document import RunDocument
from herbdesk.ui.eventlog import EventLogModel, EventLogPane, summarize
from herbdesk.ui.table import SpecimenTableView
from herbdesk.ui.table_model import SpecimenTableModel

if TYPE_CHECKING:  # pytestqt.modeltest needs pytest-qt's Qt API set up before import
    from pytestqt.modeltest import ModelTester
    from pytestqt.qtbot import QtBot

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "specimens" / "specimen_001.jpg"
EVIL = '<b>Bold</b> <img src="x.png">'
DISPLAY = Qt.ItemDataRole.DisplayRole
USER = Qt.ItemDataRole.UserRole


def sid(i: int) -> str:
    return hashlib.sha256(f"sheet-{i}".encode()).hexdigest()


class Events:
    """Builds events the way the pipeline does: seq counts up, timestamps move forward."""

    def __init__(self, run_id: str = "run-test") -> None:
        self.run_id = run_id
        self.seq = 0
        self.sequence = 0

    def __call__(self, et: str, i: int | None = None, **data: Any) -> Event:
        self.seq += 1
        sequence = None
        if et in (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED):
            self.sequence += 1
            sequence = self.sequence
        ms = self.seq * 137
        clock = f"21:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
        return Event(
            event_type=et,
            run_id=self.run_id,
            seq=self.seq,
            timestamp=f"2026-11-26T{clock}Z",
            specimen_id=sid(i) if i is not None else None,
            sequence=sequence,
            data=data,
        )

    def queued(self, i: int, folder: str = "/data/sheets") -> Event:
        name = f"specimen_{i:03d}.jpg"
        return self(EventType.SPECIMEN_QUEUED, i, image=name, path=f"{folder}/{name}")

    def completed(
        self, i: int, conf: float, ms: float = 3200.0, cost: float | None = 0.0012
    ) -> Event:
        return self(
            EventType.SPECIMEN_COMPLETED,
            i,
            image=f"specimen_{i:03d}.jpg",
            success=True,
            fields_extracted=12,
            confidence=conf,
            processing_time_ms=ms,
            attempts=1,
            tokens=900,
            cost_usd=cost,
        )

    def failed(self, i: int, kind: str = "timeout", message: str = "no reply in 60 s") -> Event:
        return self(
            EventType.SPECIMEN_FAILED,
            i,
            image=f"specimen_{i:03d}.jpg",
            success=False,
            fields_extracted=0,
            confidence=None,
            processing_time_ms=60000.0,
            attempts=3,
            tokens=0,
            cost_usd=None,
            error={"kind": kind, "message": message},
        )


def realistic_run(ev: Events) -> list[Event]:
    """Six sheets: completed, failed, retrying and queued; a checkpoint, a warning, a halt."""
    out = [
        ev(
            EventType.EXTRACTION_STARTED,
            total=6,
            config={"engine": "openrouter", "model": "qwen/qwen2.5-vl-72b-instruct:free"},
        ),
        ev(EventType.PREFLIGHT_COMPLETED, ok=True, checks=[{"name": "key", "ok": True}]),
    ]
    out += [ev.queued(i) for i in range(6)]
    out += [ev(EventType.SPECIMEN_PROCESSING, i, image=f"specimen_{i:03d}.jpg") for i in range(5)]
    out += [ev.completed(0, 0.91), ev.completed(1, 0.42, 1800.0), ev.failed(2)]
    out.append(
        ev(
            EventType.SPECIMEN_RETRYING,
            4,
            attempt=1,
            delay_s=2.0,
            error={"kind": "rate_limited", "message": "429 Too Many Requests"},
        )
    )
    out.append(ev.completed(3, 0.77, 2500.0, cost=None))
    out.append(
        ev(
            EventType.VALIDATION_CHECKPOINT,
            checkpoint=4,
            status="passed",
            success_rate=0.75,
            threshold=0.5,
        )
    )
    out.append(
        ev(
            EventType.VALIDATION_WARNING,
            at=4,
            success_rate=0.75,
            threshold=0.8,
            message="success rate 75% after 4 specimens is below 80%",
        )
    )
    out.append(
        ev(
            EventType.EXTRACTION_FAILED,
            status="failed",
            reason="consecutive_failures",
            message="3 specimens failed in a row\n(last error: timeout)",
            processed=4,
            succeeded=3,
        )
    )
    return out


def wait_text(qtbot: QtBot, label: QLabel, text: str) -> None:
    """Counts are refreshed once after a burst of row signals, on the next event-loop turn."""
    qtbot.waitUntil(lambda: label.text() == text, timeout=2000)


def column(model: Any, col: int, role: int = DISPLAY) -> list[Any]:
    return [model.index(r, col).data(role) for r in range(model.rowCount())]


@pytest.fixture()
def doc(qtbot: QtBot) -> RunDocument:
    return RunDocument()


# --------------------------------------------------------------------------- specimen table
def test_specimen_model_passes_modeltester(qtmodeltester: ModelTester, doc: RunDocument) -> None:
    model = SpecimenTableModel(doc)
    events = realistic_run(Events())
    doc.apply_events(events[:10])
    doc.flush()
    doc.apply_events(events[10:])
    doc.flush()
    qtmodeltester.check(model)

    assert model.rowCount() == 6
    # before the halt: 0 completed, 1 completed, 2 failed, 3 completed, 4 retrying, 5 queued;
    # the terminal event puts what was in flight back to queued: after a halt, "not started"
    assert column(model, COL_STATUS) == [
        "completed",
        "completed",
        "failed",
        "completed",
        "not started",
        "not started",
    ]
    assert column(model, COL_SEQ) == ["1", "2", "3", "4", "", ""]
    assert column(model, COL_CONFIDENCE) == ["0.91", "0.42", "", "0.77", "", ""]
    assert column(model, COL_TIME)[:4] == ["3.2", "1.8", "60.0", "2.5"]
    assert column(model, COL_COST)[:4] == ["0.0012", "0.0012", "", ""]
    assert column(model, COL_ERROR)[2] == "timeout: no reply in 60 s"
    spec = model.index(0, COL_SPECIMEN)
    assert spec.data() == sid(0)[:12]
    assert sid(0) in spec.data(Qt.ItemDataRole.ToolTipRole)
    assert model.index(0, COL_FILE).data() == "specimen_000.jpg"
    assert model.index(0, COL_CONFIDENCE).data(USER) == pytest.approx(0.91)
    assert model.index(2, COL_CONFIDENCE).data(USER) is None
    fg = Qt.ItemDataRole.ForegroundRole
    assert model.index(0, COL_STATUS).data(fg) == STATUS_COLORS["completed"]
    assert model.index(2, COL_STATUS).data(fg) == STATUS_COLORS["failed"]
    assert model.index(0, COL_FILE).data(fg) is None  # only the status column is coloured

    # sorted (a permutation inside the model) and filtered, both still consistent models
    model.sort(COL_CONFIDENCE, Qt.SortOrder.DescendingOrder)
    model.set_text_filter("specimen_00")
    qtmodeltester.check(model)
    assert column(model, COL_CONFIDENCE)[:3] == ["0.91", "0.77", "0.42"]


LAST_COL = len(HEADERS) - 1


def test_sync_inserts_once_and_reports_changes(qtbot: QtBot, doc: RunDocument) -> None:
    model = SpecimenTableModel(doc)
    inserts: list[tuple[int, int]] = []
    changes: list[tuple[int, int, int, int]] = []
    model.rowsInserted.connect(lambda _p, first, last: inserts.append((first, last)))
    model.dataChanged.connect(
        lambda tl, br, _roles=(): changes.append((tl.row(), br.row(), tl.column(), br.column()))
    )
    ev = Events()
    doc.apply_events([ev.queued(i) for i in range(3)])
    assert model.rowCount() == 0  # nothing announced before the view tick
    doc.flush()
    assert model.rowCount() == 3 and inserts == [(0, 2)] and changes == []

    doc.apply_events([ev(EventType.SPECIMEN_PROCESSING, 1)])
    doc.flush()
    assert inserts == [(0, 2)]
    assert changes == [(1, 1, 0, LAST_COL)]
    assert model.index(1, COL_STATUS).data() == "processing"

    # one batch: two new rows and two changed ones -> one insert, one coalesced range
    doc.apply_events([ev.queued(3), ev.queued(4), ev.completed(0, 0.8), ev.failed(2)])
    doc.flush()
    assert inserts == [(0, 2), (3, 4)]
    assert changes[-1] == (0, 2, 0, LAST_COL)
    assert column(model, COL_STATUS) == ["completed", "processing", "failed", "queued", "queued"]

    with qtbot.waitSignal(model.modelReset):
        doc.reset(None)
    assert model.rowCount() == 0
    doc.apply_events([ev.queued(9)])
    doc.flush()
    assert model.rowCount() == 1 and model.index(0, COL_FILE).data() == "specimen_009.jpg"


def test_view_sorts_and_filters_through_the_model(qtbot: QtBot, doc: RunDocument) -> None:
    view = SpecimenTableView(doc)
    qtbot.addWidget(view)
    ev = Events()
    confs = [0.5, 0.9, None, 0.1, 0.7]
    events = [ev.queued(i) for i in range(6)]
    for i, c in enumerate(confs):
        events.append(
            ev.failed(i, "http_500", "Upstream error") if c is None else ev.completed(i, c)
        )
    events.append(ev(EventType.SPECIMEN_PROCESSING, 5))
    doc.apply_events(events)
    doc.flush()
    model = view.model
    assert view.table.model() is model  # no proxy between
    wait_text(qtbot, view.count_label, "6 of 6 specimens")

    view.table.sortByColumn(COL_CONFIDENCE, Qt.SortOrder.AscendingOrder)
    assert column(model, COL_CONFIDENCE) == ["0.10", "0.50", "0.70", "0.90", "", ""]
    view.table.sortByColumn(COL_CONFIDENCE, Qt.SortOrder.DescendingOrder)
    assert column(model, COL_CONFIDENCE) == ["0.90", "0.70", "0.50", "0.10", "", ""]  # None last

    # selection reports the RunState row, not the sorted view row
    with qtbot.waitSignal(view.specimen_selected) as sig:
        view.table.setCurrentIndex(model.index(0, 0))
    assert sig.args == [1]
    assert view.current_state_row() == 1

    view.status_combo.setCurrentText("failed")
    assert column(model, COL_FILE) == ["specimen_002.jpg"]
    wait_text(qtbot, view.count_label, "1 of 6 specimens")
    view.status_combo.setCurrentText("processing")
    assert column(model, COL_STATUS) == ["processing"]
    view.status_combo.setCurrentText("All")
    view.search_edit.setText("UPSTREAM")  # error text, case-insensitive
    assert column(model, COL_FILE) == ["specimen_002.jpg"]
    view.search_edit.setText(sid(3)[:10].upper())  # specimen id
    assert column(model, COL_FILE) == ["specimen_003.jpg"]
    view.search_edit.setText("specimen_00")  # file name
    assert model.rowCount() == 6
    view.search_edit.clear()

    # live: a failure leaves the "completed" filter, a new row joins the sorted order
    view.status_combo.setCurrentText("completed")
    assert model.rowCount() == 4
    doc.apply_events([ev.failed(5), ev.queued(6), ev.completed(6, 0.99)])
    doc.flush()
    assert model.rowCount() == 5
    qtbot.waitUntil(lambda: column(model, COL_FILE)[0] == "specimen_006.jpg", timeout=3000)
    assert column(model, COL_CONFIDENCE) == ["0.99", "0.90", "0.70", "0.50", "0.10"]
    assert view.select_state_row(3)
    assert view.current_state_row() == 3
    assert not view.select_state_row(2)  # failed: filtered out


# --------------------------------------------------------------------------- detail view
def _state_with(ev: Events, image: str, path: str) -> RunState:
    state = RunState()
    state.apply(ev(EventType.SPECIMEN_QUEUED, 0, image=image, path=path))
    state.apply(ev.completed(0, 0.62))
    return state


def _write_raw(tmp_path: Path, record: dict[str, Any]) -> RawIndex:
    raw = tmp_path / "raw.jsonl"
    raw.write_bytes(orjson.dumps(record) + b"\n")
    return RawIndex(raw)


def test_detail_shows_model_text_literally(qtbot: QtBot, tmp_path: Path) -> None:
    raw_html = '<html><body><h1>Reply</h1><script>x()</script><img src="y.png"></body></html>'
    record = {
        "specimen_id": sid(0),
        "image": "specimen_000.jpg",
        "image_path": str(tmp_path / "missing.jpg"),
        "engine": "openrouter",
        "model": "<i>model</i>",
        "success": True,
        "dwc": {  # deliberately not in Darwin Core order
            "locality": {"value": "Ridge <br> above camp", "confidence": 0.3},
            "scientificName": {"value": EVIL, "confidence": 0.9},
            "catalogNumber": {"value": "HB-0001", "confidence": 0.99},
        },
        "raw_text": raw_html,
        "usage": {"total_tokens": 900},
        "cost_usd": 0.0012,
        "attempts": 2,
        "processing_time_ms": 3200.0,
        "error": None,
    }
    index = _write_raw(tmp_path, record)
    state = _state_with(Events(), "<b>x</b>.jpg", "")
    detail = SpecimenDetail()
    qtbot.addWidget(detail)
    detail.show_specimen(state, 0, index)

    fields = detail.fields_model
    terms = column(fields, 0)
    assert terms == ["catalogNumber", "scientificName", "locality"]
    assert terms == sorted(terms, key=DWC_TERMS.index)
    assert fields.index(1, 1).data() == EVIL
    assert fields.index(2, 1).data() == "Ridge <br> above camp"
    # low confidence is marked in text and colour; high confidence is not
    assert fields.index(2, 2).data() == "0.30 low"
    assert fields.index(2, 1).data(Qt.ItemDataRole.BackgroundRole) is not None
    assert fields.index(1, 2).data() == "0.90"
    assert fields.index(1, 1).data(Qt.ItemDataRole.BackgroundRole) is None
    # the record checks beside each term: the HTML in the name is no name; the rest is fine
    assert fields.index(1, 3).data() == "✗"
    assert fields.index(1, 3).data(Qt.ItemDataRole.UserRole) == "name_shape"
    assert "not shaped like" in fields.index(1, 3).data(Qt.ItemDataRole.ToolTipRole)
    assert fields.index(1, 3).data(Qt.ItemDataRole.ForegroundRole) is not None
    assert fields.index(0, 3).data() == "✓"
    assert fields.index(0, 3).data(Qt.ItemDataRole.UserRole) == "ok" and fields.usable is False

    assert detail.raw_text.toPlainText() == raw_html
    assert detail.title_label.text() == "<b>x</b>.jpg"
    assert "openrouter / <i>model</i>" in detail.meta_label.text()
    assert "2 attempts" in detail.meta_label.text()
    assert "Image not found" in detail.placeholder.text()
    assert detail.image_stack.currentWidget() is detail.placeholder
    labels = detail.findChildren(QLabel)
    assert len(labels) >= 4  # title, meta, error, placeholder (fields and raw text are tabs)
    assert all(lbl.textFormat() == Qt.TextFormat.PlainText for lbl in labels)

    assert json.loads(detail.fields_json())["scientificName"] == {"value": EVIL, "confidence": 0.9}
    detail.copy_fields_button.click()
    assert json.loads(QGuiApplication.clipboard().text())["scientificName"]["value"] == EVIL
    detail.copy_raw_button.click()
    assert QGuiApplication.clipboard().text() == raw_html

    detail.clear()
    assert fields.rowCount() == 0 and detail.raw_text.toPlainText() == ""
    assert not detail.copy_fields_button.isEnabled()


def test_detail_shows_failure_without_record(qtbot: QtBot) -> None:
    ev = Events()
    state = RunState()
    state.apply(ev.queued(0))
    state.apply(ev.failed(0, "parse_error", "reply was <not json>"))
    detail = SpecimenDetail()
    qtbot.addWidget(detail)
    detail.show_specimen(state, 0, None)
    assert detail.error_label.text() == "parse_error: reply was <not json>"
    assert not detail.error_label.isHidden()
    assert detail.fields_model.rowCount() == 0
    assert "No result" in detail.raw_text.placeholderText()
    detail.show_specimen(state, 5, None)  # out of range: cleared, no exception
    assert detail.title_label.text() == "No specimen selected"


def test_detail_loads_sample_sheet(qtbot: QtBot, tmp_path: Path) -> None:
    state = _state_with(Events(), SAMPLE.name, str(SAMPLE))
    detail = SpecimenDetail()
    qtbot.addWidget(detail)
    detail.resize(1100, 650)
    detail.show()
    with qtbot.waitSignal(detail.image_loaded, timeout=10000):  # decoded off the GUI thread
        detail.show_specimen(state, 0, None)
    view = detail.image_view
    assert detail.image_stack.currentWidget() is view
    pixmap = view._item.pixmap()
    assert sorted((pixmap.width(), pixmap.height())) == [1068, 1600]
    fitted = view.zoom()
    assert 0 < fitted < 1  # a 1600-px sheet is fitted into a smaller pane
    view.zoom_by(1.25)
    assert view.zoom() == pytest.approx(fitted * 1.25)
    view.fit()
    assert view.zoom() == pytest.approx(fitted)

    # a large scan is decoded at most 3000 px on its long side
    from PIL import Image

    big = tmp_path / "big.jpg"
    Image.new("RGB", (6000, 1500), (200, 190, 170)).save(big)
    with qtbot.waitSignal(detail.image_loaded, timeout=10000):
        detail.show_specimen(_state_with(Events(), big.name, str(big)), 0, None)
    pixmap = view._item.pixmap()
    assert (pixmap.width(), pixmap.height()) == (3000, 750)


# --------------------------------------------------------------------------- event log
def test_event_log_model_passes_modeltester(qtmodeltester: ModelTester) -> None:
    events = realistic_run(Events())
    model = EventLogModel()
    model.reset(events[:5])
    inserts: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _p, first, last: inserts.append((first, last)))
    model.append(events[5:])
    assert inserts == [(5, len(events) - 1)]
    qtmodeltester.check(model)

    by_type = {model.index(r, 2).data(): r for r in range(model.rowCount())}
    assert model.index(0, 0).data() == "1"
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", model.index(0, 1).data())
    failed = by_type[EventType.SPECIMEN_FAILED]
    assert model.index(failed, 3).data() == sid(2)[:12]
    assert model.index(failed, 4).data() == "specimen_002.jpg · timeout: no reply in 60 s"
    checkpoint = model.index(by_type[EventType.VALIDATION_CHECKPOINT], 4).data()
    assert "passed" in checkpoint and "75%" in checkpoint
    warning = model.index(by_type[EventType.VALIDATION_WARNING], 4).data()
    assert warning == "success rate 75% after 4 specimens is below 80%"
    halt = model.index(by_type[EventType.EXTRACTION_FAILED], 4).data()
    assert halt.startswith("consecutive_failures: 3 specimens failed in a row")
    assert "\n" not in halt  # one line
    retry = model.index(by_type[EventType.SPECIMEN_RETRYING], 4).data()
    assert "rate_limited: 429" in retry


def test_event_summary_is_plain_one_line_text() -> None:
    ev = Events()
    e = ev(EventType.SPECIMEN_SKIPPED, 1, image=EVIL, reason="dup\nof <i>x</i>")
    assert summarize(e) == f"{EVIL}: dup of <i>x</i>"
    odd = ev("custom.thing", None, payload={"a": 1})
    assert summarize(odd) == '{"payload": {"a": 1}}'
    long = ev(EventType.VALIDATION_WARNING, message="x" * 1000)
    assert len(summarize(long)) == 300


def test_event_log_pane_filters_and_follows(qtbot: QtBot, doc: RunDocument) -> None:
    pane = EventLogPane()
    qtbot.addWidget(pane)
    pane.resize(700, 220)
    pane.show()
    qtbot.waitExposed(pane)
    ev = Events()
    doc.apply_events([ev.queued(0)])  # before attach: shown on attach
    pane.attach(doc)
    assert pane.model.rowCount() == 1
    events = realistic_run(ev)
    doc.apply_events(events)
    assert pane.model.rowCount() == 1  # rows are announced on the document's refresh tick
    doc.flush()
    n = len(events) + 1
    assert pane.model.rowCount() == n
    combo = [pane.type_combo.itemText(i) for i in range(pane.type_combo.count())]
    assert combo[0] == "All" and set(combo[1:]) == {e.event_type for e in events}

    sb = pane.table.verticalScrollBar()
    qtbot.waitUntil(lambda: sb.maximum() > 0)
    assert sb.value() == sb.maximum()  # followed to the bottom
    doc.apply_events([ev.queued(i) for i in range(10, 30)])
    qtbot.waitUntil(lambda: sb.value() == sb.maximum() and pane.model.rowCount() == n + 20)
    sb.setValue(0)  # the user scrolls up to read: new events must not pull the view down
    doc.apply_events([ev.queued(i) for i in range(30, 50)])
    qtbot.wait(20)
    assert sb.value() == 0 and sb.maximum() > 0

    pane.type_combo.setCurrentText(EventType.SPECIMEN_FAILED)
    assert pane.model.rowCount() == 1
    pane.type_combo.setCurrentText("All")
    pane.search_edit.setText("RATE_LIMITED")
    assert column(pane.model, 2) == [EventType.SPECIMEN_RETRYING]
    pane.search_edit.clear()
    wait_text(qtbot, pane.count_label, f"{n + 40} of {n + 40} events")

    doc.reset(None)
    assert pane.model.rowCount() == 0 and pane.type_combo.count() == 1


# --------------------------------------------------------------------------- scale
def test_table_with_100k_rows(qtbot: QtBot, doc: RunDocument) -> None:
    n = 100_000
    view = SpecimenTableView(doc)
    qtbot.addWidget(view)
    view.resize(1000, 600)
    view.show()
    ev = Events()
    t0 = time.perf_counter()
    batch = [ev.queued(i) for i in range(n)]
    for i in range(n):
        if i % 10 == 3:
            batch.append(ev.failed(i))
        elif i % 10 != 7:  # every tenth stays queued
            batch.append(ev.completed(i, ((i * 7919) % 1000) / 1000.0))
    t1 = time.perf_counter()
    doc.apply_events(batch)
    t2 = time.perf_counter()
    doc.flush()
    assert view.model.rowCount() == n and view.table.model() is view.model
    t3 = time.perf_counter()
    view.table.sortByColumn(COL_CONFIDENCE, Qt.SortOrder.AscendingOrder)
    first = view.model.index(0, COL_CONFIDENCE).data()
    t4 = time.perf_counter()
    view.status_combo.setCurrentText("failed")
    failed = view.model.rowCount()
    t5 = time.perf_counter()
    wait_text(qtbot, view.count_label, "10,000 of 100,000 specimens")
    view.search_edit.setText("SPECIMEN_9993.")
    hits = view.model.rowCount()
    t6 = time.perf_counter()
    QGuiApplication.processEvents()
    t7 = time.perf_counter()
    print(
        f"\n100k rows: build events {t1 - t0:.2f}s, fold into RunState {t2 - t1:.2f}s, "
        f"sync model {t3 - t2:.3f}s, sort by confidence {t4 - t3:.3f}s, "
        f"status filter {t5 - t4:.3f}s, text filter {t6 - t5:.3f}s, repaint {t7 - t6:.3f}s"
    )
    assert first == "0.00"
    assert failed == n // 10
    assert hits == 1
    assert view.model.index(0, COL_FILE).data() == "specimen_9993.jpg"


def test_plots_draw_the_runs_own_thresholds(qtbot) -> None:
    """The halt and warning lines follow the run's logged config, not the defaults (seen in a
    run halted at 0.6 whose plot still showed "halt 0.5")."""
    from herbdesk.ui.plots import PlotsPanel

    panel = PlotsPanel()
    qtbot.addWidget(panel)
    state = RunState()
    state.config = {"validation": {"checkpoint_threshold": 0.6, "warning_threshold": 0.8}}
    panel.update_from(state)
    lines = panel._threshold_lines
    assert (lines["halt"].value(), lines["warn"].value()) == (0.6, 0.8)
    assert lines["halt"].label.format == "halt 0.6"
    panel.update_from(RunState())  # a run that logged no config: the defaults
    assert (lines["halt"].value(), lines["warn"].value()) == (0.5, 0.7)


def test_count_axes_label_compactly_at_a_fixed_width(qtbot) -> None:
    """Counts past 10,000 read 50k / 1.25M; the axis width never follows the labels (it grew
    from 28 to 57 px as a loaded file's counts grew, relaying the plot)."""
    import pyqtgraph as pg

    from herbdesk.ui.plots import PlotsPanel, compact_ticks

    assert compact_ticks([0.0, 2500.0, 5000.0], 2500.0) is None  # small: pyqtgraph's own
    assert compact_ticks([0.0, 100_000.0, 200_000.0, 300_000.0], 100_000.0) == [
        "0", "100k", "200k", "300k",
    ]  # fmt: skip
    assert compact_ticks([10_000.0, 10_500.0, 11_000.0], 500.0) == ["10.0k", "10.5k", "11.0k"]
    assert compact_ticks([1_000_000.0, 1_250_000.0], 250_000.0) == ["1.00M", "1.25M"]
    assert compact_ticks([0.0, 2_000_000.0], 2_000_000.0) == ["0", "2M"]

    panel = PlotsPanel()
    qtbot.addWidget(panel)
    axis = panel.conf_plot.getAxis("left")
    width = axis.width()
    assert width > 0
    assert axis.tickStrings([0.0, 50_000.0], 1.0, 50_000.0) == ["0", "50k"]
    small = axis.tickStrings([0.0, 0.5, 1.0], 1.0, 0.5)
    assert small == pg.AxisItem.tickStrings(axis, [0.0, 0.5, 1.0], 1.0, 0.5)  # pyqtgraph's own
    axis._updateMaxTextSize(200)  # labels far wider than any compact one
    assert axis.width() == width


def test_term_chart_shows_valid_and_invalid_shares_per_term(qtbot, tmp_path: Path) -> None:
    """The per-term quality view: for the most often filled terms, the share of records whose
    value is valid (green) and invalid (red); a published-style log of junk names shows red."""
    from herbdesk.runstate.load import load_state
    from herbdesk.ui.plots import PlotsPanel, term_shares

    lines = []
    for i in range(10):
        name = "Carex aurea Nutt." if i < 6 else "Identified by"  # 6 valid, 4 boilerplate
        dwc: dict[str, object] = {"scientificName": {"value": name}}
        if i < 5:
            dwc["eventDate"] = {"value": "1961-06-08" if i < 3 else "2809"}  # 3 valid, 2 not
        dwc["recordedBy"] = {"value": f"J. Collector{i}"} if i == 0 else {"value": ""}
        lines.append(json.dumps({"image": f"{i:064x}.jpg", "model": "ocr", "dwc": dwc}))
    raw = tmp_path / "raw.jsonl"
    raw.write_text("\n".join(lines) + "\n", encoding="utf-8")
    state, _ = load_state(raw)
    shares = {t: (round(v, 2), round(i, 2)) for t, v, i in term_shares(state)}
    assert shares["scientificName"] == (0.6, 0.4)
    assert shares["eventDate"] == (0.3, 0.2)
    assert [t for t, _, _ in term_shares(state)][:2] == ["scientificName", "eventDate"]

    panel = PlotsPanel()
    qtbot.addWidget(panel)
    panel.update_from(state)
    panel.flush()
    valid, invalid = panel.valid_bars.opts, panel.invalid_bars.opts
    order = [t for t, _, _ in term_shares(state)]
    k = order.index("scientificName")
    assert list(valid["width"])[k] == pytest.approx(0.6)
    assert list(invalid["x0"])[k] == pytest.approx(0.6)  # red starts where green ends
    assert list(invalid["width"])[k] == pytest.approx(0.4)
    assert "scientificName: 60% valid, 40% invalid of 10 records" in panel.term_plot.toolTip()
    panel.update_from(RunState())  # an empty run: no bars, a hint instead
    panel.flush()
    assert len(panel.valid_bars.opts["width"]) == 0
    assert "appears as records come in" in panel.term_plot.toolTip()


def test_banners_fold_to_the_most_severe_newest_with_a_count_of_the_rest(qtbot) -> None:
    """Three banners stacked squeezed the plots to a strip at 1280x720: one shows, the rest
    fold behind "N more" (severity first, then newest), expandable and dismissible at once."""
    from herbdesk.ui.banners import BannerBar

    bar = BannerBar()
    qtbot.addWidget(bar)
    bar.show()
    bar.show_banner("cp5", "ok", "Checkpoint 5 passed")
    bar.show_banner("warning", "warning", "Warning: success rate 60%")
    bar.show_banner("end", "ok", "Run completed")
    assert bar.ordered() == ["warning", "end", "cp5"]
    visible = [k for k in bar.ordered() if bar._banners[k].isVisible()]
    assert visible == ["warning"]
    assert bar.more_button.isVisible() and bar.more_button.text() == "2 more ▾"
    bar.show_banner("halt", "error", "Run halted")  # the worst comes forward
    assert [k for k in bar.ordered() if bar._banners[k].isVisible()] == ["halt"]
    bar.more_button.click()
    assert all(bar._banners[k].isVisible() for k in bar.ordered())
    assert bar.more_button.text() == "Show fewer ▴"
    bar._banners["halt"]._dismiss()  # dismissing one brings the next forward
    bar.more_button.click()
    assert [k for k in bar.ordered() if bar._banners[k].isVisible()] == ["warning"]
    assert bar.more_button.text() == "2 more ▾"
    bar.dismiss_all_button.click()
    assert bar.texts() == [] and not bar.more_button.isVisible()


def test_banner_controls_survive_the_banner_that_held_them(qtbot) -> None:
    from herbdesk.ui.banners import BannerBar

    bar = BannerBar()
    qtbot.addWidget(bar)
    bar.show()
    bar.show_banner("a", "error", "first")
    bar.show_banner("b", "ok", "second")
    bar.show_banner("c", "ok", "third")
    bar.remove_banner("a")  # it held "2 more" and "Dismiss all"
    qtbot.wait(10)  # deleteLater runs
    assert bar.more_button.isVisible() and bar.more_button.text() == "1 more ▾"
    bar.clear()
    qtbot.wait(10)
    bar.show_banner("d", "ok", "again")
    bar.show_banner("e", "ok", "and again")
    assert bar.more_button.text() == "1 more ▾"


def test_kpi_cards_never_cut_their_text_at_a_laptop_width(qtbot) -> None:
    """At 1280x720 beside the setup dock the strip is ~800 px: titles read "Success r",
    values "$0.09(" (cut). Now a card shrinks its font, says a short title, elides last."""
    from herbdesk.ui.kpis import KpiStrip

    strip = KpiStrip()
    qtbot.addWidget(strip)
    strip.resize(800, 80)
    strip.show()
    qtbot.waitExposed(strip)
    values = {
        "processed": "333k / 333k", "success": "100.0 %", "usable": "68.8 %",
        "throughput": "2,547/m", "cost": "$0.1440", "confidence": "0.85", "eta": "12h 05m",
    }  # fmt: skip
    for key, text in values.items():
        strip.cards[key].set(text)
    QGuiApplication.processEvents()
    for key, card in strip.cards.items():
        assert not card.title.is_elided(), (key, card.title.shown_text()[1])
        assert not card.value.is_elided(), (key, card.value.shown_text()[1])
        assert card.toolTip().startswith(card._name)  # the full name is always a hover away
    assert strip.cards["success"].title.shown_text()[1] in ("Success rate", "Success")


def test_event_log_says_quality_events_in_words() -> None:
    """The quality checkpoint showed in the event log as raw JSON."""
    from herbdesk.ui.eventlog_format import summarize

    cp = Event(
        EventType.QUALITY_CHECKPOINT, "r", 19, "2026-12-02T16:46:03.495Z", None, None,
        {"checkpoint": 5, "status": "failed", "usable_rate": 0.2, "threshold": 0.5,
         "failed_terms": {"scientificName": ["Identified by"], "eventDate": ["2809"]}},
    )  # fmt: skip
    text = summarize(cp)
    assert text == (
        "quality checkpoint at 5: failed, 20% usable (threshold 50%)"
        " — invalid: scientificName, eventDate"
    )
    gold = Event(
        EventType.QUALITY_GOLD, "r", 7, "2026-12-02T16:46:03.495Z", "s", None,
        {"image": "sheet_12.jpg", "correct": 1, "compared": 3, "terms": {}},
    )  # fmt: skip
    assert summarize(gold) == "sheet_12.jpg: known-answer sheet, 1/3 terms right"


def test_empty_count_plots_start_at_zero(qtbot) -> None:
    """Empty plots showed a y range of -0.5..0.5: negative counts."""
    from herbdesk.ui.plots import PlotsPanel

    panel = PlotsPanel()
    qtbot.addWidget(panel)
    panel.resize(1200, 200)
    panel.show()
    panel.update_from(RunState())
    panel.flush()
    QGuiApplication.processEvents()
    for plot in (panel.tp_plot, panel.conf_plot):
        assert plot.viewRange()[1][0] >= 0


def test_a_new_plots_panel_reads_as_an_empty_run(qtbot) -> None:
    """Before any run the term chart's axis read 0 to 1.0 from top to bottom (pyqtgraph's
    numbers on a chart of names) and the success rate counted "0.2 0.4" specimens."""
    from herbdesk.ui.plots import PlotsPanel

    panel = PlotsPanel()
    qtbot.addWidget(panel)
    panel.resize(1200, 220)
    panel.show()
    qtbot.waitExposed(panel)
    QGuiApplication.processEvents()
    assert panel.term_axis.terms() == []  # names, and none yet: no numbers down the axis
    (x0, x1), (y0, _) = panel.rate_plot.viewRange()
    assert x0 == 0 and x1 >= 10 and y0 == 0  # whole specimens from 0
    for plot in (panel.tp_plot, panel.conf_plot, panel.term_plot):
        assert -0.1 <= plot.viewRange()[0][0] <= 0, plot  # 0 at the left, a margin at most
    for plot in (panel.tp_plot, panel.conf_plot):
        assert plot.viewRange()[1][0] == 0


def test_kpis_of_a_log_without_costs_or_start_say_so(qtbot) -> None:
    """Cost "—" where nothing recorded one (not "$0"), and throughput and elapsed time from
    the timestamps of a log that has no start event (they read 0.0/min and 0 s)."""
    from herbdesk.runstate.load import load_state
    from herbdesk.ui.kpis import KpiStrip

    state, _ = load_state(Path(__file__).parent / "fixtures" / "legacy_raw_flat.jsonl")
    strip = KpiStrip()
    qtbot.addWidget(strip)
    strip.update_from(state, live=False)
    assert strip.cards["cost"].value.text() == "—"
    assert strip.cards["elapsed"].value.text() not in ("0s", "0 s", "–", "--")
    assert strip.cards["throughput"].value.text() not in ("0.0/min", "0/min", "–")


def test_detail_at_laptop_size_shows_several_terms_and_whole_values(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """At 1280x720 the detail pane is ~590x200 px: the fields table showed one term and cut
    every value ("Swift Current R…"). Fields are a tab now and long values wrap."""
    long_locality = "Swift Current Research Station, 3 mi S of the creek crossing, dry slope"
    dwc = {
        "scientificName": {"value": "Hieracium umbellatum L.", "confidence": 0.94},
        "eventDate": {"value": "1947-06-20", "confidence": 0.73},
        "country": {"value": "Canada", "confidence": 0.94},
        "stateProvince": {"value": "Saskatchewan", "confidence": 0.9},
        "locality": {"value": long_locality, "confidence": 0.8},
    }
    record = {"specimen_id": sid(0), "image": "s.jpg", "success": True, "dwc": dwc}
    index = _write_raw(tmp_path, record)
    state = _state_with(Events(), "s.jpg", "")
    detail = SpecimenDetail()
    qtbot.addWidget(detail)
    detail.resize(590, 200)
    detail.show()
    qtbot.waitExposed(detail)
    detail.show_specimen(state, 0, index)
    QGuiApplication.processEvents()
    table = detail.fields_table
    rows = detail.fields_model.rowCount()
    visible = [
        r for r in range(rows) if table.rowViewportPosition(r) + 4 < table.viewport().height()
    ]
    assert len(visible) >= 3, len(visible)
    loc = next(r for r in range(rows) if detail.fields_model.index(r, 0).data() == "locality")
    assert table.rowHeight(loc) > table.rowHeight(0)  # wrapped onto more lines, not elided


def test_a_budget_pause_shows_amber_not_a_red_halt(qtbot, tmp_path: Path, many_images) -> None:
    """A headless run paused at its budget (its log: extraction.failed, reason budget) is
    shown as the pause it is: an amber banner with the final spend and how to go on."""
    from fakeapi import FakeApi
    from helpers import api_config

    from herbdesk.extraction.pipeline import Pipeline
    from herbdesk.runstate.load import load_state
    from herbdesk.ui.banners import BannerBar

    with FakeApi(costs=(0.004,), delay_s=0.05) as api:
        cfg = api_config(
            many_images(8), tmp_path / "runs", api.base_url, concurrency=4, budget_usd=0.01
        )
        outcome = Pipeline(cfg).run()
    state, _ = load_state(outcome.run_dir)
    assert state.status == "failed" and state.paused_at_budget
    assert state.shown_status == "paused"
    bar = BannerBar()
    qtbot.addWidget(bar)
    bar.update_from(state, outcome.run_dir)
    ((level, text),) = [t for t in bar.texts() if "budget" in t[1]]
    assert level == "warning" and "halted" not in text
    assert text.startswith("Paused at its budget: 2 processed, 2 succeeded, 0 failed; ")
    assert f"spent $0.0080 of $0.0100; go on with herbdesk run --resume {outcome.run_dir}" in text
    assert not [t for t in bar.texts() if t[0] == "error"]


def test_the_setup_panel_says_when_the_budget_cannot_stop_the_engine(qtbot) -> None:
    """The offline engine reports no cost: with a Budget set, the panel says under the field
    that the budget cannot stop the run; with an API engine, or no budget, it says nothing."""
    from herbdesk.ui.setup import RunSetupPanel

    panel = RunSetupPanel()
    qtbot.addWidget(panel)
    panel.engine.setCurrentIndex(panel.engine.findData("ocr"))
    panel.budget.setValue(0.0)
    assert panel.budget_note.isHidden()
    panel.budget.setValue(5.0)
    assert not panel.budget_note.isHidden()
    assert panel.budget_note.text() == (
        "The ocr engine reports no cost, so the budget ($5.0000) cannot stop this run: it goes "
        "on to the end."
    )
    panel.engine.setCurrentIndex(panel.engine.findData("openrouter"))
    assert panel.budget_note.isHidden() and panel.budget_note.text() == ""
