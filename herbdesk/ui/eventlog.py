"""The raw event stream as a lazy table: what happened, in log order, one line per event.

The table views EventLogModel directly, which filters itself: there is no
QSortFilterProxyModel in between, because even a pass-through one built an O(n) source/proxy
mapping on every row insertion (about 65 ms of GUI-thread time for a million events).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
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

from herbdesk.events.reader import EventStore
from herbdesk.events.types import Event, EventType
from herbdesk.ui.columns import ROW_HEIGHT, SHORT_ID, STATUS_COLORS, plain_tooltip
from herbdesk.ui.document import RunDocument

# Some names are only re-exported: other modules and tests import them from here.
from herbdesk.ui.eventlog_format import clock_time, summarize
from herbdesk.ui.eventlog_search import (  # noqa: F401
    BLOCK_BYTES,
    BLOCK_EVENTS,
    CHECK_CHUNK,
    FilterScan,
    raw_needle,
    type_codes,
    type_mask,
    types_of,
)

Index = QModelIndex | QPersistentModelIndex

COL_SEQ, COL_TIME, COL_TYPE, COL_SPECIMEN, COL_SUMMARY = range(5)
HEADERS = ("seq", "time", "type", "specimen", "summary")
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

SYNC_S = 0.03  # work done at once when a filter is set or events arrive
SLICE_S = 0.015  # work per timer tick, between which the GUI runs


class _Keep:
    """`EventLogModel.reset`'s default: keep the type filter."""


KEEP = _Keep()


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
    match (`FilterScan`); what does not fit in a few ms goes on in slices on a timer, rows
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
        self._scan: FilterScan | None = None  # deciding the rows of a filter, if any
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

    def set_type_filter(self, event_type: str | None) -> None:
        """Show one event type (None or "All": every type)."""
        self.set_filter(None if not event_type or event_type == "All" else event_type, self._needle)

    def set_text_filter(self, text: str) -> None:
        """Case-insensitive substring over type, specimen id and summary."""
        self.set_filter(self._type, text.strip().casefold())

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
        self._scan = FilterScan(
            self._events,
            self._type,
            self._needle,
            within,
            within_end,
            block_events=BLOCK_EVENTS,  # read here at each filter: tuned (and tests shrink
            block_bytes=BLOCK_BYTES,  # them) on this module, with SYNC_S and SLICE_S
            check_chunk=CHECK_CHUNK,
        )
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
            if col == COL_SEQ:  # the original scripts' records carry none (read as 0)
                return str(ev.seq) if ev.seq > 0 else "—"
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

        self.type_combo = QComboBox()
        self.type_combo.addItem(self.ALL)
        self.type_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Filter by type, id or text")
        self.search_edit.setClearButtonEnabled(True)
        self.count_label = QLabel()
        self.count_label.setTextFormat(Qt.TextFormat.PlainText)

        self.table = QTableView()
        self.table.setModel(self.model)  # no proxy: see the module docstring
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
        for col, width in enumerate((68, 96, 150, 110)):  # seq: seven digits
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

        self.type_combo.currentTextChanged.connect(self.model.set_type_filter)
        self.search_edit.textChanged.connect(self.model.set_text_filter)
        sb = self.table.verticalScrollBar()
        sb.valueChanged.connect(self._on_scrolled)
        sb.rangeChanged.connect(self._on_range_changed)
        for sig in (self.model.rowsInserted, self.model.rowsRemoved, self.model.modelReset):
            sig.connect(self._schedule_count)
        self.model.total_changed.connect(self._schedule_count)
        self.model.search_progressed.connect(self._schedule_count)
        # A filter change resets the model: keep the current event and the place read.
        self._kept: tuple[Sequence[Event], int | None, int | None] | None = None
        self.model.modelAboutToBeReset.connect(self._before_reset)
        self.model.modelReset.connect(self._after_reset)
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
        self._types = types_of(events, 0, len(events))
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
        self._add_types(types_of(self.model.events, old, self.model.total_events()))

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
            self.model.event_index(current.row()) if current.isValid() else None,
            self.model.event_index(top.row()) if top.isValid() else None,
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
                idx = self.model.index(row, 0)
                self.table.scrollTo(idx, QAbstractItemView.ScrollHint.PositionAtTop)
        if current is not None:
            row = self.model.view_row(current)
            if row >= 0:
                self.table.setCurrentIndex(self.model.index(row, 0))

    def _schedule_count(self, *_args: Any) -> None:
        if not self._count_pending:
            self._count_pending = True
            QTimer.singleShot(0, self, self._update_count)  # cancelled if self is deleted

    def _update_count(self) -> None:
        self._count_pending = False
        text = f"{self.model.rowCount():,} of {self.model.total_events():,} events"
        if self.model.searching():
            text += f" (searched {self.model.scanned():,})"
        self.count_label.setText(text)
