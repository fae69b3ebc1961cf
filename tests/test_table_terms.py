"""The specimen table's Darwin Core term columns: shown by default, chosen and remembered, searched,
sorted; the file name as the row's name; values from live events, opened runs and legacy logs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from fakeapi import FakeApi
from helpers import api_config, raw_records, run
from PySide6.QtCore import QPoint, QSettings, Qt
from test_ui_widgets import Events, column, sid

from herbdesk.events import EventBus, EventLogWriter
from herbdesk.events.types import EventType
from herbdesk.runstate.terms import FileSpans
from herbdesk.ui.columns import (
    COL_CONFIDENCE,
    COL_FILE,
    COL_QUALITY,
    COL_SPECIMEN,
    COLUMN_KEYS,
    HEADERS,
    TABLE_TERMS,
    TERM_BASE,
)
from herbdesk.ui.document import RunDocument
from herbdesk.ui.mainwindow import MainWindow
from herbdesk.ui.table import COLUMNS_SETTING, SpecimenTableView

if TYPE_CHECKING:
    from pytestqt.qtbot import QtBot

ASC, DESC = Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder
TIP = Qt.ItemDataRole.ToolTipRole
DEFAULT_SHOWN = [
    "file",
    "status",
    "scientificName",
    "catalogNumber",
    "recordedBy",
    "eventDate",
    "country",
    "stateProvince",
    "locality",
    "confidence",
    "quality",
    "error",
]
# name, catalog number, collector, country per sheet; None: the sheet failed
RECORDS: list[dict[str, str] | None] = [
    {"scientificName": "Quercus robur L.", "catalogNumber": "MO-3", "country": "Canada"},
    {"scientificName": "Identified by", "catalogNumber": "MO-1", "recordedBy": "J. Macoun"},
    None,
    {"scientificName": "acer rubrum L.", "catalogNumber": "MO-2", "country": "Canada"},
    {"catalogNumber": "MO-4", "locality": "Identified near the river", "country": "France"},
]


def col(term: str) -> int:
    return TERM_BASE + TABLE_TERMS.index(term)


def settings_at(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def completed(ev: Events, i: int, values: dict[str, str], conf: float = 0.8) -> Any:
    return ev(
        EventType.SPECIMEN_COMPLETED,
        i,
        image=f"specimen_{i:03d}.jpg",
        success=True,
        fields_extracted=len(values),
        confidence=conf,
        dwc=values,
    )


def fill(doc: RunDocument, records: list[dict[str, str] | None] = RECORDS) -> None:
    ev = Events()
    events = [ev.queued(i) for i in range(len(records))]
    for i, values in enumerate(records):
        events.append(ev.failed(i) if values is None else completed(ev, i, values, 0.5 + i / 10))
    doc.apply_events(events)
    doc.flush()


@pytest.fixture()
def view(qtbot: QtBot, tmp_path: Path) -> SpecimenTableView:
    v = SpecimenTableView(RunDocument(), settings=settings_at(tmp_path))
    qtbot.addWidget(v)
    fill(v.model._document)
    return v


def shown_headers(view: SpecimenTableView) -> list[str]:
    hh = view.table.horizontalHeader()
    visual = sorted(
        (hh.visualIndex(c), c) for c in range(len(HEADERS)) if not hh.isSectionHidden(c)
    )
    return [HEADERS[c] for _, c in visual]


def test_key_terms_show_by_default_with_the_file_name_first(view: SpecimenTableView) -> None:
    assert view.shown_columns() == DEFAULT_SHOWN
    assert shown_headers(view)[:3] == ["file", "status", "scientificName"]
    model = view.model
    assert column(model, COL_FILE) == [f"specimen_{i:03d}.jpg" for i in range(5)]
    assert column(model, col("scientificName")) == [
        "Quercus robur L.",
        "Identified by",
        "",
        "acer rubrum L.",
        "",
    ]
    assert column(model, col("country")) == ["Canada", "", "", "Canada", "France"]
    assert column(model, COL_CONFIDENCE)[:2] == ["0.50", "0.60"]
    # the content hash: in the file name's tooltip, and in its own column (hidden by default)
    tip = model.index(1, COL_FILE).data(TIP)
    assert "/data/sheets/specimen_001.jpg" in tip and sid(1) in tip
    assert view.table.isColumnHidden(COL_SPECIMEN)
    assert sid(1).startswith(model.index(1, COL_SPECIMEN).data())
    assert "Identified by" in model.index(1, col("scientificName")).data(TIP)


def test_the_chooser_adds_and_hides_columns_and_remembers(
    qtbot: QtBot, view: SpecimenTableView, tmp_path: Path
) -> None:
    hh = view.table.horizontalHeader()
    hh.customContextMenuRequested.emit(QPoint(10, 5))  # right-click on the header
    menu = view.columns_menu
    qtbot.waitUntil(menu.isVisible)
    actions = {a.text(): a for a in menu.actions() if a.isCheckable()}
    assert set(actions) == set(HEADERS)  # every column, all 34 terms among them
    assert not actions["file"].isEnabled()  # the row's name stays
    actions["habitat"].trigger()
    actions["locality"].trigger()
    actions["sha256"].trigger()
    menu.hide()
    assert not view.table.isColumnHidden(col("habitat"))
    assert view.table.isColumnHidden(col("locality"))
    assert not view.table.isColumnHidden(COL_SPECIMEN)
    want = [k for k in COLUMN_KEYS if k in {*DEFAULT_SHOWN, "habitat", "specimen_id"}]
    want.remove("locality")
    assert view.shown_columns() == want

    # remembered: a new table (as after a restart) shows the same columns
    again = SpecimenTableView(RunDocument(), settings=settings_at(tmp_path))
    qtbot.addWidget(again)
    assert again.shown_columns() == want
    assert settings_at(tmp_path).value(COLUMNS_SETTING) == ",".join(want)
    again.reset_columns()
    assert again.shown_columns() == DEFAULT_SHOWN


def test_the_view_menu_holds_the_chooser(qtbot: QtBot, tmp_path: Path) -> None:
    win = MainWindow(settings_at(tmp_path))
    qtbot.addWidget(win)
    view_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&View")
    assert win.table.columns_menu in [a.menu() for a in view_menu.actions()]
    win.table.columns_menu.aboutToShow.emit()
    by_text = {a.text(): a for a in win.table.columns_menu.actions()}
    by_text["recordNumber"].trigger()
    win._save()
    win.close()
    again = MainWindow(settings_at(tmp_path))
    qtbot.addWidget(again)
    assert "recordNumber" in again.table.shown_columns()


def test_the_text_filter_searches_term_values(view: SpecimenTableView) -> None:
    model = view.model
    view.search_edit.setText("Identified")  # a name and a locality, not the term identifiedBy
    assert column(model, COL_FILE) == ["specimen_001.jpg", "specimen_004.jpg"]
    view.search_edit.setText("CANADA")  # case-insensitive
    assert column(model, COL_FILE) == ["specimen_000.jpg", "specimen_003.jpg"]
    view.search_edit.setText("macoun")
    assert column(model, COL_FILE) == ["specimen_001.jpg"]
    view.status_combo.setCurrentText("completed")  # with a status filter too
    assert column(model, COL_FILE) == ["specimen_001.jpg"]
    view.status_combo.setCurrentText("All")
    view.search_edit.setText("Identified")

    # live: a new record that matches joins the filtered table; one that stops matching leaves
    doc = model._document
    ev = Events()
    ev.seq = 100
    doc.apply_events([ev.queued(7), completed(ev, 7, {"scientificName": "Identified by A."})])
    doc.apply_events([completed(ev, 1, {"scientificName": "Poa annua L."})])  # re-done
    doc.flush()
    assert column(model, COL_FILE) == ["specimen_004.jpg", "specimen_007.jpg"]
    view.search_edit.clear()
    assert model.rowCount() == 6


def test_sort_by_a_term_column(view: SpecimenTableView) -> None:
    model = view.model
    view.table.sortByColumn(col("scientificName"), ASC)  # casefolded; missing values last
    assert column(model, col("scientificName")) == [
        "acer rubrum L.",
        "Identified by",
        "Quercus robur L.",
        "",
        "",
    ]
    view.table.sortByColumn(col("catalogNumber"), DESC)
    assert column(model, col("catalogNumber")) == ["MO-4", "MO-3", "MO-2", "MO-1", ""]
    view.search_edit.setText("canada")  # sorted and filtered
    assert column(model, col("catalogNumber")) == ["MO-3", "MO-2"]
    view.search_edit.clear()
    view.table.sortByColumn(COL_QUALITY, ASC)  # every column sorts
    assert model.rowCount() == 5


def _open(qtbot: QtBot, win: MainWindow, path: Path) -> None:
    assert win.open_path(path)
    qtbot.waitUntil(lambda: not win.is_loading(), timeout=20000)
    win.document.flush()


def test_a_legacy_raw_log_shows_its_values(qtbot: QtBot, tmp_path: Path) -> None:
    """The original scripts' raw.jsonl: nested {value, confidence} and flat values alike."""
    lines = []
    for i in range(120):  # past the loader's first block
        name = "Identified by" if i % 3 == 0 else f"Carex {i}"
        dwc: dict[str, Any] = {
            "scientificName": {"value": name, "confidence": 0.8},
            "catalogNumber": {"value": f"DAO{i:06d}", "confidence": 0.9},
            "country": {"value": "", "confidence": 0.1},
        }
        lines.append({"image": f"{i:064x}.jpg", "model": "m", "timestamp": "2025-03-14T09:00:31",
                      "usage": {}, "dwc": dwc})  # fmt: skip
    lines.append({"image": "x.jpg", "error": "HTTP 401"})
    log = tmp_path / "raw.jsonl"
    log.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    win = MainWindow(settings_at(tmp_path))
    qtbot.addWidget(win)
    _open(qtbot, win, log)
    model = win.table_model
    assert model.rowCount() == 121
    assert model.index(1, col("scientificName")).data() == "Carex 1"
    assert model.index(5, col("catalogNumber")).data() == "DAO000005"
    assert model.index(0, col("country")).data() == ""  # empty values are no value
    win.table.search_edit.setText("identified")
    assert model.rowCount() == 40
    win.table.search_edit.setText("")
    win.table.table.sortByColumn(col("catalogNumber"), DESC)
    assert model.index(0, col("catalogNumber")).data() == "DAO000119"
    fixtures = Path(__file__).parent / "fixtures"
    _open(qtbot, win, fixtures / "legacy_raw_flat.jsonl")  # flat values beside confidences
    assert column(model, COL_FILE) == ["DAO000200.jpg", "DAO000201.jpg", "DAO000202.jpg"]
    assert model.index(0, col("recordedBy")).data() == "J. Cayouette"


