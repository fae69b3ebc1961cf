"""The review mode: one record at a time, its label beside its terms, verdicts by key.

Thin: the queue, the verdicts and the estimate are ReviewSession's (herbdesk/export/
reviewsession.py); this window shows them and turns keys into verdicts. The label region
shown is the lower right quarter of the upright sheet, where these herbaria put their
labels; raw.jsonl records no OCR boxes to locate it better. A landscape scan is a portrait
sheet scanned sideways (the sample sheets: label top right, its text turned 90°), so it is
shown turned 90° clockwise, upright, its label readable. O turns it further, F shows the
whole sheet, the wheel zooms, a drag pans.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtGui import (
    QBrush,
    QCloseEvent,
    QColor,
    QFont,
    QImage,
    QKeyEvent,
    QKeySequence,
    QTransform,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from herbdesk.export.reviewsession import ExportError, ReviewRecord, ReviewSession
from herbdesk.extraction.reviewlog import ReviewAppender, ReviewRefused
from herbdesk.quality.review import ACCEPT, CORRECT, REJECT, SAMPLE_RANDOM, Verdict
from herbdesk.ui.detail import ImageView, load_image, plain_label

LABEL_REGION = (0.5, 0.5, 1.0, 1.0)  # x0, y0, x1, y1 as fractions of the sheet
KEYS_HELP = (
    "A accept · C correct (type, Enter) · R reject · ↑/↓ term · N/→ next record · "
    "P/← previous · F whole sheet / label · O turn 90° · Esc close"
)
ESTIMATE_COLUMNS = ("Term", "Correct", "95 % range", "n", "Wrong expected (unreviewed)")
ESTIMATE_ROWS_SHOWN = 4  # the estimate table's height; more terms scroll in it
_MARK = {ACCEPT: "✓ accepted", CORRECT: "✎ corrected", REJECT: "✗ rejected"}
_MARK_FG = {ACCEPT: QColor("#2e7d32"), CORRECT: QColor("#a15c00"), REJECT: QColor("#c62828")}
_FLAG_BG = QColor("#ffe3a3")
_FLAG_FG = QColor("#1a1a1a")


def _estimate_table() -> QTableWidget:
    """The per-term estimate, ESTIMATE_ROWS_SHOWN rows high: more terms scroll."""
    table = QTableWidget(0, len(ESTIMATE_COLUMNS))
    table.setHorizontalHeaderLabels(list(ESTIMATE_COLUMNS))
    table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.verticalHeader().hide()
    head = table.horizontalHeader()
    head.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    head.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    line = table.fontMetrics().height() + 8  # one line a row (the style's default is taller)
    table.verticalHeader().setDefaultSectionSize(line)
    table.verticalHeader().setMinimumSectionSize(line)
    rows = line * ESTIMATE_ROWS_SHOWN
    table.setFixedHeight(head.sizeHint().height() + rows + 2 * table.frameWidth())
    table.setVisible(False)
    return table


def _item(text: str) -> QTableWidgetItem:
    it = QTableWidgetItem(text)  # plain text: values come from a model reply
    it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    return it


class ReviewWindow(QWidget):
    """A top-level window over one ReviewSession; closing it releases the run's log."""

    verdict_recorded = Signal(object)
    """A Verdict, after it was appended to the log."""

    def __init__(self, session: ReviewSession, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.session = session
        self.setWindowTitle(f"Review — {session.run_id}")
        self.index = session.first_unreviewed()
        self.term_row = 0
        self.whole_sheet = False
        self.turn = 0  # degrees clockwise the shown sheet is turned
        self._sheet: QImage | None = None

        self.header = plain_label()
        bold = QFont(self.header.font())
        bold.setBold(True)
        self.header.setFont(bold)
        self.banner = plain_label(wrap=True)
        self.banner.setStyleSheet("color: #c62828;")
        self.banner.setVisible(bool(session.read_only_reason))
        self.banner.setText(
            f"Read only — {session.read_only_reason}" if session.read_only_reason else ""
        )

        self.image_view = ImageView()
        self.image_view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.placeholder = plain_label(wrap=True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image_stack = QStackedWidget()
        self.image_stack.addWidget(self.image_view)
        self.image_stack.addWidget(self.placeholder)
        self.region_label = plain_label()

        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Term", "Extracted", "Verdict", "Reviewed value"])
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideNone)
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        head.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("C: type the right value, Enter to record, Esc to cancel")
        self.edit.setEnabled(False)
        self.edit.returnPressed.connect(self.commit_correction)
        self.keys_label = plain_label(KEYS_HELP, wrap=True)
        self.status = plain_label(wrap=True)
        # the estimate: a line, then a table a few rows high (one line per term took a third
        # of the window's height from the sheet at 1280x720); beside the terms, not under
        # the sheet, so the sheet keeps the whole height
        self.estimate_label = plain_label(wrap=True)
        self.estimate_table = _estimate_table()
        self.close_btn = QPushButton("Close (Esc)")
        self.close_btn.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the keys stay the window's
        self.close_btn.setToolTip("Close the review; every verdict is already in the log")
        self.close_btn.clicked.connect(self.close)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.image_stack, 1)
        lv.addWidget(self.region_label)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.table, 1)
        rv.addWidget(self.edit)
        rv.addWidget(self.keys_label)
        rv.addWidget(self.status)
        rv.addWidget(self.estimate_label)
        rv.addWidget(self.estimate_table)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        right.setMinimumWidth(560)  # the longest values (names with authors) on one line
        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(self.close_btn)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(split, 1)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.resize(1200, 800)
        self.show_record(self.index)
        self.refresh_estimate()

    # --- what is shown ----------------------------------------------------------------

    def record(self) -> ReviewRecord | None:
        recs = self.session.records
        return recs[self.index] if 0 <= self.index < len(recs) else None

    def term(self) -> str | None:
        rec = self.record()
        terms = rec.terms() if rec is not None else []
        return terms[self.term_row] if 0 <= self.term_row < len(terms) else None

    def show_record(self, index: int) -> None:
        self.cancel_correction()
        self.status.setText("")  # what was recorded on the record left: not this one's
        recs = self.session.records
        if not recs:
            self.header.setText("Nothing to review: the run has no successful record yet.")
            self.table.setRowCount(0)
            self._show_placeholder("No record.")
            return
        self.index = max(0, min(index, len(recs) - 1))
        rec = recs[self.index]
        kind = "random audit sample" if rec.sample == SAMPLE_RANDOM else "risk queue"
        risk = f" · risk {rec.risk:.1f}" if rec.risk else ""
        conf = f" · confidence {rec.confidence:.2f}" if rec.confidence is not None else ""
        self.header.setText(
            f"Record {self.index + 1} of {len(recs)} · {kind}{risk}{conf} · {rec.image}"
        )
        self._load_sheet(rec.image_path)
        self.table.setRowCount(len(rec.terms()))
        for row in range(len(rec.terms())):
            self._fill_row(rec, row)
        terms = rec.terms()
        first_open = next(
            (i for i, t in enumerate(terms) if self.session.verdict(rec, t) is None), 0
        )
        self.select_term(first_open)

    def _fill_row(self, rec: ReviewRecord, row: int) -> None:
        term = rec.terms()[row]
        name = _item(term)
        flags = rec.flagged(term)
        if flags:
            name.setBackground(QBrush(_FLAG_BG))
            name.setForeground(QBrush(_FLAG_FG))
            name.setToolTip("flagged: " + ", ".join(flags))
            name.setText(f"{term} ⚑")
        self.table.setItem(row, 0, name)
        self.table.setItem(row, 1, _item(rec.values.get(term, "")))
        v = self.session.verdict(rec, term)
        mark = _item(_MARK[v.verdict] if v is not None else "")
        if v is not None:
            mark.setForeground(QBrush(_MARK_FG[v.verdict]))
        self.table.setItem(row, 2, mark)
        shown = "" if v is None or v.verdict == ACCEPT else (v.value or "(emptied)")
        self.table.setItem(row, 3, _item(shown))

    def select_term(self, row: int) -> None:
        rec = self.record()
        if rec is None:
            return
        self.term_row = max(0, min(row, len(rec.terms()) - 1))
        self.table.selectRow(self.term_row)
        item = self.table.item(self.term_row, 0)
        if item is not None:
            self.table.scrollToItem(item)

    def _load_sheet(self, path: str) -> None:
        image, why = load_image(path)
        self._sheet = image
        if image is None:
            self._show_placeholder(why)
            return
        self.turn = 90 if image.width() > image.height() else 0  # upright
        self._show_sheet()

    def _show_sheet(self) -> None:
        if self._sheet is None:
            return
        image = self._sheet
        if self.turn:
            image = image.transformed(QTransform().rotate(self.turn))
        self.image_stack.setCurrentWidget(self.image_view)
        self.image_view.set_image(image)
        self._apply_region()

    def turn_sheet(self) -> None:
        self.turn = (self.turn + 90) % 360
        self._show_sheet()

    def _apply_region(self) -> None:
        self.image_view.set_region(None if self.whole_sheet else LABEL_REGION)
        self.region_label.setText(
            "Whole sheet (F: the label region)"
            if self.whole_sheet
            else "Label region: the lower right quarter of the upright sheet (F: whole sheet, "
            "O: turn)"
        )

    def _show_placeholder(self, text: str) -> None:
        self.image_view.clear_image()
        self.placeholder.setText(text)
        self.image_stack.setCurrentWidget(self.placeholder)
        self.region_label.setText("")

    def refresh_estimate(self) -> None:
        s = self.session
        head = (
            f"Random audit sample: {s.sample_reviewed()} of {len(s.drawn)} record(s) reviewed "
            f"· {s.population:,} record(s) in the run · estimate from the random sample only"
        )
        estimates = s.estimate()
        if not estimates:
            head += "\nNo verdict on the random sample yet: no estimate."
        self.estimate_label.setText(head)
        table = self.estimate_table
        table.setRowCount(len(estimates))
        for row, e in enumerate(estimates):
            for col, text in enumerate(e.cells()):
                item = _item(text)
                item.setToolTip(f"{e.text()}; {e.wrong_text()}")
                if col:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                table.setItem(row, col, item)
        table.setVisible(bool(estimates))

    def estimate_text(self) -> str:
        """The estimate as shown: its line, then a line of cells per term (tests)."""
        rows = [
            " | ".join(self._cell_text(row, col) for col in range(len(ESTIMATE_COLUMNS)))
            for row in range(self.estimate_table.rowCount())
        ]
        return "\n".join([self.estimate_label.text(), *rows])

    def _cell_text(self, row: int, col: int) -> str:
        item = self.estimate_table.item(row, col)
        return item.text() if item is not None else ""

    # --- verdicts ---------------------------------------------------------------------

    def _record(self, verdict: str, value: str = "") -> Verdict | None:
        rec, term = self.record(), self.term()
        if rec is None or term is None:
            return None
        try:
            v = self.session.record_verdict(rec, term, verdict, value)
        except (ReviewRefused, OSError) as exc:
            self.status.setText(f"Not recorded: {exc}")
            self.status.setStyleSheet("color: #c62828;")
            return None
        self.status.setText(f"Recorded: {term} {_MARK[v.verdict]}")
        self.status.setStyleSheet("")
        self._fill_row(rec, self.term_row)
        self.refresh_estimate()
        self.verdict_recorded.emit(v)
        self.select_term(self.term_row + 1)
        return v

    def accept_term(self) -> Verdict | None:
        return self._record(ACCEPT)

    def reject_term(self) -> Verdict | None:
        return self._record(REJECT)

    def start_correction(self) -> None:
        rec, term = self.record(), self.term()
        if rec is None or term is None:
            return
        self.edit.setEnabled(True)
        self.edit.setText(rec.values.get(term, ""))
        self.edit.selectAll()
        self.edit.setFocus()

    def commit_correction(self) -> Verdict | None:
        if not self.edit.isEnabled():
            return None
        value = self.edit.text()
        self.cancel_correction()
        return self._record(CORRECT, value)

    def cancel_correction(self) -> None:
        self.edit.clear()
        self.edit.setEnabled(False)
        self.setFocus()

    def next_record(self) -> None:
        self.show_record(self.index + 1)

    def previous_record(self) -> None:
        self.show_record(self.index - 1)

    def toggle_sheet(self) -> None:
        self.whole_sheet = not self.whole_sheet
        if self.image_view.has_image():
            self._apply_region()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self.edit.isEnabled():
            if event.key() == Qt.Key.Key_Escape:
                self.cancel_correction()
                return
            super().keyPressEvent(event)
            return
        # Esc (a correction under way took the first one), or the platform's Close (Ctrl+W)
        if event.key() == Qt.Key.Key_Escape or event.matches(QKeySequence.StandardKey.Close):
            self.close()
            event.accept()
            return
        if event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            super().keyPressEvent(event)  # Ctrl/Alt combinations are the menus'
            return
        actions: dict[int, Any] = {
            Qt.Key.Key_A: self.accept_term,
            Qt.Key.Key_C: self.start_correction,
            Qt.Key.Key_R: self.reject_term,
            Qt.Key.Key_N: self.next_record,
            Qt.Key.Key_Right: self.next_record,
            Qt.Key.Key_P: self.previous_record,
            Qt.Key.Key_Left: self.previous_record,
            Qt.Key.Key_F: self.toggle_sheet,
            Qt.Key.Key_O: self.turn_sheet,
            Qt.Key.Key_Down: lambda: self.select_term(self.term_row + 1),
            Qt.Key.Key_Up: lambda: self.select_term(self.term_row - 1),
        }
        action = actions.get(event.key())
        if action is None:
            super().keyPressEvent(event)
            return
        action()
        event.accept()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.session.close()  # lets a resume or another review take the run's log
        super().closeEvent(event)


