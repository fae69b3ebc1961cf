"""One specimen in full: the sheet (zoom, pan), its Darwin Core fields and the raw reply.

Every string here comes from a log, a file name or a model reply, so every label is forced to
plain text and the fields sit in a model: `<img src=...>` in a reply must show as those characters.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEventLoop,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRectF,
    QRunnable,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QImage,
    QImageReader,
    QPainter,
    QPixmap,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from herbdesk.common.dwc import DWC_TERMS
from herbdesk.extraction.rawindex import RawIndex
from herbdesk.runstate.state import RunState
from herbdesk.ui.columns import STATUS_COLORS, plain_tooltip

Index = QModelIndex | QPersistentModelIndex

MAX_DISPLAY_SIDE = 3000  # a 10k-px scan decoded at full size costs hundreds of MB for nothing
LOW_CONFIDENCE = 0.5
ZOOM_STEP = 1.25
LOADING_TEXT = "Loading image…"
DECODE_THREADS = 2  # one stale decode may still run while the wanted one starts
_LOW_BG = QColor("#ffc94d")  # amber with dark text: readable in light and dark themes
_LOW_FG = QColor("#1a1a1a")
_BAD_FG = QColor("#c62828")  # a finding that makes the term invalid
_WARN_FG = QColor("#a15c00")  # a placeholder or a warning


def plain_label(text: str = "", *, wrap: bool = False, selectable: bool = True) -> QLabel:
    """A QLabel that never interprets its text as HTML."""
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(wrap)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setText(text)
    return label


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def ordered_fields(dwc: Any) -> list[tuple[str, Any, float | None]]:
    """(term, value, confidence) in DWC_TERMS order; unknown keys after, so nothing is hidden."""
    if not isinstance(dwc, dict):
        return []
    known = [t for t in DWC_TERMS if t in dwc]
    extra = sorted(k for k in dwc if k not in set(DWC_TERMS))
    out: list[tuple[str, Any, float | None]] = []
    for term in known + extra:
        cell = dwc[term]
        if isinstance(cell, dict):
            value, conf = cell.get("value"), cell.get("confidence")
        else:  # a bare value, as some older records hold
            value, conf = cell, None
        try:
            confidence = float(conf) if conf is not None else None
        except (TypeError, ValueError):
            confidence = None
        out.append((str(term), value, confidence))
    return out


class DwcFieldsModel(QAbstractTableModel):
    """Term, value, confidence; low-confidence rows get an amber background and a "low" marker."""

    HEADERS = ("term", "value", "confidence", "")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, Any, float | None]] = []
        self._findings: dict[str, list[tuple[str, str, str]]] = {}  # term -> (check, sev, text)
        self.usable: bool | None = None

    def set_fields(self, rows: list[tuple[str, Any, float | None]]) -> None:
        from herbdesk.quality.checks import CHECKS, judge_record

        self.beginResetModel()
        self._rows = list(rows)
        self._findings = {}
        self.usable = None
        if rows:  # the record checks, as the run judged it (docs/quality.md)
            q = judge_record({t: v for t, v, _ in rows})
            self.usable = q.usable
            for f in q.findings:
                if f.check == "required_missing":  # of the record: said on the meta line
                    continue
                c = CHECKS[f.check]
                text = c.message + (f" ({f.detail})" if f.detail else "")
                self._findings.setdefault(f.term, []).append((f.check, c.severity, text))
        self.endResetModel()

    def findings(self, term: str) -> list[tuple[str, str, str]]:
        return self._findings.get(term, [])

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 4

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section] if 0 <= section < 4 else None
        return None

    def data(self, index: Index, role: int = 0) -> Any:
        if not index.isValid():
            return None
        term, value, conf = self._rows[index.row()]
        col = index.column()
        low = conf is not None and conf < LOW_CONFIDENCE
        found = self._findings.get(term, [])
        if col == 3:
            # a narrow mark, so the value keeps the pane's width; the checks in the tooltip
            bad = any(s == "error" for _, s, _ in found)
            if role == Qt.ItemDataRole.DisplayRole:
                return ("✗" if bad else "!") if found else "✓"
            if role == Qt.ItemDataRole.UserRole:
                return ", ".join(check for check, _, _ in found) or "ok"
            if role == Qt.ItemDataRole.ToolTipRole and found:
                return plain_tooltip("\n".join(f"{c}: {t}" for c, _, t in found))
            if role == Qt.ItemDataRole.ForegroundRole and found:
                return _BAD_FG if bad else _WARN_FG
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return term
            if col == 1:
                return " ⏎ ".join(_value_text(value).splitlines())
            return "" if conf is None else f"{conf:.2f} low" if low else f"{conf:.2f}"
        if role == Qt.ItemDataRole.ToolTipRole and col == 1:
            return plain_tooltip(_value_text(value))
        if role == Qt.ItemDataRole.BackgroundRole and low:
            return _LOW_BG
        if role == Qt.ItemDataRole.ForegroundRole and low:
            return _LOW_FG
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 2:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None


class ImageView(QGraphicsView):
    """A pixmap with wheel zoom and drag pan; stays fitted to the window until the user zooms."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scene = QGraphicsScene(self)
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._scene.addItem(self._item)
        self.setScene(self._scene)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self._fitted = True
        self._region: tuple[float, float, float, float] | None = None  # fractions of the sheet

    def set_image(self, image: QImage) -> None:
        self._item.setPixmap(QPixmap.fromImage(image))
        self._scene.setSceneRect(self._item.boundingRect())
        self.fit()

    def set_region(self, region: tuple[float, float, float, float] | None) -> None:
        """Fit to a part of the sheet, (x0, y0, x1, y1) as fractions of its size (None: the
        whole sheet); kept on resize until the user zooms."""
        self._region = region
        self.fit()

    def clear_image(self) -> None:
        self._item.setPixmap(QPixmap())

    def has_image(self) -> bool:
        return not self._item.pixmap().isNull()

    def zoom(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float) -> None:
        new = self.zoom() * factor
        if not self.has_image() or not 0.02 <= new <= 16.0:
            return
        self._fitted = False
        self.scale(factor, factor)

    def fit(self) -> None:
        self._fitted = True
        if not self.has_image():
            return
        if self._region is None:
            self.fitInView(self._item, Qt.AspectRatioMode.KeepAspectRatio)
            return
        r = self._item.boundingRect()
        x0, y0, x1, y1 = self._region
        part = QRectF(r.x() + x0 * r.width(), r.y() + y0 * r.height(),
                      (x1 - x0) * r.width(), (y1 - y0) * r.height())  # fmt: skip
        self.fitInView(part, Qt.AspectRatioMode.KeepAspectRatio)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(ZOOM_STEP**steps)
        event.accept()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()


