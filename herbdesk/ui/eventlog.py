"""The raw event stream as a lazy table: what happened, in log order, one line per event."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
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
from herbdesk.ui.document import RunDocument
from herbdesk.ui.table import ROW_HEIGHT, SHORT_ID, STATUS_COLORS, plain_tooltip

Index = QModelIndex | QPersistentModelIndex

COL_SEQ, COL_TIME, COL_TYPE, COL_SPECIMEN, COL_SUMMARY = range(5)
HEADERS = ("seq", "time", "type", "specimen", "summary")
MAX_SUMMARY = 300
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


def clock_time(ts: str) -> str:
    """HH:MM:SS.mmm in local time (events are stamped in UTC); the raw text if unparsable."""
    try:
        dt = datetime.fromisoformat(ts)
    except (TypeError, ValueError):
        return ts or ""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone()
    return f"{dt:%H:%M:%S}.{dt.microsecond // 1000:03d}"


def _err(err: Any) -> str:
    if isinstance(err, Mapping):
        kind, msg = err.get("kind"), err.get("message")
        return f"{kind}: {msg}" if kind else str(msg or "")
    return str(err or "")


def _pct(x: Any) -> str:
    return f"{x:.0%}" if isinstance(x, int | float) else "?"


def _describe(ev: Event) -> str:
    d = ev.data
    et = ev.event_type
    image = str(d.get("image") or "")
    if et == EventType.EXTRACTION_STARTED:
        cfg = d.get("config")
        cfg = cfg if isinstance(cfg, Mapping) else {}
        engine = " / ".join(str(x) for x in (cfg.get("engine"), cfg.get("model")) if x)
        resumed = " (resumed)" if d.get("resumed") else ""
        return f"{d.get('total', '?')} images{resumed}" + (f" · {engine}" if engine else "")
    if et == EventType.PREFLIGHT_COMPLETED:
        bad = [c for c in d.get("checks") or [] if isinstance(c, Mapping) and not c.get("ok")]
        if not bad:
            return "all checks passed"
        return "failed: " + "; ".join(f"{c.get('name')}: {c.get('detail')}" for c in bad)
    if et in (EventType.SPECIMEN_QUEUED, EventType.SPECIMEN_PROCESSING):
        return image
    if et == EventType.SPECIMEN_SKIPPED:
        return f"{image}: {d.get('reason') or ''}"
    if et == EventType.SPECIMEN_RETRYING:
        return f"attempt {d.get('attempt')} failed, retry in {d.get('delay_s')} s — " + _err(
            d.get("error")
        )
    if et == EventType.SPECIMEN_COMPLETED:
        conf = d.get("confidence")
        conf_s = f" · confidence {conf:.2f}" if isinstance(conf, int | float) else ""
        ms = d.get("processing_time_ms")
        time_s = f" · {ms / 1000:.1f} s" if isinstance(ms, int | float) else ""
        return f"{image} · {d.get('fields_extracted', 0)} fields{conf_s}{time_s}"
    if et == EventType.SPECIMEN_FAILED:
        return f"{image} · {_err(d.get('error'))}"
    if et == EventType.VALIDATION_CHECKPOINT:
        return (
            f"checkpoint at {d.get('checkpoint')}: {d.get('status')}, success rate "
            f"{_pct(d.get('success_rate'))} (threshold {_pct(d.get('threshold'))})"
        )
    if et == EventType.VALIDATION_WARNING:
        return str(d.get("message") or f"success rate {_pct(d.get('success_rate'))}")
    if et == EventType.CONSUMER_ERROR:
        return f"{d.get('consumer')} on {d.get('on_event')} #{d.get('on_seq')}: {d.get('error')}"
    if et in (
        EventType.EXTRACTION_COMPLETED,
        EventType.EXTRACTION_FAILED,
        EventType.EXTRACTION_CANCELLED,
    ):
        head = f"{d['reason']}: " if et == EventType.EXTRACTION_FAILED and d.get("reason") else ""
        counts = ""
        if d.get("processed") is not None:
            counts = f" ({d.get('succeeded')}/{d.get('processed')} succeeded)"
        return f"{head}{d.get('message') or ''}{counts}"
    if d:
        return json.dumps(dict(d), ensure_ascii=False, default=str)
    return ""


def summarize(ev: Event) -> str:
    """A one-line plain-text summary of an event's data, whatever the data holds."""
    text = " ".join(_describe(ev).split())  # newlines (tracebacks, replies) would break rows
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1] + "…"


class EventLogModel(QAbstractTableModel):
    """Rows are events; cells are computed on demand.

    Attached to a document, the model reads the document's EventStore itself: for an opened
    file that is an index of byte offsets, and only the rows a view asks for are decoded (a
    few hundred at a time are cached), so a million events never become a million objects.
    """

    CACHE_ROWS = 1024

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._events: Sequence[Event] = []
        self._n = 0  # rows announced to views
        self._summaries: dict[int, str] = {}  # filled lazily: the text filter reads them all
        self._cache: dict[int, Event] = {}

    def reset(self, events: Iterable[Event]) -> None:
        """Show these events; an EventStore is read in place (and may grow: see `grow_to`)."""
        self.beginResetModel()
        self._events = events if isinstance(events, EventStore) else list(events)
        self._n = len(self._events)
        self._summaries = {}
        self._cache = {}
        self.endResetModel()

    def append(self, batch: list[Event]) -> None:
        """Add a batch at the end with one row insertion (a model holding its own list)."""
        if not batch:
            return
        events = self._events
        if isinstance(events, list):
            events.extend(batch)
        else:  # the store grew elsewhere: only announce
            assert len(events) >= self._n + len(batch)
        self.grow_to(self._n + len(batch))

    def grow_to(self, n: int) -> None:
        """Announce rows up to n (the shared store was appended to), one insertion."""
        old = self._n
        if n <= old:
            return
        self.beginInsertRows(QModelIndex(), old, n - 1)
        self._n = n
        self.endInsertRows()

    def event_at(self, row: int) -> Event:
        ev = self._cache.get(row)
        if ev is None:
            if len(self._cache) >= self.CACHE_ROWS:
                self._cache.clear()
            ev = self._cache[row] = self._events[row]
        return ev

    def event_type(self, row: int) -> str:
        """The type of a row's event without decoding it."""
        events = self._events
        if isinstance(events, EventStore):
            return events.event_type(row)
        return events[row].event_type

    def summary(self, row: int) -> str:
        s = self._summaries.get(row)
        if s is None:
            s = self._summaries[row] = summarize(self.event_at(row))
        return s

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._n

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
            if col == COL_SEQ:
                return str(ev.seq)
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


