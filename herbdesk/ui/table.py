"""The specimen table: a model over RunState's columns, a filter proxy and the view with its bar.

Sorting lives in the model (a row permutation built with Python's C-level `sort`), not in
QSortFilterProxyModel's comparator: that calls back into Python once or twice per comparison,
which measured 5-17 s to sort 100,000 rows; the permutation takes well under a second. The proxy
only filters, reading the state columns directly rather than going through `data()`.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
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

from herbdesk.state import (
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_PROCESSING,
    STATUS_QUEUED,
    STATUS_RETRYING,
    STATUS_SKIPPED,
    RunState,
)
from herbdesk.ui.document import RunDocument

Index = QModelIndex | QPersistentModelIndex

COL_SEQ, COL_STATUS, COL_SPECIMEN, COL_FILE, COL_FIELDS = range(5)
COL_CONFIDENCE, COL_TIME, COL_COST, COL_ERROR = range(5, 9)
HEADERS = (
    "#",
    "status",
    "specimen",
    "file",
    "fields",
    "confidence",
    "time (s)",
    "cost ($)",
    "error",
)
NUMERIC_COLUMNS = frozenset({COL_SEQ, COL_FIELDS, COL_CONFIDENCE, COL_TIME, COL_COST})
SHORT_ID = 12
ROW_HEIGHT = 22

# Mid-tone colours: enough contrast on a white base and on a dark (#2b2b2b-ish) base alike.
STATUS_COLORS: dict[str, QColor] = {
    STATUS_COMPLETED: QColor("#2e9d4f"),
    STATUS_FAILED: QColor("#e0483e"),
    STATUS_PROCESSING: QColor("#3b82f6"),
    STATUS_RETRYING: QColor("#3b82f6"),
    STATUS_SKIPPED: QColor("#8c8c8c"),
}
# Sorting by status puts problems and work in flight first.
STATUS_RANK = {
    STATUS_FAILED: 0,
    STATUS_RETRYING: 1,
    STATUS_PROCESSING: 2,
    STATUS_QUEUED: 3,
    STATUS_SKIPPED: 4,
    STATUS_COMPLETED: 5,
}
STATUS_FILTERS = (
    "All",
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_PROCESSING,
    STATUS_QUEUED,
    STATUS_SKIPPED,
)
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter


def plain_tooltip(text: str) -> str:
    """Tooltips are rich text when they look like HTML; escaping shows log text literally."""
    return f'<p style="white-space:pre-wrap">{html.escape(text)}</p>'


def _text_key(s: str) -> str | None:
    return s.casefold() or None  # empty sorts last, like a missing number


def _status_key(s: str) -> int:
    return STATUS_RANK.get(s, len(STATUS_RANK))


def _sort_source(state: RunState, column: int) -> tuple[list[Any], Callable[[Any], Any] | None]:
    """The state column behind a table column and how to turn a cell into its sort key."""
    sources: dict[int, tuple[list[Any], Callable[[Any], Any] | None]] = {
        COL_SEQ: (state.sequence, None),
        COL_STATUS: (state.row_status, _status_key),
        COL_SPECIMEN: (state.specimen_id, None),
        COL_FILE: (state.image, _text_key),
        COL_FIELDS: (state.fields_extracted, None),
        COL_CONFIDENCE: (state.confidence, None),
        COL_TIME: (state.time_ms, None),
        COL_COST: (state.cost_usd, None),
        COL_ERROR: (state.error, _text_key),
    }
    return sources[column]


def sorted_rows(state: RunState, n: int, column: int, descending: bool) -> list[int]:
    """State rows 0..n-1 ordered by a column; missing values last in either direction.

    Stable both ways: equal keys keep run order. Number columns sort in numpy (a stable
    argsort over float64 with NaN for missing), text columns with Python's C-level sort.
    """
    if column in NUMERIC_COLUMNS:
        try:
            return _sorted_numeric(state, n, column, descending)
        except (OverflowError, TypeError, ValueError):  # a value no float64 holds exactly
            pass
    col, key = _sort_source(state, column)
    values: Sequence[Any] = col[:n] if key is None else [key(v) for v in col[:n]]
    present = [r for r in range(n) if values[r] is not None]
    missing = [r for r in range(n) if values[r] is None]
    present.sort(key=values.__getitem__, reverse=descending)  # stable both ways
    return present + missing


def _sorted_numeric(state: RunState, n: int, column: int, descending: bool) -> list[int]:
    col, _key = _sort_source(state, column)
    nan = math.nan
    values = np.fromiter((nan if v is None else v for v in col[:n]), np.float64, n)
    if np.isinf(values).any() or np.abs(values[~np.isnan(values)]).max(initial=0) > 2**53:
        raise OverflowError("beyond exact float64")
    missing = np.isnan(values)
    present = np.flatnonzero(~missing)
    keys = values[present]
    order = present[np.argsort(-keys if descending else keys, kind="stable")]
    out: list[int] = np.concatenate([order, np.flatnonzero(missing)]).tolist()
    return out


class SpecimenTableModel(QAbstractTableModel):
    """One row per specimen, read straight from the RunState columns; sortable by permutation.

    `rowCount` is the number of rows announced to views, which lags the state until `sync`, so
    views never see a row before its `rowsInserted`.
    """

    def __init__(self, document: RunDocument, parent: Any = None) -> None:
        super().__init__(parent)
        self._document = document
        self._state = document.state
        self._rows = 0
        self._order: list[int] | None = None  # view row -> state row; None while unsorted
        self._pos: list[int] | None = None  # state row -> view row
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._last_sort_s = 0.0
        # Live updates while sorted re-sort on a timer, spaced by how long a sort takes.
        self._resort = QTimer(self)
        self._resort.setSingleShot(True)
        self._resort.timeout.connect(self._apply_sort)
        document.reset_done.connect(self._on_reset)
        document.refreshed.connect(self.sync)

    # ------------------------------------------------------------------ feeding
    @property
    def state(self) -> RunState:
        return self._state

    def set_state(self, state: RunState) -> None:
        """Show another state from scratch (a new source was opened)."""
        self.beginResetModel()
        self._state = state
        self._rows = state.rows
        self._resort.stop()
        if self._sort_column >= 0:
            self._order, self._pos = self._compute_order()
        else:
            self._order = self._pos = None
        self.endResetModel()

    def _on_reset(self) -> None:
        self.set_state(self._document.state)

    def sync(self, changed_rows: set[int]) -> None:
        """Announce rows appended since the last sync and repaint the changed ones."""
        if self._document.state is not self._state:  # replaced without reset_done
            self.set_state(self._document.state)
            return
        old, n = self._rows, self._state.rows
        if n > old:
            self.beginInsertRows(QModelIndex(), old, n - 1)
            self._rows = n
            if self._order is not None and self._pos is not None:
                self._order.extend(range(old, n))  # at the end until the next re-sort
                self._pos.extend(range(old, n))
            self.endInsertRows()
        existing = [r for r in changed_rows if r < old]
        if existing:
            view_rows = [self._pos[r] for r in existing] if self._pos is not None else existing
            last_col = len(HEADERS) - 1
            self.dataChanged.emit(
                self.index(min(view_rows), 0), self.index(max(view_rows), last_col)
            )
        if self._sort_column >= 0 and (n > old or existing) and not self._resort.isActive():
            self._resort.start(int(min(2000.0, max(100.0, self._last_sort_s * 10_000.0))))

    # ------------------------------------------------------------------ sorting
    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        column = column if 0 <= column < len(HEADERS) else -1
        current = (
            column == self._sort_column
            and order == self._sort_order
            and (column < 0 or (self._order is not None and len(self._order) == self._rows))
            and not self._resort.isActive()
        )
        if current:  # e.g. sortByColumn sorts, then the header's indicator signal asks again
            return
        self._sort_column = column
        self._sort_order = order
        self._apply_sort()

    def sort_column(self) -> int:
        return self._sort_column

    def state_row(self, view_row: int) -> int:
        """The RunState row shown at a model row."""
        return self._order[view_row] if self._order is not None else view_row

    def view_row(self, state_row: int) -> int:
        return self._pos[state_row] if self._pos is not None else state_row

    def _compute_order(self) -> tuple[list[int], list[int]]:
        desc = self._sort_order == Qt.SortOrder.DescendingOrder
        order = sorted_rows(self._state, self._rows, self._sort_column, desc)
        pos_arr = np.empty(len(order), dtype=np.int64)
        pos_arr[np.asarray(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int64)
        pos: list[int] = pos_arr.tolist()
        return order, pos

    def _apply_sort(self) -> None:
        if self._sort_column < 0 and self._order is None:
            return
        t0 = time.perf_counter()
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        rows = [self.state_row(i.row()) for i in persistent]
        if self._sort_column >= 0:
            self._order, self._pos = self._compute_order()
        else:
            self._order = self._pos = None
        self.changePersistentIndexList(
            persistent,
            [
                self.index(self.view_row(r), i.column())
                for r, i in zip(rows, persistent, strict=True)
            ],
        )
        self.layoutChanged.emit()  # proxies and views re-map synchronously: include them
        self._last_sort_s = time.perf_counter() - t0

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
            return self._display(self.state_row(index.row()), index.column())
        if role == Qt.ItemDataRole.UserRole:
            col, key = _sort_source(self._state, index.column())
            value = col[self.state_row(index.row())]
            return value if key is None else key(value)
        if role == Qt.ItemDataRole.ForegroundRole:
            if index.column() != COL_STATUS:
                return None
            return STATUS_COLORS.get(self._state.row_status[self.state_row(index.row())])
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if index.column() in NUMERIC_COLUMNS else _LEFT
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(self.state_row(index.row()), index.column())
        return None

    def _display(self, r: int, c: int) -> str:
        s = self._state
        if c == COL_SEQ:
            return "" if s.sequence[r] is None else str(s.sequence[r])
        if c == COL_STATUS:
            return s.row_status[r]
        if c == COL_SPECIMEN:
            return s.specimen_id[r][:SHORT_ID]
        if c == COL_FILE:
            return s.image[r]
        if c == COL_FIELDS:
            finished = s.row_status[r] in (STATUS_COMPLETED, STATUS_FAILED)
            return str(s.fields_extracted[r]) if finished else ""
        if c == COL_CONFIDENCE:
            conf = s.confidence[r]
            return "" if conf is None else f"{conf:.2f}"
        if c == COL_TIME:
            ms = s.time_ms[r]
            return "" if ms is None else f"{ms / 1000.0:.1f}"
        if c == COL_COST:
            cost = s.cost_usd[r]
            return "" if cost is None else f"{cost:.4f}"
        if c == COL_ERROR:
            return s.error[r].split("\n", 1)[0]
        return ""

    def _tooltip(self, r: int, c: int) -> str | None:
        s = self._state
        if c == COL_SPECIMEN:
            return plain_tooltip(s.specimen_id[r])
        if c == COL_FILE and (s.path[r] or s.image[r]):
            return plain_tooltip(s.path[r] or s.image[r])
        if c == COL_ERROR and s.error[r]:
            return plain_tooltip(s.error[r])
        return None


class SpecimenFilterProxy(QSortFilterProxyModel):
    """Filters by status and text; sorting is handed to SpecimenTableModel's permutation."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setSortRole(Qt.ItemDataRole.UserRole)  # the key the model sorts by, for other users
        self.setDynamicSortFilter(True)  # re-filter rows whose status changes
        self._model: SpecimenTableModel | None = None
        self._statuses: frozenset[str] | None = None
        self._needle = ""

    def setSourceModel(self, model: QAbstractItemModel) -> None:
        self._model = model if isinstance(model, SpecimenTableModel) else None
        super().setSourceModel(model)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if self._model is not None:
            self._model.sort(column, order)
        else:
            super().sort(column, order)

    def set_status_filter(self, status: str | None) -> None:
        """Show one status only (None or "All": every row); processing includes retrying."""
        if not status or status == "All":
            statuses = None
        elif status == STATUS_PROCESSING:
            statuses = frozenset({STATUS_PROCESSING, STATUS_RETRYING})
        else:
            statuses = frozenset({status})
        if statuses != self._statuses:
            self.beginFilterChange()
            self._statuses = statuses
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_text_filter(self, text: str) -> None:
        """Case-insensitive substring over file name, specimen id and error."""
        needle = text.strip().casefold()
        if needle != self._needle:
            self.beginFilterChange()
            self._needle = needle
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def state_row(self, proxy_row: int) -> int | None:
        """The RunState row behind a proxy row, or None if out of range."""
        if self._model is None or not 0 <= proxy_row < self.rowCount():
            return None
        return self._model.state_row(self.mapToSource(self.index(proxy_row, 0)).row())

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self._model
        if model is None or (self._statuses is None and not self._needle):
            return True
        s = model.state
        r = model.state_row(source_row)
        if self._statuses is not None and s.row_status[r] not in self._statuses:
            return False
        needle = self._needle
        return (
            not needle
            or needle in s.image[r].casefold()
            or needle in s.specimen_id[r].casefold()
            or needle in s.error[r].casefold()
        )