def image_problem(path: str) -> str:
    """Why there is nothing to decode at `path` (no path, no file), or "" if there may be.

    Cheap (one stat), so the GUI thread answers these at once without a "Loading" flash.
    """
    if not path:
        return "No image path is recorded for this specimen."
    if not Path(path).is_file():
        return f"Image not found:\n{path}"
    return ""


def load_image(path: str) -> tuple[QImage | None, str]:
    """The image scaled to MAX_DISPLAY_SIDE (EXIF orientation applied), or None and why not.

    Safe off the GUI thread (QImage, not QPixmap): SpecimenDetail runs it in a thread pool.
    """
    why = image_problem(path)
    if why:
        return None, why
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > MAX_DISPLAY_SIDE:
        # scale while decoding (JPEG decodes at reduced size), never after a full decode
        reader.setScaledSize(
            size.scaled(MAX_DISPLAY_SIDE, MAX_DISPLAY_SIDE, Qt.AspectRatioMode.KeepAspectRatio)
        )
    image = reader.read()
    if image.isNull():
        return None, f"Cannot read image:\n{path}\n{reader.errorString()}"
    return image, ""


# ---------------------------------------------------------------------- background decoding
# A 6000-px sheet takes 50-300 ms to decode: done on the GUI thread it froze the window each
# time the detail pane followed a new result. Jobs run in a small private pool and report
# through one long-lived emitter that belongs to no widget, so a job that finishes after its
# SpecimenDetail is gone holds no reference to it and emits into nothing (Qt drops the
# connection with the receiver). Every request gets a fresh token; a widget takes only the
# result carrying its current token, and a job whose token was withdrawn before it started
# (the user moved on, clear()) skips the decode altogether.


class _DecodeSignals(QObject):
    """Lives on the GUI thread; emitted from pool threads, so delivery is queued."""

    decoded = Signal(int, str, QImage, str)  # token, path, image (null on failure), why not


_tokens = itertools.count(1)
_wanted: set[int] = set()  # tokens some widget still waits for
_wanted_lock = threading.Lock()
_signals: _DecodeSignals | None = None
_pool: QThreadPool | None = None