PREPARING = "Preparing the review queue…"


class ReviewLoader(QThread):
    """ReviewSession.load off the GUI thread: the queue is built from the run's raw.jsonl and
    its log's verdicts (on the GUI thread that froze the window 23 s at 200,000 records). The
    window opens when the session is ready (`open_review`); one nobody waits for any more is
    closed, so it lets go of the run's log."""

    done = Signal(str)
    """An error text, or "" once `take()` has the session (emitted from the thread)."""

    def __init__(
        self,
        source: Path,
        open_appender: Callable[[Path], ReviewAppender],
        win: Any,
    ) -> None:
        super().__init__(win)
        self.source = source
        self._open_appender = open_appender
        self._win = win
        self._session: ReviewSession | None = None
        # a slot of this object, which lives on the GUI thread: `done` is queued there
        self.done.connect(self._ready)

    def run(self) -> None:
        error = ""
        try:
            self._session = ReviewSession.load(self.source, open_appender=self._open_appender)
        except ExportError as exc:
            error = f"Cannot review: {exc}"
        except OSError as exc:
            error = f"Cannot review: cannot read {self.source}: {exc}"
        self.done.emit(error)

    def take(self) -> ReviewSession | None:
        """The session, once (after `done`); the caller then owns it and closes it."""
        session, self._session = self._session, None
        return session

    def discard(self) -> None:
        """Wait for the thread, close what it prepared (it may hold the run's log)."""
        self.wait()
        session = self.take()
        if session is not None:
            session.close()

    def _ready(self, error: str) -> None:
        win = self._win
        self.wait()  # it has emitted its last signal: ends at once
        self.deleteLater()
        if win.review_loader is not self:  # the window shut meanwhile (or this is stale)
            self.discard()
            return
        win.review_loader = None
        session = self.take()
        if session is None:
            win.statusBar().showMessage(error, 15000)
            return
        review = ReviewWindow(session, win)
        review.resize(win.size())
        win.review_window = review
        win.statusBar().showMessage(f"Review: {len(session.records)} record(s) queued", 5000)
        review.show()
        review.activateWindow()
        review.setFocus()


