"""Filtering inside SpecimenTableModel: with sorting, live updates, selection and model checks."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from test_ui_widgets import Events, column, sid, wait_text

from herbdesk.events.types import EventType
from herbdesk.runstate.state import STATUS_PROCESSING, STATUS_RETRYING, RunState
from herbdesk.ui import table_model as table_mod
from herbdesk.ui.columns import COL_CONFIDENCE, COL_FILE, COL_STATUS
from herbdesk.ui.document import RunDocument
from herbdesk.ui.table import SpecimenTableView
from herbdesk.ui.table_model import SpecimenTableModel
from herbdesk.ui.table_sort import sorted_rows, status_set

if TYPE_CHECKING:
    from pytestqt.modeltest import ModelTester
    from pytestqt.qtbot import QtBot

DESC = Qt.SortOrder.DescendingOrder
ASC = Qt.SortOrder.AscendingOrder


@pytest.fixture()
def doc(qtbot: QtBot) -> RunDocument:
    return RunDocument()


def files(model: Any) -> list[str]:
    return column(model, COL_FILE)


def name(i: int) -> str:
    return f"specimen_{i:03d}.jpg"


def shown_rows(model: SpecimenTableModel) -> list[int]:
    return [model.state_row(v) for v in range(model.rowCount())]


def passes(state: RunState, r: int, status: str | None, needle: str) -> bool:
    statuses = status_set(status)
    if statuses is not None and state.row_status[r] not in statuses:
        return False
    n = needle.strip().casefold()
    return not n or any(
        n in col[r].casefold() for col in (state.image, state.specimen_id, state.error)
    )


def test_filter_and_sort_combined(qtbot: QtBot, doc: RunDocument) -> None:
    view = SpecimenTableView(doc)
    qtbot.addWidget(view)
    ev = Events()
    confs = [0.5, 0.9, None, 0.1, 0.7, 0.3, None, 0.6]
    events = [ev.queued(i) for i in range(9)]
    for i, c in enumerate(confs):
        events.append(ev.failed(i) if c is None else ev.completed(i, c))
    doc.apply_events(events)  # 8 stays queued
    doc.flush()
    model = view.model

    view.table.sortByColumn(COL_CONFIDENCE, DESC)
    view.status_combo.setCurrentText("completed")
    assert column(model, COL_CONFIDENCE) == ["0.90", "0.70", "0.60", "0.50", "0.30", "0.10"]
    wait_text(qtbot, view.count_label, "6 of 9 specimens")
    # the sort indicator survives the model reset a filter change makes
    assert view.table.horizontalHeader().sortIndicatorSection() == COL_CONFIDENCE

    view.search_edit.setText("SPECIMEN_00")  # all of them: same rows
    assert model.rowCount() == 6
    view.search_edit.setText(sid(4)[:9])
    assert files(model) == [name(4)]
    view.search_edit.clear()

    # re-sorting while filtered keeps the filter
    view.table.sortByColumn(COL_CONFIDENCE, ASC)
    assert column(model, COL_CONFIDENCE) == ["0.10", "0.30", "0.50", "0.60", "0.70", "0.90"]
    view.table.sortByColumn(COL_FILE, DESC)
    assert files(model) == [name(i) for i in (7, 5, 4, 3, 1, 0)]
    # back to run order, still filtered
    view.table.sortByColumn(-1, ASC)
    assert files(model) == [name(i) for i in (0, 1, 3, 4, 5, 7)]

    # another status, sorted: missing values last
    view.table.sortByColumn(COL_CONFIDENCE, DESC)
    view.status_combo.setCurrentText("failed")
    assert files(model) == [name(2), name(6)]
    view.status_combo.setCurrentText("All")
    assert column(model, COL_CONFIDENCE)[:3] == ["0.90", "0.70", "0.60"]
    assert column(model, COL_CONFIDENCE)[-3:] == ["", "", ""]
    wait_text(qtbot, view.count_label, "9 of 9 specimens")


def test_live_rows_join_and_leave_a_status_filter(
    qtbot: QtBot, qtmodeltester: ModelTester, doc: RunDocument
) -> None:
    view = SpecimenTableView(doc)
    qtbot.addWidget(view)
    model = view.model
    qtmodeltester.check(model)  # keeps checking every insert and removal below
    ev = Events()
    doc.apply_events([ev.queued(i) for i in range(6)])
    doc.apply_events([ev(EventType.SPECIMEN_PROCESSING, i) for i in (1, 2, 4)])
    doc.flush()
    resets: list[bool] = []
    removed: list[tuple[int, int]] = []
    inserted: list[tuple[int, int]] = []
    model.modelReset.connect(lambda: resets.append(True))
    model.rowsRemoved.connect(lambda _p, a, b: removed.append((a, b)))
    model.rowsInserted.connect(lambda _p, a, b: inserted.append((a, b)))

    view.status_combo.setCurrentText("processing")
    assert files(model) == [name(1), name(2), name(4)]
    assert resets == [True]  # a user's filter change resets once

    # a row finishing leaves the processing filter; a retrying one stays (it is in flight)
    doc.apply_events([ev.completed(2, 0.8), ev(EventType.SPECIMEN_RETRYING, 4, attempt=1)])
    doc.flush()
    assert files(model) == [name(1), name(4)]
    assert removed == [(1, 1)]
    # a queued row starting joins at its place in run order; an appended one at the end
    doc.apply_events([ev(EventType.SPECIMEN_PROCESSING, 3), ev.queued(6), ev.queued(7)])
    doc.apply_events([ev(EventType.SPECIMEN_PROCESSING, 7)])
    doc.flush()
    assert files(model) == [name(1), name(3), name(4), name(7)]
    assert inserted == [(1, 1), (3, 3)]
    assert resets == [True]  # live changes never reset (the view keeps its scroll place)
    wait_text(qtbot, view.count_label, "4 of 8 specimens")

    # "failed": a processing row that fails appears, in run order
    view.status_combo.setCurrentText("failed")
    assert model.rowCount() == 0
    doc.apply_events([ev.failed(4), ev.failed(1)])
    doc.flush()
    assert files(model) == [name(1), name(4)]
    # rows appended that do not pass stay hidden but count
    doc.apply_events([ev.queued(8)])
    doc.flush()
    assert model.rowCount() == 2
    wait_text(qtbot, view.count_label, "2 of 9 specimens")
    assert not view.select_state_row(8)
    assert view.select_state_row(4)
    assert view.current_state_row() == 4


def test_live_rows_join_the_end_while_sorted_until_resorted(
    qtbot: QtBot, qtmodeltester: ModelTester, doc: RunDocument
) -> None:
    view = SpecimenTableView(doc)
    qtbot.addWidget(view)
    model = view.model
    qtmodeltester.check(model)
    ev = Events()
    doc.apply_events([ev.queued(i) for i in range(5)])
    doc.apply_events([ev.completed(0, 0.2), ev.completed(1, 0.9), ev.failed(2)])
    doc.flush()
    view.table.sortByColumn(COL_CONFIDENCE, DESC)
    view.status_combo.setCurrentText("completed")
    assert files(model) == [name(1), name(0)]

    doc.apply_events([ev.completed(3, 0.5), ev.queued(5), ev.completed(5, 0.95)])
    doc.flush()
    # shown at once, at the end, then placed by the re-sort timer
    assert sorted(files(model)) == [name(i) for i in (0, 1, 3, 5)]
    assert files(model)[:2] == [name(1), name(0)]
    qtbot.waitUntil(lambda: files(model) == [name(i) for i in (5, 1, 3, 0)], timeout=3000)
    assert column(model, COL_CONFIDENCE) == ["0.95", "0.90", "0.50", "0.20"]
    assert view.select_state_row(3) and view.current_state_row() == 3
    assert not view.select_state_row(2)  # failed: filtered out
    assert not view.select_state_row(4)  # queued
    assert not view.select_state_row(99)  # unknown


def test_selection_kept_across_filter_changes(qtbot: QtBot, doc: RunDocument) -> None:
    view = SpecimenTableView(doc)
    qtbot.addWidget(view)
    view.resize(700, 300)
    view.show()
    ev = Events()
    n = 400
    events = [ev.queued(i) for i in range(n)]
    events += [ev.failed(i) if i % 4 == 1 else ev.completed(i, i / n) for i in range(n - 20)]
    doc.apply_events(events)
    doc.flush()
    table, model = view.table, view.model
    assert view.select_state_row(301)  # failed, far down
    selected: list[int] = []
    view.specimen_selected.connect(selected.append)

    def shows(row: int) -> bool:
        idx = table.currentIndex()
        rect = table.visualRect(idx)
        return (
            view.current_state_row() == row
            and table.selectionModel().isRowSelected(idx.row(), QModelIndex())
            and table.viewport().rect().contains(rect.center())
        )

    view.status_combo.setCurrentText("failed")
    assert model.rowCount() == 95
    assert shows(301)
    view.search_edit.setText("specimen_3")
    assert shows(301)
    view.search_edit.clear()
    view.status_combo.setCurrentText("All")
    assert shows(301)
    view.table.sortByColumn(COL_STATUS, ASC)  # keeps the current row (not its scroll place)
    assert view.current_state_row() == 301
    view.status_combo.setCurrentText("failed")
    assert shows(301)
    assert selected == []  # the same specimen: the detail is not reloaded

    # filtered out: nothing current; the next filter does not bring a selection back
    view.status_combo.setCurrentText("completed")
    assert view.current_state_row() is None
    assert not view.select_state_row(301)
    view.status_combo.setCurrentText("All")
    assert view.current_state_row() is None
    assert view.select_state_row(301) and selected == [301]

    # a new source starts afresh
    doc.reset(None)
    assert view.current_state_row() is None and model.rowCount() == 0


def test_modeltester_with_filter_active(qtmodeltester: ModelTester, doc: RunDocument) -> None:
    model = SpecimenTableModel(doc)
    model.set_status_filter("completed")  # before any rows: applied as they come
    ev = Events()
    doc.apply_events([ev.queued(i) for i in range(8)])
    doc.apply_events([ev.completed(i, 0.1 * i) for i in range(0, 8, 2)] + [ev.failed(3)])
    doc.flush()
    assert files(model) == [name(i) for i in (0, 2, 4, 6)]
    qtmodeltester.check(model)
    model.sort(COL_CONFIDENCE, DESC)
    model.set_text_filter("SPECIMEN_00")
    qtmodeltester.check(model)
    assert files(model) == [name(i) for i in (6, 4, 2, 0)]
    assert model.total_rows() == 8 and model.rowCount() == 4
    assert model.view_row(3) == -1 and model.view_row(6) == 0
    model.set_text_filter("nothing matches")
    qtmodeltester.check(model)
    assert model.rowCount() == 0
    model.set_status_filter("All")
    model.set_text_filter("")
    assert model.rowCount() == 8 and model.view_row(3) == 5  # None last, in run order
    model.sort(-1)
    assert files(model) == [name(i) for i in range(8)] and model.view_row(3) == 3


def test_many_live_changes_reset_once_and_keep_the_selection(
    qtbot: QtBot, doc: RunDocument, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(table_mod, "MAX_LIVE_RANGES", 3)
    view = SpecimenTableView(doc)
    qtbot.addWidget(view)
    ev = Events()
    doc.apply_events([ev.queued(i) for i in range(20)])
    doc.apply_events([ev(EventType.SPECIMEN_PROCESSING, i) for i in range(20)])
    doc.flush()
    view.status_combo.setCurrentText("processing")
    assert view.select_state_row(11)
    resets: list[bool] = []
    view.model.modelReset.connect(lambda: resets.append(True))
    doc.apply_events([ev.completed(i, 0.5) for i in range(0, 20, 2)])  # 10 separate ranges
    doc.flush()
    assert resets == [True]
    assert files(view.model) == [name(i) for i in range(1, 20, 2)]
    assert view.current_state_row() == 11
    doc.apply_events([ev.completed(5, 0.5)])  # one range: no reset
    doc.flush()
    assert resets == [True] and view.model.rowCount() == 9


@pytest.mark.parametrize("max_ranges", [2, 64])  # 2: many refreshes take the reset path
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_live_updates_match_a_plain_filter(
    qtmodeltester: ModelTester,
    doc: RunDocument,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    max_ranges: int,
) -> None:
    """Random events, filters and sorts: the shown rows always equal the reference."""
    monkeypatch.setattr(table_mod, "MAX_LIVE_RANGES", max_ranges)
    rng = random.Random(seed)
    model = SpecimenTableModel(doc)
    ev = Events()
    statuses = ["All", "completed", "failed", "processing", "queued", "skipped"]
    needles = ["", "", "specimen_01", "TIMEOUT", "7"]
    status, needle = "All", ""
    qtmodeltester.check(model)  # and every insertion, removal, layout change and reset after
    n = 0
    for _step in range(60):
        batch = []
        for _ in range(rng.randint(0, 12)):
            k = rng.random()
            if k < 0.3 or n == 0:
                batch.append(ev.queued(n))
                n += 1
                continue
            i = rng.randrange(n)
            if k < 0.55:
                batch.append(ev(EventType.SPECIMEN_PROCESSING, i))
            elif k < 0.65:
                batch.append(ev(EventType.SPECIMEN_RETRYING, i, attempt=1))
            elif k < 0.8:
                batch.append(ev.completed(i, round(rng.random(), 2)))
            elif k < 0.92:
                batch.append(ev.failed(i, rng.choice(["timeout", "http_500"])))
            else:
                batch.append(ev(EventType.SPECIMEN_SKIPPED, i, reason="duplicate 7"))
        doc.apply_events(batch)
        doc.flush()
        state = doc.state
        expected = {r for r in range(state.rows) if passes(state, r, status, needle)}
        rows = shown_rows(model)
        assert len(rows) == len(set(rows)) and set(rows) == expected
        assert all(model.view_row(r) == v for v, r in enumerate(rows))
        assert all(model.view_row(r) == -1 for r in range(state.rows) if r not in expected)
        if model.sort_column() < 0:
            assert rows == sorted(rows)
        action = rng.random()
        if action < 0.2:
            status = rng.choice(statuses)
            model.set_status_filter(status)
        elif action < 0.35:
            needle = rng.choice(needles)
            model.set_text_filter(needle)
        elif action < 0.5:
            col = rng.choice([-1, COL_CONFIDENCE, COL_FILE, COL_STATUS])
            model.sort(col, rng.choice([ASC, DESC]))
        if model.sort_column() >= 0 and action < 0.5:  # placed now: exactly the sort order
            desc = model._sort_order == DESC
            ref = sorted_rows(state, state.rows, model.sort_column(), desc)
            if model._resort.isActive():
                model._resort.stop()
                model._apply_sort()
            assert shown_rows(model) == [r for r in ref if passes(state, r, status, needle)]
        else:
            expected = {r for r in range(state.rows) if passes(state, r, status, needle)}
            assert set(shown_rows(model)) == expected


def test_status_set() -> None:
    assert status_set(None) is None and status_set("All") is None and status_set("") is None
    assert status_set("processing") == {STATUS_PROCESSING, STATUS_RETRYING}
    assert status_set("failed") == {"failed"}


def test_quality_column_sorts_and_a_check_name_filters(qtbot: QtBot, doc: RunDocument) -> None:
    from herbdesk.quality.checks import judge_record
    from herbdesk.ui.columns import COL_QUALITY

    view = SpecimenTableView(doc)
    qtbot.addWidget(view)
    ev = Events()
    records = [
        {"scientificName": "Carex aurea Nutt.", "eventDate": "1961-06-08"},
        {"scientificName": "Identified by", "eventDate": "2809"},
        {"scientificName": "Poa pratensis L.", "eventDate": "Sept 12, 1984"},
    ]
    events = []
    for i, rec in enumerate(records):
        done = ev.completed(i, 0.9)
        data = {**done.data, "quality": judge_record(rec).to_data()}
        events.append(ev(EventType.SPECIMEN_COMPLETED, i, **data))
    doc.apply_events(events)
    doc.flush()
    model = view.model
    assert column(model, COL_QUALITY) == [
        "usable",
        "NOT usable: name_boilerplate, date_future",
        "usable: date_not_iso",
    ]
    tip = model.index(1, COL_QUALITY).data(Qt.ItemDataRole.ToolTipRole)
    assert "label text, not a name" in tip
    view.search_edit.setText("name_boilerplate")
    wait_text(qtbot, view.count_label, "1 of 3 specimens")
    assert files(model) == [name(1)]
    view.search_edit.setText("")
    view.table.sortByColumn(COL_QUALITY, DESC)
    assert files(model)[0] == name(2)