def test_an_opened_run_shows_the_values_of_its_records(
    qtbot: QtBot, tmp_path: Path, many_images: Any
) -> None:
    """herbdesk's own log, folded by the compiled scanner: the values are raw.jsonl's."""
    with FakeApi(script=["good"] * 60 + ["garbage"]) as api:
        outcome, _ = run(api_config(many_images(70), tmp_path / "r", api.base_url))
    records = {r["specimen_id"]: r for r in raw_records(outcome.run_dir)}
    win = MainWindow(settings_at(tmp_path))
    qtbot.addWidget(win)
    _open(qtbot, win, outcome.run_dir)
    model, state = win.table_model, win.document.state
    assert model.rowCount() == 70
    # the load kept where each row's values are in the log: the cells read theirs back
    assert isinstance(state.terms.source, FileSpans) and state.terms.pending() > 0
    wants: dict[str, list[str]] = {}
    for term in ("scientificName", "catalogNumber", "locality"):
        wants[term] = []
        for r in range(70):
            rec = records[state.specimen_id[r]]
            want = (rec["dwc"].get(term) or {}).get("value", "") if rec["success"] else ""
            assert model.index(model.view_row(r), col(term)).data() == want
            wants[term].append(want)
    assert sum(map(bool, wants["scientificName"] + wants["locality"])) >= 100
    # the first sort reads the whole columns once (a few rows: at once); the cells agree after
    win.table.table.sortByColumn(col("catalogNumber"), ASC)
    assert state.terms.pending() == 0
    shown = column(model, col("catalogNumber"))
    present = sorted((v for v in wants["catalogNumber"] if v), key=str.casefold)
    assert shown == present + [""] * (70 - len(present))
    for v in range(70):
        r = model.state_row(v)
        assert model.index(v, col("locality")).data() == wants["locality"][r]
    name = next(v for v in wants["scientificName"] if v)
    needle = name.casefold()
    win.table.search_edit.setText(needle)
    hits = 0
    for r in range(70):
        rec = records[state.specimen_id[r]]
        values = [str((f or {}).get("value") or "") for f in rec["dwc"].values()]
        hits += rec["success"] and any(needle in v.casefold() for v in values)
    assert hits and model.rowCount() == hits