def open_review(win: Any) -> bool:
    """Open the review of what the main window shows: the opened log, or the live run (its
    verdicts then go through the run's own bus). One review at a time: a new one closes the
    previous (which lets go of its log first).

    The queue is prepared on a thread (ReviewLoader), the status bar saying so; the review
    window shows when it is ready. False if none is prepared (nothing to review, or one is
    being prepared already: two would contend for the run's log)."""
    from herbdesk.extraction.reviewlog import BusAppender, LogAppender

    source = win.export_source()
    if source is None:
        win.statusBar().showMessage("Nothing to review: start a run or open a log first.")
        return False
    if win.review_loader is not None:
        win.statusBar().showMessage(f"{PREPARING} (already under way)")
        return False
    if win.review_window is not None:
        win.review_window.close()
        win.review_window = None
    worker = win.worker
    run_dir = win.document.run_dir
    live = worker is not None and worker.isRunning() and worker.run_dir == run_dir
    open_appender: Callable[[Path], ReviewAppender] = (
        (lambda _d: BusAppender(worker.pipeline)) if live else LogAppender.open
    )
    loader = ReviewLoader(Path(source), open_appender, win)
    win.review_loader = loader
    win.statusBar().showMessage(PREPARING)
    loader.start()
    return True


def close_review(win: Any) -> None:
    """Close the review window, and a review still being prepared: both let go of the log."""
    if win.review_window is not None:
        win.review_window.close()
        win.review_window = None
    loader, win.review_loader = win.review_loader, None
    if loader is not None:
        loader.discard()