def _decoder() -> tuple[_DecodeSignals, QThreadPool]:
    """The shared emitter and pool, made on first use (on the GUI thread, by a widget)."""
    global _signals, _pool
    if _signals is None or _pool is None:
        _signals = _DecodeSignals()
        _pool = QThreadPool()
        _pool.setMaxThreadCount(DECODE_THREADS)
    return _signals, _pool


def _want(token: int) -> None:
    with _wanted_lock:
        _wanted.add(token)


def _unwant(token: int) -> bool:
    """Withdraw a token; True if it was still wanted."""
    with _wanted_lock:
        if token in _wanted:
            _wanted.discard(token)
            return True
        return False


def _still_wanted(token: int) -> bool:
    with _wanted_lock:
        return token in _wanted


def wait_for_decodes(timeout_ms: int = 5000) -> bool:
    """Wait for running image decodes to end (shutdown); True if none is left."""
    return True if _pool is None else bool(_pool.waitForDone(timeout_ms))


class _DecodeJob(QRunnable):
    """Decode one sheet off the GUI thread. Holds the emitter, a path and a token: no widget."""

    def __init__(self, signals: _DecodeSignals, token: int, path: str) -> None:
        super().__init__()
        self._signals = signals
        self._token = token
        self._path = path

    def run(self) -> None:
        if not _still_wanted(self._token):
            return  # withdrawn while queued: nobody will look at it
        try:
            image, why = load_image(self._path)
        except Exception as exc:  # a pool thread must not die without telling the pane why
            image, why = None, f"Cannot read image:\n{self._path}\n{exc}"
        with contextlib.suppress(RuntimeError):  # the emitter is gone: the app is exiting
            self._signals.decoded.emit(
                self._token, self._path, image if image is not None else QImage(), why
            )
        _unwant(self._token)  # delivered (or its pane is gone): nothing waits on it here