def test_values_are_read_off_the_gui_thread_and_a_sort_or_search_waits_for_them(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first term sort or value search on a big log reads every record's values on a
    thread of their own: the window answers meanwhile, the sort shows run order and the
    search the other columns' matches, and both are redone over the values once read."""
    import threading

    from herbdesk.runstate import terms as terms_mod
    from herbdesk.ui import document as document_mod

    log = tmp_path / "events.jsonl"  # herbdesk's own log: values kept in the file on opening
    bus = EventBus("run-1", EventLogWriter(log))
    bus.emit(EventType.EXTRACTION_STARTED, data={"total": 300})
    for i in range(300):
        dwc = {"locality": f"Place {299 - i:03d}"}
        if i % 50 == 0:
            dwc["habitat"] = "bog"
        data = {"image": f"sheet-{i:03d}.jpg", "success": True, "fields_extracted": 1, "dwc": dwc}
        bus.emit(EventType.SPECIMEN_COMPLETED, specimen_id=f"s{i}", sequence=i, data=data)
    bus.emit(EventType.EXTRACTION_COMPLETED, data={})
    monkeypatch.setattr(terms_mod, "BUILD_BATCH", 100)
    monkeypatch.setattr(document_mod, "READ_AT_ONCE", 250)  # 300 rows: "a big log"
    gate, started = threading.Event(), threading.Event()
    prepare = terms_mod.TermColumns.prepare

    def held(self: Any, progress: Any = None, should_stop: Any = lambda: False) -> bool:
        def step(done: int, total: int) -> None:
            started.set()
            assert gate.wait(20)  # held here until the test has looked at the window
            if progress is not None:
                progress(done, total)

        return prepare(self, step, should_stop)

    monkeypatch.setattr(terms_mod.TermColumns, "prepare", held)
    win = MainWindow(settings_at(tmp_path))
    qtbot.addWidget(win)
    assert win.open_path(log)
    qtbot.waitUntil(lambda: not win.is_loading(), timeout=20000)
    qtbot.wait(100)
    assert not win.document.preparing and not started.is_set()  # not read on opening
    model = win.table_model
    win.table.table.sortByColumn(col("locality"), ASC)  # returns at once: values not read
    assert started.wait(20) and win.document.preparing and model.waiting()
    assert model.index(0, COL_FILE).data() == "sheet-000.jpg"  # run order meanwhile
    win.table.search_edit.setText("bog")
    assert model.rowCount() == 0  # no file, id or error says "bog"
    qtbot.wait(50)  # the event loop runs while the values are read
    gate.set()
    qtbot.waitUntil(lambda: not win.document.preparing, timeout=20000)
    assert not model.waiting() and win.document.state.terms.pending() == 0
    assert model.rowCount() == 6  # the search now covers the values
    assert [model.index(r, col("locality")).data() for r in range(2)] == ["Place 049", "Place 099"]
    win.table.search_edit.setText("")
    assert model.index(0, COL_FILE).data() == "sheet-299.jpg"  # sorted: "Place 000"
    assert "Every value read" in win.statusBar().currentMessage()


def test_opening_another_log_while_values_are_read_stops_the_reading(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from herbdesk.runstate import terms as terms_mod
    from herbdesk.ui import document as document_mod

    def write(log: Path, place: str, n: int) -> None:
        bus = EventBus("run-1", EventLogWriter(log))
        bus.emit(EventType.EXTRACTION_STARTED, data={"total": n})
        for i in range(n):
            dwc = {"locality": f"{place} {n - i:03d}"}
            data = {"image": f"{place}-{i}.jpg", "success": True, "fields_extracted": 1, "dwc": dwc}
            bus.emit(EventType.SPECIMEN_COMPLETED, specimen_id=f"s{i}", sequence=i, data=data)
        bus.emit(EventType.EXTRACTION_COMPLETED, data={})

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write(tmp_path / "a" / "events.jsonl", "Regina", 300)
    write(tmp_path / "b" / "events.jsonl", "Ottawa", 30)
    monkeypatch.setattr(terms_mod, "BUILD_BATCH", 100)
    monkeypatch.setattr(document_mod, "READ_AT_ONCE", 250)
    gate, started = threading.Event(), threading.Event()
    build = terms_mod.TermColumns.build

    def held(self: Any, progress: Any = None, should_stop: Any = lambda: False) -> bool:
        def step(done: int, total: int) -> None:
            started.set()
            assert gate.wait(20)

        return build(self, step, should_stop)

    monkeypatch.setattr(terms_mod.TermColumns, "build", held)
    win = MainWindow(settings_at(tmp_path))
    qtbot.addWidget(win)
    _open(qtbot, win, tmp_path / "a")
    first = win.document.state
    win.table.table.sortByColumn(col("locality"), ASC)
    assert started.wait(20) and win.document.preparing
    _open(qtbot, win, tmp_path / "b")  # while the first log's values are being read
    assert not win.document.preparing
    gate.set()
    qtbot.waitUntil(lambda: first.terms.pending() in (100, 200), timeout=20000)
    qtbot.wait(100)
    assert first.terms.pending() in (100, 200)  # stopped between batches: the rest left
    model = win.table_model
    assert model.rowCount() == 30
    assert model.index(0, col("locality")).data() == "Ottawa 001"  # sorted, read at once