class SpecimenTableView(QWidget):
    """The filter bar, the specimen table and a "N of M specimens" count."""

    specimen_selected = Signal(int)
    """The current specimen changed; carries its RunState (source) row."""

    def __init__(self, document: RunDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = SpecimenTableModel(document, self)
        self.proxy = SpecimenFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.status_combo = QComboBox()
        self.status_combo.addItems(list(STATUS_FILTERS))
        self.status_combo.setToolTip("Show one status (processing includes retrying)")
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Filter by file, id or error")
        self.search_edit.setClearButtonEnabled(True)
        self.count_label = QLabel()
        self.count_label.setTextFormat(Qt.TextFormat.PlainText)

        self.table = QTableView()
        self.table.setModel(self.proxy)
        hh = self.table.horizontalHeader()
        hh.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # run order until a header click
        hh.setSortIndicatorClearable(True)  # a third click goes back to run order
        self.table.setSortingEnabled(True)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        vh = self.table.verticalHeader()
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # no per-row height measuring
        vh.setDefaultSectionSize(ROW_HEIGHT)
        vh.hide()
        hh.setHighlightSections(False)
        hh.setStretchLastSection(True)
        for col, width in enumerate((48, 86, 110, 170, 52, 80, 64, 72)):
            self.table.setColumnWidth(col, width)

        bar = QHBoxLayout()
        bar.setContentsMargins(2, 2, 6, 2)
        bar.addWidget(self.status_combo)
        bar.addWidget(self.search_edit, 1)
        bar.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.table)

        self.status_combo.currentTextChanged.connect(self.proxy.set_status_filter)
        self.search_edit.textChanged.connect(self.proxy.set_text_filter)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        for sig in (
            self.proxy.rowsInserted,
            self.proxy.rowsRemoved,
            self.proxy.modelReset,
            self.proxy.layoutChanged,
        ):
            sig.connect(self._schedule_count)
        self._count_pending = False
        self._update_count()

    def current_state_row(self) -> int | None:
        """The RunState row of the selected specimen, if any."""
        idx = self.table.currentIndex()
        return self.proxy.state_row(idx.row()) if idx.isValid() else None

    def select_state_row(self, row: int) -> bool:
        """Select and reveal a specimen by its RunState row; False if filtered out or unknown."""
        if not 0 <= row < self.model.rowCount():
            return False
        idx = self.proxy.mapFromSource(self.model.index(self.model.view_row(row), 0))
        if not idx.isValid():
            return False
        self.table.setCurrentIndex(idx)
        self.table.scrollTo(idx)
        return True

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            row = self.proxy.state_row(current.row())
            if row is not None:
                self.specimen_selected.emit(row)

    def _schedule_count(self, *_args: Any) -> None:
        # A filter change can remove rows in thousands of separate ranges: count once after.
        if not self._count_pending:
            self._count_pending = True
            QTimer.singleShot(0, self, self._update_count)  # cancelled if self is deleted

    def _update_count(self) -> None:
        self._count_pending = False
        self.count_label.setText(
            f"{self.proxy.rowCount():,} of {self.model.rowCount():,} specimens"
        )