class SpecimenDetail(QWidget):
    """The sheet on the left; header, Darwin Core fields and raw text on the right.

    The sheet is decoded in a background thread: show_specimen() returns at once with
    "Loading image…" in the pane, and `image_loaded` fires when the pane has settled.
    """

    image_loaded = Signal(bool)  # the pane settled after a request: True if a sheet is shown

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._record: dict[str, Any] | None = None
        self._image_path: str | None = None  # the sheet shown, or being decoded
        self._token = 0  # the decode this pane waits for; 0 when none
        signals, self._pool = _decoder()
        self._signals = signals
        signals.decoded.connect(self._on_decoded)

        # left: image with zoom controls, or a plain-text placeholder
        self.image_view = ImageView()
        self.placeholder = plain_label(wrap=True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image_stack = QStackedWidget()
        self.image_stack.addWidget(self.placeholder)
        self.image_stack.addWidget(self.image_view)
        zoom_bar = QHBoxLayout()
        for text, tip, slot in (
            ("−", "Zoom out", lambda: self.image_view.zoom_by(1 / ZOOM_STEP)),
            ("+", "Zoom in", lambda: self.image_view.zoom_by(ZOOM_STEP)),
            ("Fit", "Fit the sheet to the view", self.image_view.fit),
        ):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            zoom_bar.addWidget(button)
        zoom_bar.addStretch(1)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(zoom_bar)
        left_layout.addWidget(self.image_stack, 1)

        # right: header, fields, raw text, copy buttons
        self.title_label = plain_label()
        title_font = QFont(self.title_label.font())
        title_font.setBold(True)
        title_font.setPointSizeF(title_font.pointSizeF() * 1.15)
        self.title_label.setFont(title_font)
        self.meta_label = plain_label(wrap=True)
        self.title_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.error_label = plain_label(wrap=True)
        pal = self.error_label.palette()
        pal.setColor(self.error_label.foregroundRole(), STATUS_COLORS["failed"])
        self.error_label.setPalette(pal)

        self.fields_model = DwcFieldsModel(self)
        self.fields_table = QTableView()
        self.fields_table.setModel(self.fields_model)
        self.fields_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # values wrap and rows grow to hold them: a locality or a habitat is read whole, not
        # as "Swift Current R…" (a record has at most 34 rows, so sizing them is cheap)
        self.fields_table.setWordWrap(True)
        self.fields_table.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.fields_table.verticalHeader().hide()
        self.fields_table.verticalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.fields_table.verticalHeader().setMinimumSectionSize(20)
        hh = self.fields_table.horizontalHeader()
        # the term column never takes more than a third: in a narrow pane (the setup dock
        # open on a laptop screen) sized to its contents it left every value as "..."
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.fields_model.modelReset.connect(self._fit_term_column)

        self.raw_text = QPlainTextEdit()
        self.raw_text.setReadOnly(True)
        self.raw_text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.raw_text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)

        # tool buttons: the tab bar's corner is narrow in a laptop-size pane
        # one "Copy" in the corner at a time, for the tab shown
        self.copy_fields_button = QToolButton()
        self.copy_fields_button.setText("Copy")
        self.copy_fields_button.setToolTip("Copy the Darwin Core fields as JSON")
        self.copy_fields_button.clicked.connect(self.copy_fields)
        self.copy_raw_button = QToolButton()
        self.copy_raw_button.setText("Copy")
        self.copy_raw_button.setToolTip("Copy the raw model reply or OCR text")
        self.copy_raw_button.clicked.connect(self.copy_raw)
        corner = QWidget()
        buttons = QHBoxLayout(corner)
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.copy_fields_button)
        buttons.addWidget(self.copy_raw_button)

        # fields and raw text as tabs, the copy buttons in the tab bar's corner: on a laptop
        # screen the pane is ~200 px high, and stacked with captions and a button row the
        # fields table showed one term
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.fields_table, "Fields")
        self.tabs.addTab(self.raw_text, "Raw text")
        self.tabs.setTabToolTip(0, "The Darwin Core fields of the record")
        self.tabs.setTabToolTip(1, "The raw model reply or OCR text")
        self.tabs.setCornerWidget(corner, Qt.Corner.TopRightCorner)
        self.tabs.currentChanged.connect(self._tab_changed)
        self._tab_changed(0)
        self.fields_table.setMinimumHeight(52)
        self.raw_text.setMinimumHeight(40)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.setSpacing(2)
        for w in (self.title_label, self.meta_label, self.error_label):
            right_layout.addWidget(w)
        right_layout.addWidget(self.tabs, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        # a portrait sheet in a pane of laptop height needs little width; the fields beside
        # it need room for their values (2:3)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([400, 600])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self.clear()

    def _tab_changed(self, index: int) -> None:
        self.copy_fields_button.setVisible(index == 0)
        self.copy_raw_button.setVisible(index == 1)

    def _fit_term_column(self) -> None:
        table = self.fields_table
        cap = max(60, table.viewport().width() // 3)
        table.setColumnWidth(0, min(table.sizeHintForColumn(0), cap))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit_term_column()

    # ------------------------------------------------------------------ public
    @property
    def record(self) -> dict[str, Any] | None:
        """The raw.jsonl record shown, if any."""
        return self._record

    def clear(self) -> None:
        """Show nothing (no specimen selected, or a new source was opened)."""
        self._record = None
        self._cancel_decode()
        self._image_path = None
        self.image_view.clear_image()
        self._show_placeholder("Select a specimen to see its sheet and fields.")
        self.title_label.setText("No specimen selected")
        for label in (self.meta_label, self.error_label):
            label.setText("")
        self.error_label.hide()
        self.fields_model.set_fields([])
        self.raw_text.setPlainText("")
        self.raw_text.setPlaceholderText("")
        self._update_buttons()

    def show_specimen(
        self,
        state: RunState,
        row: int,
        raw_index: RawIndex | None,
        located: Mapping[str, str] | None = None,
    ) -> None:
        """Show a specimen by RunState row; cheap to call again when the row changes.
        `located`: sheets found again by File → Locate images…, by specimen id."""
        if not 0 <= row < state.rows:
            self.clear()
            return
        sid, image = state.specimen_id[row], state.image[row]
        record: dict[str, Any] | None = None
        if raw_index is not None:
            try:
                record = raw_index.get(sid, image or None)
            except OSError:
                record = None
        self._record = record
        rec = record or {}

        self.title_label.setText(image or str(rec.get("image") or "") or sid[:12])
        self.title_label.setToolTip(f"specimen {sid}")  # the id, a hover away
        self.meta_label.setText(self._meta_line(state, row, rec))
        error = _error_text(rec.get("error")) or state.error[row]
        self.error_label.setText(error)
        self.error_label.setVisible(bool(error))

        self.fields_model.set_fields(ordered_fields(rec.get("dwc")))
        raw = rec.get("raw_text")
        self.raw_text.setPlainText(raw if isinstance(raw, str) else _value_text(raw))
        self.raw_text.setPlaceholderText(
            "No raw text recorded." if record else "No result in raw.jsonl for this specimen."
        )
        found = (located or {}).get(sid)
        self._load_image(found or state.path[row] or str(rec.get("image_path") or ""))
        self._update_buttons()

    def image_pending(self) -> bool:
        """True while the shown specimen's sheet is being decoded."""
        return self._token != 0

    def wait_for_image(self, timeout_ms: int = 10000) -> bool:
        """Run the event loop until the pending sheet is shown (screenshots, tests).

        Returns True if nothing is pending any more; False on timeout.
        """
        if not self._token:
            return True
        loop = QEventLoop()
        self.image_loaded.connect(loop.quit)
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(loop.quit)
        timer.start(max(0, timeout_ms))
        try:
            if self._token:  # not settled between the check and the connect
                loop.exec()
        finally:
            timer.stop()
            self.image_loaded.disconnect(loop.quit)
        return not self._token

    def fields_json(self) -> str:
        """The shown fields as {term: {value, confidence}} JSON, in Darwin Core order."""
        rows = ordered_fields((self._record or {}).get("dwc"))
        out = {t: {"value": v, "confidence": c} for t, v, c in rows}
        return json.dumps(out, ensure_ascii=False, indent=2)

    def copy_fields(self) -> None:
        QGuiApplication.clipboard().setText(self.fields_json())

    def copy_raw(self) -> None:
        QGuiApplication.clipboard().setText(self.raw_text.toPlainText())

    # ------------------------------------------------------------------ internals
    def _meta_line(self, state: RunState, row: int, rec: dict[str, Any]) -> str:
        parts = [state.status_text(row)]
        engine = " / ".join(str(x) for x in (rec.get("engine"), rec.get("model")) if x)
        if engine:
            parts.append(engine)
        attempts = rec.get("attempts") or state.attempts[row]
        if attempts:
            parts.append(f"{attempts} attempt{'s' if attempts != 1 else ''}")
        ms = rec.get("processing_time_ms", state.time_ms[row])
        if isinstance(ms, int | float):
            parts.append(f"{ms / 1000.0:.1f} s")
        cost = rec.get("cost_usd", state.cost_usd[row])
        if isinstance(cost, int | float):
            parts.append(f"${cost:.4f}")
        usable = state.quality.row_usable(row)
        if usable is not None:
            parts.append("usable record" if usable else "NOT usable (✗/! beside a term: hover)")
        return " · ".join(parts)

    def _load_image(self, path: str) -> None:
        if path == self._image_path and (self._token or self.image_view.has_image()):
            return  # a live refresh of the same specimen: keep zoom and pan, or the decode
        self._cancel_decode()
        self._image_path = path
        self.image_view.clear_image()  # never the previous specimen's sheet under this one
        why = image_problem(path)
        if why:
            self._show_placeholder(why)
            self.image_loaded.emit(False)
            return
        self._show_placeholder(LOADING_TEXT)
        self._token = next(_tokens)
        _want(self._token)
        self._pool.start(_DecodeJob(self._signals, self._token, path))

    def _cancel_decode(self) -> None:
        """Forget the pending decode: a queued job skips it, a late result is ignored."""
        if self._token:
            _unwant(self._token)
            self._token = 0

    def _on_decoded(self, token: int, path: str, image: QImage, why: str) -> None:
        if not token or token != self._token:
            return  # another pane's, or stale: the user (or follow-latest) moved on
        _unwant(token)
        self._token = 0
        if image.isNull():
            self.image_view.clear_image()
            self._show_placeholder(why or f"Cannot read image:\n{path}")
            self.image_loaded.emit(False)
            return
        self.image_stack.setCurrentWidget(self.image_view)
        self.image_view.set_image(image)
        self.image_loaded.emit(True)

    def _show_placeholder(self, text: str) -> None:
        self.placeholder.setText(text)
        self.image_stack.setCurrentWidget(self.placeholder)

    def _update_buttons(self) -> None:
        self.copy_fields_button.setEnabled(self.fields_model.rowCount() > 0)
        self.copy_raw_button.setEnabled(bool(self.raw_text.toPlainText()))


def _error_text(err: Any) -> str:
    if isinstance(err, dict):
        kind, msg = err.get("kind"), err.get("message")
        return f"{kind}: {msg}" if kind else str(msg or "")
    return str(err or "")