def _types_of(events: Sequence[Event], start: int, stop: int) -> set[str]:
    if isinstance(events, EventStore):
        return events.types_in(start, stop)
    return {e.event_type for e in events[start:stop]}


class EventFilterProxy(QSortFilterProxyModel):
    """Type and text filters reading events directly (no data() round trip); no sorting."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._model: EventLogModel | None = None
        self._type: str | None = None
        self._needle = ""

    def setSourceModel(self, model: Any) -> None:
        self._model = model if isinstance(model, EventLogModel) else None
        super().setSourceModel(model)

    def set_type_filter(self, event_type: str | None) -> None:
        """Show one event type (None or "All": every type)."""
        value = None if not event_type or event_type == "All" else event_type
        if value != self._type:
            self.beginFilterChange()
            self._type = value
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_text_filter(self, text: str) -> None:
        """Case-insensitive substring over type, specimen id and summary."""
        needle = text.strip().casefold()
        if needle != self._needle:
            self.beginFilterChange()
            self._needle = needle
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: Any) -> bool:
        model = self._model
        if model is None or (self._type is None and not self._needle):
            return True
        et = model.event_type(source_row)
        if self._type is not None and et != self._type:
            return False
        needle = self._needle
        if not needle:
            return True
        ev = model.event_at(source_row)
        return (
            needle in et
            or needle in (ev.specimen_id or "").casefold()
            or needle in model.summary(source_row).casefold()
        )


class EventLogPane(QWidget):
    """Filter bar over the event table; follows new events while scrolled to the bottom."""

    ALL = "All"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._document: RunDocument | None = None
        self._types: set[str] = set()
        self._follow = True
        self.model = EventLogModel(self)
        self.proxy = EventFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.type_combo = QComboBox()
        self.type_combo.addItem(self.ALL)
        self.type_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Filter by type, id or text")
        self.search_edit.setClearButtonEnabled(True)
        self.count_label = QLabel()
        self.count_label.setTextFormat(Qt.TextFormat.PlainText)

        self.table = QTableView()
        self.table.setModel(self.proxy)
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
        for col, width in enumerate((56, 96, 150, 110)):
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

        self.type_combo.currentTextChanged.connect(self.proxy.set_type_filter)
        self.search_edit.textChanged.connect(self.proxy.set_text_filter)
        sb = self.table.verticalScrollBar()
        sb.valueChanged.connect(self._on_scrolled)
        sb.rangeChanged.connect(self._on_range_changed)
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset):
            sig.connect(self._schedule_count)
        self._count_pending = False
        self._update_count()

    # ------------------------------------------------------------------ feeding
    def attach(self, document: RunDocument) -> None:
        """Show a document's events now and follow its resets and new batches."""
        if self._document is not None:
            self._document.reset_done.disconnect(self._on_reset)
            self._document.events_added.disconnect(self._on_added)
        self._document = document
        document.reset_done.connect(self._on_reset)
        document.events_added.connect(self._on_added)
        self.reset(document.events)

    def reset(self, events: Iterable[Event]) -> None:
        if not isinstance(events, EventStore):
            events = list(events)
        self._types = set()
        keep = self.type_combo.currentText()
        self.type_combo.blockSignals(True)
        self.type_combo.clear()
        self.type_combo.addItem(self.ALL)
        self.type_combo.blockSignals(False)
        self._follow = True
        self.model.reset(events)
        self._add_types(_types_of(events, 0, len(events)))
        # keep a chosen type across a reopen if the new log has it; otherwise show all
        self.type_combo.setCurrentIndex(max(0, self.type_combo.findText(keep)))
        self.proxy.set_type_filter(self.type_combo.currentText())

    def append(self, batch: list[Event]) -> None:
        self.model.append(batch)
        self._add_types({e.event_type for e in batch})

    def _on_added(self, first: int, count: int) -> None:
        """The attached document's store grew: announce the rows, learn new types."""
        store = self._document.events if self._document is not None else None
        if store is None:
            return
        self.model.grow_to(first + count)
        self._add_types(_types_of(store, first, first + count))

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

    def _schedule_count(self, *_args: Any) -> None:
        # A filter change can remove rows in thousands of separate ranges: count once after.
        if not self._count_pending:
            self._count_pending = True
            QTimer.singleShot(0, self, self._update_count)  # cancelled if self is deleted

    def _update_count(self) -> None:
        self._count_pending = False
        self.count_label.setText(f"{self.proxy.rowCount():,} of {self.model.rowCount():,} events")
