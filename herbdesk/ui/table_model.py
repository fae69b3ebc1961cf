"""The specimen table's model over RunState's columns, sorted and filtered in place.

Sorting and filtering live in the model (a row permutation built with numpy or Python's C-level
`sort`, narrowed by a filter mask computed over whole columns), not in QSortFilterProxyModel's
comparator or filterAcceptsRow: those call back into Python once per comparison or per row,
which measured 5-17 s to sort 100,000 rows and over a second to filter 1,000,000; the
permutation and the mask take a fraction of that. The view gets the model directly, with no
proxy: even a pass-through QSortFilterProxyModel built an O(n) mapping on every insertion
(45-63 ms of GUI-thread time per million rows).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)

from herbdesk.runstate.state import STATUS_COMPLETED, STATUS_FAILED, RunState
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
    HEADERS,
    NUMERIC_COLUMNS,
    SHORT_ID,
    STATUS_COLORS,
    column_term,
    plain_tooltip,
)
from herbdesk.ui.document import RunDocument
from herbdesk.ui.table_sort import ranges, sort_source, sorted_array, status_set

Index = QModelIndex | QPersistentModelIndex
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter

# Live updates announce rows leaving and joining the filter one range at a time (the view keeps
# its place); past this many ranges in one refresh (a bulk load) the model resets instead.
MAX_LIVE_RANGES = 64


class SpecimenTableModel(QAbstractTableModel):
    """One row per shown specimen, read straight from the RunState columns; sorted and filtered
    by permutation.

    Model (view) rows are the state rows that pass the status and text filter, in sort order:
    `_order` maps a view row to its state row and `_pos` a state row to its view row (-1 when
    filtered out); both are None while every known row shows in run order. Filters are computed
    over whole columns at C speed (no per-row call from Qt). `total_rows` is the number of state
    rows announced so far, which lags the state until `sync`, so views never see a row before its
    `rowsInserted`.
    """

    total_changed = Signal()
    """More state rows are known (some may be filtered out, so no rowsInserted says so)."""

    def __init__(self, document: RunDocument, parent: Any = None) -> None:
        super().__init__(parent)
        self._document = document
        self._state = document.state
        self._known = 0  # state rows announced
        self._rows = 0  # rows shown (rowCount)
        self._sorted: np.ndarray | None = None  # all known rows in sort order; None unsorted
        self._order: np.ndarray | None = None  # view row -> state row; None: identity
        self._pos: np.ndarray | None = None  # state row -> view row (-1 hidden); None: identity
        self._statuses: frozenset[str] | None = None
        self._needle = ""
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._last_sort_s = 0.0
        # Live updates while sorted re-sort on a timer, spaced by how long a sort takes.
        self._resort = QTimer(self)
        self._resort.setSingleShot(True)
        self._resort.timeout.connect(self._apply_sort)
        # a term sort or value search asked for while the values are still being read runs
        # without them (run order, the other columns' matches) and again once they are
        self._waiting_sort = False
        self._waiting_filter = False
        document.reset_done.connect(self._on_reset)
        document.refreshed.connect(self.sync)
        document.terms_ready.connect(self._terms_ready)

    # ------------------------------------------------------------------ feeding
    @property
    def state(self) -> RunState:
        return self._state

    def total_rows(self) -> int:
        """State rows announced, shown or filtered out."""
        return self._known

    def set_state(self, state: RunState) -> None:
        """Show another state from scratch (a new source was opened)."""
        self.beginResetModel()
        self._state = state
        self._known = state.rows
        self._resort.stop()
        self._sorted = self._compute_sorted() if self._sort_column >= 0 else None
        self._refilter()
        self.endResetModel()
        self.total_changed.emit()

    def _on_reset(self) -> None:
        self.set_state(self._document.state)

    def sync(self, changed_rows: np.ndarray) -> None:
        """Announce rows appended since the last sync and repaint the changed ones.

        While a filter is active, rows whose status change takes them out of it are removed and
        rows it lets in are inserted (at the end while sorted, until the re-sort places them).
        """
        if self._document.state is not self._state:  # replaced without reset_done
            self.set_state(self._document.state)
            return
        old, n = self._known, self._state.rows
        # sorted distinct rows (RunState.take_changed_rows): a bulk load hands over
        # hundreds of thousands per refresh
        touched = np.asarray(changed_rows, np.int64)
        existing = touched[touched < old]
        changed = bool(len(existing))
        if self.filtering() and changed and not self._refilter_existing(existing.tolist()):
            self._reset_for(n)  # too many separate ranges: start over, keeping the place
            existing = existing[:0]
        if n > self._known:
            self._append(self._known, n)
        if len(existing):
            pos = self._pos
            view_rows = existing if pos is None else pos[existing]
            view_rows = view_rows[view_rows >= 0]
            if len(view_rows):
                last_col = len(HEADERS) - 1
                self.dataChanged.emit(
                    self.index(int(view_rows.min()), 0), self.index(int(view_rows.max()), last_col)
                )
        if n > old:
            self.total_changed.emit()
        if self._sort_column >= 0 and (n > old or changed) and not self._resort.isActive():
            self._resort.start(int(min(2000.0, max(100.0, self._last_sort_s * 10_000.0))))

    def _append(self, old: int, n: int) -> None:
        """Known rows old..n-1 are new: those passing the filter show at the end."""
        new = np.arange(old, n, dtype=np.int64)
        self._known = n
        if self._sorted is not None:
            self._sorted = np.concatenate([self._sorted, new])  # at the end until re-sorted
        if self._order is None:  # every row shows in run order
            self.beginInsertRows(QModelIndex(), old, n - 1)
            self._rows = n
            self.endInsertRows()
            return
        assert self._pos is not None
        shown = new[self._passes(new)] if self.filtering() else new
        self._pos = np.concatenate([self._pos, np.full(n - old, -1, dtype=np.int64)])
        if len(shown):
            first = self._rows
            self.beginInsertRows(QModelIndex(), first, first + len(shown) - 1)
            self._order = np.concatenate([self._order, shown])
            self._pos[shown] = np.arange(first, first + len(shown), dtype=np.int64)
            self._rows += len(shown)
            self.endInsertRows()

    def _refilter_existing(self, existing: list[int]) -> bool:
        """Remove rows that left the filter and insert those that joined; False if too many."""
        assert self._order is not None and self._pos is not None
        rows = np.array(sorted(existing), dtype=np.int64)
        shown = self._pos[rows] >= 0
        passes = self._passes(rows)
        leaving = np.sort(self._pos[rows[shown & ~passes]])  # view rows
        joining = rows[passes & ~shown]  # state rows, ascending
        if not len(leaving) and not len(joining):
            return True
        removals = ranges(leaving.tolist())
        if self._sorted is None:  # run order: a joining row goes where it belongs
            at = np.searchsorted(self._order, joining)
        else:  # sorted: at the end until the re-sort places it
            at = np.full(len(joining), self._rows, dtype=np.int64)
        if len(removals) + len(np.unique(at)) > MAX_LIVE_RANGES:
            return False
        # `_pos` is rebuilt once after the batch (O(rows)); `state_row` is right at every step
        for first, last in reversed(removals):  # bottom up: earlier rows keep their place
            self.beginRemoveRows(QModelIndex(), first, last)
            self._order = np.delete(self._order, np.s_[first : last + 1])
            self._rows -= last - first + 1
            self.endRemoveRows()
        if len(joining):
            # positions in the order as it is now, inserted bottom up
            at = (
                np.searchsorted(self._order, joining)
                if self._sorted is None
                else np.full(len(joining), self._rows, dtype=np.int64)
            )
            bounds = np.flatnonzero(np.diff(at)) + 1
            for group in reversed(np.split(np.arange(len(joining)), bounds)):
                p = int(at[group[0]])
                self.beginInsertRows(QModelIndex(), p, p + len(group) - 1)
                self._order = np.insert(self._order, p, joining[group])
                self._rows += len(group)
                self.endInsertRows()
        self._pos = self._inverse(self._order)
        return True

    def _reset_for(self, n: int) -> None:
        """Refilter everything (a bulk load changed rows in too many places)."""
        self.beginResetModel()
        if n > self._known:
            new = np.arange(self._known, n, dtype=np.int64)
            if self._sorted is not None:
                self._sorted = np.concatenate([self._sorted, new])
            self._known = n
        self._refilter()
        self.endResetModel()

    # ------------------------------------------------------------------ filtering
    def filtering(self) -> bool:
        return self._statuses is not None or bool(self._needle)

    def set_status_filter(self, status: str | None) -> None:
        """Show one status only (None or "All": every row); processing includes retrying."""
        self.set_filter(status_set(status), self._needle)

    def set_text_filter(self, text: str) -> None:
        """Case-insensitive substring over file name, specimen id, error, quality findings and
        every term's value."""
        self.set_filter(self._statuses, text.strip().casefold())

    def set_filter(self, statuses: frozenset[str] | None, needle: str) -> None:
        """Show only rows with one of `statuses` (None: any) containing `needle` (casefolded)
        in their file name, specimen id, error, findings or a term's value. Resets the model:
        views keep their place."""
        if statuses == self._statuses and needle == self._needle:
            return
        self.beginResetModel()
        self._statuses = statuses
        self._needle = needle
        if self._resort.isActive() and self._sort_column >= 0:  # place appended rows now
            self._resort.stop()
            self._sorted = self._compute_sorted()
        self._refilter()
        self.endResetModel()

    def _refilter(self) -> None:
        """Rebuild the shown rows from the sort permutation and the filter over known rows."""
        order, sorted_ = self._sorted, self._sorted
        if self.filtering():
            mask = self._mask()
            order = np.flatnonzero(mask) if sorted_ is None else sorted_[mask[sorted_]]
        self._order = order
        self._pos = None if order is None else self._inverse(order)
        self._rows = self._known if order is None else len(order)

    def _inverse(self, order: np.ndarray) -> np.ndarray:
        pos = np.full(self._known, -1, dtype=np.int64)
        pos[order] = np.arange(len(order), dtype=np.int64)
        return pos

    def _mask(self) -> np.ndarray:
        """Which of the known rows pass the filter, over whole columns."""
        n = self._known
        s = self._state
        statuses, needle = self._statuses, self._needle
        if statuses is not None:
            status = np.array(s.row_status[:n], dtype=object)
            mask = np.zeros(n, dtype=bool)
            for st in statuses:
                mask |= status == st
            if not needle:
                return mask
            candidates = np.flatnonzero(mask)
            mask[candidates[~self._text_hits(candidates)]] = False
            return mask
        if not needle:
            return np.ones(n, dtype=bool)
        images, ids, errors = s.image[:n], s.specimen_id[:n], s.error[:n]
        label = s.quality.row_label  # a check name finds the rows with that finding
        mask = np.array(
            [
                needle in a.casefold()
                or needle in b.casefold()
                or needle in c.casefold()
                or (bool(s.quality) and needle in label(r).casefold())
                for r, (a, b, c) in enumerate(zip(images, ids, errors, strict=True))
            ],
            dtype=bool,
        )
        if s.terms and self._with_terms():  # searched over distinct values, mapped to rows
            mask |= s.terms.hits(needle, n)
        return mask

    def _with_terms(self) -> bool:
        """Whether a search may look at term values now (not while they are being read)."""
        if self._document.terms_at_hand():
            return True
        self._waiting_filter = True
        return False

    def waiting(self) -> bool:
        """A term sort or value search waits for the values being read."""
        return self._waiting_sort or self._waiting_filter

    def _terms_ready(self) -> None:
        sort, search = self._waiting_sort, self._waiting_filter
        self._waiting_sort = self._waiting_filter = False
        if search and self._needle:
            self.beginResetModel()
            if sort:
                self._sorted = self._compute_sorted()
            self._refilter()
            self.endResetModel()
        elif sort:
            self._apply_sort()

    def _text_hits(self, rows: np.ndarray) -> np.ndarray:
        """Which of some state rows contain the needle."""
        s = self._state
        needle, images, ids, errors = self._needle, s.image, s.specimen_id, s.error
        hits = np.array(
            [
                needle in images[r].casefold()
                or needle in ids[r].casefold()
                or needle in errors[r].casefold()
                or (bool(s.quality) and needle in s.quality.row_label(r).casefold())
                for r in rows.tolist()
            ],
            dtype=bool,
        )
        if s.terms and len(rows) and self._with_terms():
            hits |= s.terms.row_hits(needle, rows)
        return hits

    def _passes(self, rows: np.ndarray) -> np.ndarray:
        """Which of some state rows pass the filter (live updates: few rows)."""
        statuses = self._statuses
        if statuses is None:
            mask = np.ones(len(rows), dtype=bool)
        else:
            status = self._state.row_status
            mask = np.array([status[r] in statuses for r in rows.tolist()], dtype=bool)
        if self._needle and mask.any():
            candidates = np.flatnonzero(mask)
            mask[candidates] = self._text_hits(rows[candidates])
        return mask

    # ------------------------------------------------------------------ sorting
    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        column = column if 0 <= column < len(HEADERS) else -1
        current = (
            column == self._sort_column
            and order == self._sort_order
            and (column < 0 or (self._sorted is not None and len(self._sorted) == self._known))
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
        return view_row if self._order is None else int(self._order[view_row])

    def view_row(self, state_row: int) -> int:
        """The model row showing a known RunState row, -1 if it is filtered out."""
        return state_row if self._pos is None else int(self._pos[state_row])

    def _compute_sorted(self) -> np.ndarray:
        if column_term(self._sort_column) and not self._document.terms_at_hand():
            self._waiting_sort = True  # run order until the values are read
            return np.arange(self._known, dtype=np.int64)
        desc = self._sort_order == Qt.SortOrder.DescendingOrder
        return sorted_array(self._state, self._known, self._sort_column, desc)

    def _apply_sort(self) -> None:
        if self._sort_column < 0 and self._sorted is None:
            return
        t0 = time.perf_counter()
        self._resort.stop()  # this is the re-sort it would make
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        rows = [self.state_row(i.row()) for i in persistent]
        # the shown rows stay the same (a layout change keeps the row count); only their order
        self._sorted = self._compute_sorted() if self._sort_column >= 0 else None
        if not self.filtering() or self._pos is None:  # every known row shows
            self._order = self._sorted
        else:
            shown = self._pos >= 0
            sorted_ = self._sorted
            self._order = np.flatnonzero(shown) if sorted_ is None else sorted_[shown[sorted_]]
        self._pos = None if self._order is None else self._inverse(self._order)
        self.changePersistentIndexList(
            persistent,
            [
                self.index(self.view_row(r), i.column())
                for r, i in zip(rows, persistent, strict=True)
            ],
        )
        self.layoutChanged.emit()  # views re-map synchronously: include them
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
            term = column_term(index.column())
            if term is not None:
                return self._state.terms.value(term, self.state_row(index.row())) or None
            col, key = sort_source(self._state, index.column())
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
        term = column_term(c)
        if term is not None:
            return s.terms.value(term, r).split("\n", 1)[0]
        if c == COL_FILE:
            return s.image[r]
        if c == COL_SEQ:
            return "" if s.sequence[r] is None else str(s.sequence[r])
        if c == COL_STATUS:
            return s.status_text(r)
        if c == COL_SPECIMEN:
            return s.specimen_id[r][:SHORT_ID]
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
        if c == COL_QUALITY:
            return s.quality.row_label(r)
        return ""

    def _tooltip(self, r: int, c: int) -> str | None:
        s = self._state
        if c == COL_SPECIMEN:
            return plain_tooltip(s.specimen_id[r])
        if c == COL_FILE:  # the row's name: where the sheet is and what it is (its hash)
            where = s.path[r] or s.image[r]
            return plain_tooltip(
                f"{where}\nsha256 {s.specimen_id[r]}" if where else s.specimen_id[r]
            )
        term = column_term(c)
        if term is not None:
            value = s.terms.value(term, r)
            return plain_tooltip(f"{term}: {value}") if value else None
        if c == COL_ERROR and s.error[r]:
            return plain_tooltip(s.error[r])
        if c == COL_QUALITY and s.quality.row_label(r):
            return plain_tooltip(_quality_tip(s.quality.row_checks(r)))
        return None


def _quality_tip(checks: tuple[str, ...]) -> str:
    """Each finding of the row's record with what it means (docs/quality.md)."""
    from herbdesk.quality.checks import CHECKS

    lines = [f"{c}: {CHECKS[c].message}" if c in CHECKS else c for c in dict.fromkeys(checks)]
    return "\n".join(lines) or "no findings"
