"""The specimen table view: the filter bar, the table and its "N of M specimens" count.

The model and its sort/filter helpers live in table_model and table_sort; the columns and
constants shared with other widgets in columns. The table views the model directly, which sorts
and filters itself: a pass-through QSortFilterProxyModel built an O(n) mapping per insertion.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPoint, QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from herbdesk.runstate.state import RunState
from herbdesk.ui.columns import (
    COL_CONFIDENCE,
    COL_COST,
    COL_ERROR,
    COL_FIELDS,
    COL_FILE,
    COL_QUALITY,
    COL_SEQ,
    COL_SPECIMEN,
    COL_STATUS,
    COL_TIME,
    COLUMN_KEYS,
    DEFAULT_COLUMNS,
    HEADERS,
    ROW_HEIGHT,
    STATUS_FILTERS,
    column_term,
)
from herbdesk.ui.document import RunDocument
from herbdesk.ui.table_model import SpecimenTableModel

COLUMNS_SETTING = "table/columns"  # the shown columns' keys (COLUMN_KEYS), comma-separated
WIDTHS = {
    COL_FILE: 130,
    COL_STATUS: 78,
    COL_CONFIDENCE: 80,
    COL_QUALITY: 120,
    COL_FIELDS: 52,
    COL_ERROR: 220,
    COL_SEQ: 48,
    COL_SPECIMEN: 110,
    COL_TIME: 64,
    COL_COST: 72,
}
TERM_WIDTHS = {
    "scientificName": 170,
    "catalogNumber": 96,
    "recordedBy": 120,
    "eventDate": 84,
    "country": 76,
    "stateProvince": 100,
    "locality": 220,
}


class SpecimenTableView(QWidget):
    """The filter bar, the specimen table and a "N of M specimens" count."""

    specimen_selected = Signal(int)
    """The current specimen changed; carries its RunState (source) row."""

    def __init__(
        self,
        document: RunDocument,
        parent: QWidget | None = None,
        settings: QSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = SpecimenTableModel(document, self)
        self._settings = settings  # where the column choice is remembered (None: nowhere)

        self.status_combo = QComboBox()
        self.status_combo.addItems(list(STATUS_FILTERS))
        self.status_combo.setToolTip("Show one status (processing includes retrying)")
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search file, values, id, error")
        self.search_edit.setClearButtonEnabled(True)
        self.count_label = QLabel()
        self.count_label.setTextFormat(Qt.TextFormat.PlainText)

        self.table = QTableView()
        self.table.setModel(self.model)  # header clicks call model.sort
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
        for col in range(len(HEADERS)):
            term = column_term(col)
            width = WIDTHS.get(col, 130) if term is None else TERM_WIDTHS.get(term, 130)
            self.table.setColumnWidth(col, width)
        # the column chooser: the header's context menu and View > Columns
        self.columns_menu = QMenu("&Columns", self)
        self.columns_menu.aboutToShow.connect(self._fill_columns_menu)
        hh.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        hh.customContextMenuRequested.connect(
            lambda pos: self.columns_menu.popup(hh.mapToGlobal(pos))
        )
        self._show_columns(self._saved_columns())

        bar = QHBoxLayout()
        bar.setContentsMargins(2, 2, 6, 2)
        bar.addWidget(self.status_combo)
        bar.addWidget(self.search_edit, 1)
        bar.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.table)

        self.status_combo.currentTextChanged.connect(self.model.set_status_filter)
        self.search_edit.textChanged.connect(self.model.set_text_filter)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        for sig in (
            self.model.rowsInserted,
            self.model.rowsRemoved,
            self.model.modelReset,
            self.model.layoutChanged,
        ):
            sig.connect(self._schedule_count)
        self.model.total_changed.connect(self._schedule_count)
        # A filter change resets the model: keep the current specimen and the scroll place.
        self._kept: tuple[RunState, int | None, int | None] | None = None
        self._restoring: int | None = None
        self.model.modelAboutToBeReset.connect(self._before_reset)
        self.model.modelReset.connect(self._after_reset)
        self._count_pending = False
        self._update_count()

    # ------------------------------------------------------------------ columns
    def shown_columns(self) -> list[str]:
        """Keys (COLUMN_KEYS) of the columns shown, in column order."""
        return [k for c, k in enumerate(COLUMN_KEYS) if not self.table.isColumnHidden(c)]

    def set_column_shown(self, key: str, shown: bool) -> None:
        """Show or hide one column (the file name, the row's name, always shows); remembered."""
        keys = set(self.shown_columns())
        if shown:
            keys.add(key)
        else:
            keys.discard(key)
        self._show_columns(keys)
        self._remember()

    def reset_columns(self) -> None:
        self._show_columns(DEFAULT_COLUMNS)
        self._remember()

    def _show_columns(self, keys: set[str] | frozenset[str]) -> None:
        for c, k in enumerate(COLUMN_KEYS):
            self.table.setColumnHidden(c, k not in keys and c != COL_FILE)

    def _saved_columns(self) -> set[str] | frozenset[str]:
        raw = self._settings.value(COLUMNS_SETTING) if self._settings is not None else None
        if isinstance(raw, list):  # some QSettings backends hand a list back
            raw = ",".join(map(str, raw))
        if not isinstance(raw, str) or not raw:
            return DEFAULT_COLUMNS
        keys = set(raw.split(",")) & set(COLUMN_KEYS)
        return keys or DEFAULT_COLUMNS

    def _remember(self) -> None:
        if self._settings is not None:
            self._settings.setValue(COLUMNS_SETTING, ",".join(self.shown_columns()))

    def _fill_columns_menu(self) -> None:
        menu = self.columns_menu
        menu.clear()
        shown = set(self.shown_columns())
        for c, key in enumerate(COLUMN_KEYS):
            if c == COL_FILE + 2:  # after file and status: the terms
                menu.addSection("Darwin Core terms")
            elif column_term(c) is None and column_term(c - 1) is not None:
                menu.addSection("Run")
            act = menu.addAction(HEADERS[c])
            act.setCheckable(True)
            act.setChecked(key in shown)
            act.setEnabled(c != COL_FILE)
            act.toggled.connect(lambda on, k=key: self.set_column_shown(k, on))
        menu.addSeparator()
        menu.addAction("Default columns", self.reset_columns)

    # ------------------------------------------------------------------ rows
    def current_state_row(self) -> int | None:
        """The RunState row of the selected specimen, if any."""
        idx = self.table.currentIndex()
        return self.model.state_row(idx.row()) if idx.isValid() else None

    def select_state_row(self, row: int) -> bool:
        """Select and reveal a specimen by its RunState row; False if filtered out or unknown."""
        idx = self._index_of(row)
        if not idx.isValid():
            return False
        self.table.setCurrentIndex(idx)
        self.table.scrollTo(idx)
        return True

    def _index_of(self, row: int) -> QModelIndex:
        """The model index showing a RunState row; invalid if filtered out or unknown."""
        if not 0 <= row < self.model.total_rows():
            return QModelIndex()
        view_row = self.model.view_row(row)
        if view_row < 0:
            return QModelIndex()
        return self.model.index(view_row, 0)

    def _before_reset(self) -> None:
        top = self.table.indexAt(QPoint(0, 0))
        self._kept = (
            self.model.state,
            self.current_state_row(),
            self.model.state_row(top.row()) if top.isValid() else None,
        )

    def _after_reset(self) -> None:
        kept, self._kept = self._kept, None
        if kept is None or kept[0] is not self.model.state:  # another source: start afresh
            return
        _state, current, top = kept
        if top is not None:
            idx = self._index_of(top)
            if idx.isValid():
                self.table.scrollTo(idx, QAbstractItemView.ScrollHint.PositionAtTop)
        if current is not None:
            idx = self._index_of(current)
            if idx.isValid():
                self._restoring = current  # the same specimen: no new specimen_selected
                try:
                    self.table.setCurrentIndex(idx)
                finally:
                    self._restoring = None
                self.table.scrollTo(idx)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            row = self.model.state_row(current.row())
            if row != self._restoring:
                self.specimen_selected.emit(row)

    def _schedule_count(self, *_args: Any) -> None:
        # A filter change can remove rows in thousands of separate ranges: count once after.
        if not self._count_pending:
            self._count_pending = True
            QTimer.singleShot(0, self, self._update_count)  # cancelled if self is deleted

    def _update_count(self) -> None:
        self._count_pending = False
        self.count_label.setText(
            f"{self.model.rowCount():,} of {self.model.total_rows():,} specimens"
        )
