"""Run setup: inputs, engine, key, thresholds, output; Start/Pause/Stop/Resume buttons.

The form holds the app's own settings, for the next run started here. An opened or tailed
run is shown with the configuration it was started with instead (read-only, from its log):
the app's settings are not what that run used, and must not read as if they were.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from herbdesk.common.apikeys import DEFAULT_KEY_ENV, get_api_key, store_api_key
from herbdesk.common.assets import default_prompt_path, sample_specimens_dir
from herbdesk.extraction.budget import no_cost_note
from herbdesk.extraction.config import API_CONCURRENCY, DEFAULT_OUT_DIR, OCR_CONCURRENCY, RunConfig
from herbdesk.extraction.engines import EngineSettings
from herbdesk.extraction.engines.base import DEFAULT_BASE_URL
from herbdesk.extraction.engines.openrouter import DEFAULT_MODEL
from herbdesk.monitor.validation import ValidationConfig
from herbdesk.ui.elided import ElidedLabel

ENGINE_LABELS = {
    "ocr": "Offline OCR (RapidOCR)",
    "openrouter": "Vision LLM (OpenRouter / OpenAI-compatible)",
}
MAX_VALUE_CHARS = 400  # a config comes from a log file: a huge value must not blow up the panel
NOT_RECORDED = "—"
MAX_OTHER_ROWS = 40  # settings this version does not know: a log may hold any number
PAGE_MARGINS = (9, 9, 6, 6)  # a page of the panel; its right edge is beside the scroll bar


def _path_row(edit: QLineEdit, pick) -> QWidget:
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit, 1)
    b = QToolButton()
    b.setText("…")
    b.setToolTip("Choose a folder")
    b.clicked.connect(pick)
    lay.addWidget(b)
    return w


class _FormScroll(QScrollArea):
    """Scrolls the form up and down only: never narrower than the form, so nothing of it is
    cut at the right and no sideways scroll bar is needed."""

    def minimumSizeHint(self) -> QSize:
        inner = self.widget()
        hint = super().minimumSizeHint()
        if inner is None:
            return hint
        bar = self.verticalScrollBar().sizeHint().width()
        return QSize(inner.minimumSizeHint().width() + bar, hint.height())

    def sizeHint(self) -> QSize:
        inner = self.widget()
        if inner is None:
            return super().sizeHint()
        bar = self.verticalScrollBar().sizeHint().width()
        return inner.sizeHint() + QSize(bar, 0)


class RunSetupPanel(QWidget):
    """Builds a RunConfig from the form; the window owns starting and stopping."""

    start_requested = Signal()
    """The user pressed Start."""
    pause_toggled = Signal(bool)
    """Pause (True) or resume (False) was pressed."""
    stop_requested = Signal()
    """The user pressed Stop (graceful)."""
    resume_run_requested = Signal(str)
    """The user chose a previous run directory to continue."""

    mode_changed = Signal(bool)
    """True: an opened run's configuration is shown; False: the app's editable settings."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.pages = QStackedWidget()
        settings_page = QWidget()
        form_lay = QVBoxLayout(settings_page)
        form_lay.setContentsMargins(*PAGE_MARGINS)
        self.run_view = RunConfigView()
        self.run_view.back_requested.connect(self.show_settings)
        self.pages.addWidget(settings_page)
        self.pages.addWidget(self.run_view)
        self._set_page(0)
        # Only the form scrolls: the run controls below it stay in sight at any height, and
        # the form is never wider than the panel (no sideways scrolling).
        self.form_scroll = _FormScroll()
        self.form_scroll.setWidget(self.pages)
        self.form_scroll.setWidgetResizable(True)
        self.form_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.form_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(self.form_scroll, 1)
        rule = QFrame()
        rule.setFrameShape(QFrame.Shape.HLine)
        rule.setFrameShadow(QFrame.Shadow.Sunken)
        outer.addWidget(rule)  # the form scrolls above it; the controls below stay put

        box = QGroupBox("Input and engine")
        form = QFormLayout(box)
        self.images = QLineEdit()
        self.images.setPlaceholderText("Folder of specimen images (or drop one here)")
        form.addRow("Images", _path_row(self.images, self._pick_images))
        self.engine = QComboBox()
        for name, label in ENGINE_LABELS.items():
            self.engine.addItem(label, name)
            self.engine.setItemData(self.engine.count() - 1, label, Qt.ItemDataRole.ToolTipRole)
        # the long engine name must not set the panel's width: the box elides it (the
        # tooltip and the open list say all of it)
        self.engine.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.engine.setMinimumContentsLength(12)
        self.engine.currentIndexChanged.connect(self._engine_changed)
        form.addRow("Engine", self.engine)
        self.model = QLineEdit(DEFAULT_MODEL)
        form.addRow("Model", self.model)
        self.base_url = QLineEdit(DEFAULT_BASE_URL)
        form.addRow("Base URL", self.base_url)
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText(f"from the OS keyring or ${DEFAULT_KEY_ENV}")
        form.addRow("API key", self.api_key)
        self.save_key = QCheckBox("Remember in the OS keyring")
        form.addRow("", self.save_key)
        # whether the key was remembered: here, by the field, and kept until the key or the
        # choice changes (the message line below is cleared by every start)
        self.key_status = QLabel("")
        self.key_status.setTextFormat(Qt.TextFormat.PlainText)
        self.key_status.setWordWrap(True)
        self.key_status.setObjectName("key_status")
        self.key_status.hide()
        form.addRow("", self.key_status)
        self.api_key.textEdited.connect(self._clear_key_status)
        self.save_key.toggled.connect(self._clear_key_status)
        self.concurrency = QSpinBox()
        self.concurrency.setRange(1, 64)
        self.concurrency.setValue(OCR_CONCURRENCY)
        form.addRow("Concurrency", self.concurrency)
        # the run pauses before its cost would pass it (extraction/budget.py); raise it and
        # press Resume to go on
        self.budget = QDoubleSpinBox()
        self.budget.setRange(0.0, 1_000_000.0)
        self.budget.setDecimals(4)
        self.budget.setSingleStep(0.5)
        self.budget.setPrefix("$")
        self.budget.setSpecialValueText("no budget")
        self.budget.setToolTip(
            "Pause the run before its cost would go past this (0: no budget). "
            "When it pauses, raise it here and press Resume."
        )
        form.addRow("Budget", self.budget)
        # an engine that reports no cost (offline OCR) is never stopped by the budget: say so
        self.budget_note = QLabel("")
        self.budget_note.setTextFormat(Qt.TextFormat.PlainText)
        self.budget_note.setWordWrap(True)
        self.budget_note.setObjectName("budget_note")
        self.budget_note.hide()
        form.addRow("", self.budget_note)
        self.budget.valueChanged.connect(self._budget_note)
        form_lay.addWidget(box)

        vbox = QGroupBox("Validation")
        vform = QFormLayout(vbox)
        d = ValidationConfig()
        self.checkpoint_after = QSpinBox()
        self.checkpoint_after.setRange(1, 1000)
        self.checkpoint_after.setValue(d.checkpoint_after)
        vform.addRow("Checkpoint after", self.checkpoint_after)
        self.checkpoint_threshold = self._rate_box(d.checkpoint_threshold)
        vform.addRow("Halt below", self.checkpoint_threshold)
        self.warning_threshold = self._rate_box(d.warning_threshold)
        vform.addRow("Warn below", self.warning_threshold)
        self.max_consecutive = QSpinBox()
        self.max_consecutive.setRange(0, 10000)
        self.max_consecutive.setValue(d.max_consecutive_failures)
        self.max_consecutive.setSpecialValueText("off")
        vform.addRow("Max failures in a row", self.max_consecutive)
        form_lay.addWidget(vbox)

        obox = QGroupBox("Output")
        oform = QFormLayout(obox)
        self.out_dir = QLineEdit(str(Path.cwd() / DEFAULT_OUT_DIR))
        oform.addRow("Runs folder", _path_row(self.out_dir, self._pick_out))
        form_lay.addWidget(obox)

        controls = QVBoxLayout()
        controls.setContentsMargins(9, 6, 9, 9)
        buttons = QHBoxLayout()
        self.start_btn = QPushButton("Start")
        self.start_btn.setDefault(True)
        self.start_btn.clicked.connect(self.request_start)
        self.pause_btn = QPushButton("Pause")
        self.pause_btn.setCheckable(True)
        self.pause_btn.toggled.connect(self._pause_toggled)
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.clicked.connect(self.stop_requested)
        for b in (self.start_btn, self.pause_btn, self.stop_btn):
            buttons.addWidget(b)
        controls.addLayout(buttons)
        self.resume_btn = QPushButton("Resume a previous run…")
        self.resume_btn.clicked.connect(self._pick_resume)
        controls.addWidget(self.resume_btn)
        self.message = QLabel("")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)
        self.message.hide()  # shown with a message (an empty label still takes a line)
        controls.addWidget(self.message)
        outer.addLayout(controls)
        form_lay.addStretch(1)
        self.set_running(False)
        self._engine_changed()
        # settings key -> the value a command-line flag put in the form: used this session,
        # saved only once the user changes the field (a flag must not become a saved default)
        self._session: dict[str, Any] = {}
        self.images.textEdited.connect(lambda _t: self._session.pop("images", None))
        self.out_dir.textEdited.connect(lambda _t: self._session.pop("out_dir", None))
        self.engine.activated.connect(lambda _i: self._session.pop("engine", None))

    @staticmethod
    def _rate_box(value: float) -> QDoubleSpinBox:
        b = QDoubleSpinBox()
        b.setRange(0.0, 1.0)
        b.setSingleStep(0.05)
        b.setDecimals(2)
        b.setValue(value)
        return b

    # ---------------------------------------------------------------- mode
    @property
    def showing_run_config(self) -> bool:
        """True while an opened run's configuration is shown instead of the settings."""
        return self.pages.currentWidget() is self.run_view

    def show_run_config(
        self, config: Mapping[str, Any] | None, run_id: str | None = None, *, tailed: bool = False
    ) -> None:
        """Show an opened (or tailed) run's own configuration, read-only.

        `config` is `data.config` of the run's `extraction.started` event; None or empty
        while the log has not told it (yet). The editable settings stay as they were.
        """
        self.run_view.show_config(config, run_id, tailed=tailed)
        if not self.showing_run_config:
            self._set_page(1)
            self.start_btn.setText("New run…")
            self.start_btn.setToolTip("Back to your settings, to start a new run")
            self.mode_changed.emit(True)

    def show_settings(self) -> None:
        """Back to the app's editable settings (a new run is about to be set up)."""
        if self.showing_run_config:
            self._set_page(0)
            self.start_btn.setText("Start")
            self.start_btn.setToolTip("")
            self.mode_changed.emit(False)

    def _set_page(self, index: int) -> None:
        # A stacked widget is as tall as its tallest page: the hidden page must not count,
        # or the settings form stretches and pushes Start below the fold.
        for i in range(self.pages.count()):
            page = self.pages.widget(i)
            if page is None:
                continue
            policy = QSizePolicy.Policy.Preferred if i == index else QSizePolicy.Policy.Ignored
            page.setSizePolicy(policy, policy)
        self.pages.setCurrentIndex(index)
        self.pages.updateGeometry()
        if hasattr(self, "form_scroll"):
            self.form_scroll.updateGeometry()  # its width follows the page shown

    def set_message(self, text: str) -> None:
        """The line under the run controls: why a start failed (empty: none)."""
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def request_start(self) -> None:
        """Start from the settings; while an opened run is shown, show the settings first,
        so nobody starts a run believing it uses the opened run's configuration."""
        if self.showing_run_config:
            self.show_settings()
        else:
            self.start_requested.emit()

    # ---------------------------------------------------------------- command line
    def set_for_session(self, key: str, value: str) -> None:
        """Put a command-line value in the form (`images`, `out_dir`, `engine`) for this
        session: it is saved as a default only if the user then changes that field."""
        if key == "engine":
            before = self.concurrency.value()
            self.engine.setCurrentIndex(max(0, self.engine.findData(value)))
            self._session["engine"] = self.engine.currentData()
            if self.concurrency.value() != before:  # follows the engine: not the user's
                self._session["concurrency"] = self.concurrency.value()
            return
        edit = {"images": self.images, "out_dir": self.out_dir}[key]
        edit.setText(value)
        self._session[key] = value

    def _clear_key_status(self) -> None:
        self.key_status.setText("")
        self.key_status.hide()

    def _set_key_status(self, stored: bool) -> None:
        if stored:
            text, style = "Remembered in the OS keyring.", "color: #1f7a3a;"
        else:
            text = (
                "⚠ Not remembered: no OS keyring is available here. The key is used for "
                f"this session only; give it again next time, or set ${DEFAULT_KEY_ENV}."
            )
            style = "color: #7a4a00; font-weight: bold;"
        self.key_status.setText(text)
        self.key_status.setStyleSheet(f"#key_status {{ {style} }}")
        self.key_status.show()

    # ---------------------------------------------------------------- state
    def set_running(self, running: bool) -> None:
        self.start_btn.setEnabled(not running)
        self.resume_btn.setEnabled(not running)
        self.pause_btn.setEnabled(running)
        self.stop_btn.setEnabled(running)
        if not running:
            self.pause_btn.blockSignals(True)
            self.pause_btn.setChecked(False)
            self.pause_btn.setText("Pause")
            self.pause_btn.blockSignals(False)

    def _pause_toggled(self, paused: bool) -> None:
        self.pause_btn.setText("Resume" if paused else "Pause")
        self.pause_toggled.emit(paused)

    def _engine_changed(self) -> None:
        api = self.engine.currentData() == "openrouter"
        for w in (self.model, self.base_url, self.api_key, self.save_key):
            w.setEnabled(api)
        if api and self.concurrency.value() == OCR_CONCURRENCY:
            self.concurrency.setValue(API_CONCURRENCY)
        elif not api:
            self.concurrency.setValue(OCR_CONCURRENCY)
        self._budget_note()

    def _budget_note(self) -> None:
        note = no_cost_note(str(self.engine.currentData() or ""), self.budget_usd())
        self.budget_note.setText(note[:1].upper() + note[1:] + "." if note else "")
        self.budget_note.setVisible(bool(note))

    # ---------------------------------------------------------------- pickers / drops
    def _pick_images(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Folder of specimen images", self.images.text())
        if d:
            self.images.setText(d)

    def _pick_out(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Runs folder", self.out_dir.text())
        if d:
            self.out_dir.setText(d)

    def _pick_resume(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Run directory to resume", self.out_dir.text())
        if d:
            self.resume_run_requested.emit(d)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            p = Path(url.toLocalFile())
            if p.exists():
                self.show_settings()  # images dropped here are for the next run
                self.images.setText(str(p if p.is_dir() else p.parent))
                event.acceptProposedAction()
                return

    # ---------------------------------------------------------------- config
    def build_config(self, resume_dir: Path | None = None) -> RunConfig:
        """RunConfig from the form; ValueError with a message a user can act on."""
        engine = str(self.engine.currentData())
        images = self.images.text().strip()
        if not images and resume_dir is None:
            raise ValueError("Choose a folder of specimen images first.")
        inputs = [Path(images)] if images else []
        if inputs and not inputs[0].exists():
            raise ValueError(f"The image folder does not exist: {images}")
        base_url = self.base_url.text().strip() or DEFAULT_BASE_URL
        key = None
        if engine != "ocr":
            key = self.api_key.text().strip() or get_api_key(base_url)
            typed = self.api_key.text().strip()
            if key and typed and self.save_key.isChecked():
                self._set_key_status(store_api_key(base_url, key))
        prompt = default_prompt_path()
        validation = ValidationConfig(
            checkpoint_after=self.checkpoint_after.value(),
            checkpoint_threshold=self.checkpoint_threshold.value(),
            warning_threshold=self.warning_threshold.value(),
            max_consecutive_failures=self.max_consecutive.value(),
        )
        return RunConfig(
            inputs=inputs,
            out_dir=Path(self.out_dir.text().strip() or DEFAULT_OUT_DIR),
            engine=EngineSettings(
                engine=engine,
                model=self.model.text().strip() if engine != "ocr" else "",
                base_url=base_url,
                api_key=key,
                prompt_text=prompt.read_text(encoding="utf-8"),
            ),
            concurrency=self.concurrency.value(),
            resume_dir=resume_dir,
            validation=validation,
            budget_usd=self.budget_usd(),
        )

    def budget_usd(self) -> float | None:
        """The Budget field: None for no budget."""
        return self.budget.value() or None

    # ---------------------------------------------------------------- persistence
    def save_settings(self, s: QSettings) -> None:
        """Everything but the key (which only ever goes to the OS keyring), and but what a
        command-line flag put in a field the user has not changed since."""
        for key, value in (
            ("images", self.images.text()),
            ("engine", self.engine.currentData()),
            ("model", self.model.text()),
            ("base_url", self.base_url.text()),
            ("concurrency", self.concurrency.value()),
            ("out_dir", self.out_dir.text()),
            ("checkpoint_after", self.checkpoint_after.value()),
            ("checkpoint_threshold", self.checkpoint_threshold.value()),
            ("warning_threshold", self.warning_threshold.value()),
            ("max_consecutive", self.max_consecutive.value()),
            ("budget", self.budget.value()),
        ):
            if key not in self._session or self._session[key] != value:
                s.setValue(f"setup/{key}", value)

    def load_settings(self, s: QSettings) -> None:
        images = str(s.value("setup/images", "") or "")
        self.images.setText(images if images else str(sample_specimens_dir()))
        idx = self.engine.findData(s.value("setup/engine", "ocr"))
        self.engine.setCurrentIndex(max(0, idx))
        self.model.setText(str(s.value("setup/model", DEFAULT_MODEL) or DEFAULT_MODEL))
        self.base_url.setText(str(s.value("setup/base_url", DEFAULT_BASE_URL) or DEFAULT_BASE_URL))
        self.out_dir.setText(str(s.value("setup/out_dir", self.out_dir.text())))
        for key, spin in (
            ("concurrency", self.concurrency),
            ("checkpoint_after", self.checkpoint_after),
            ("max_consecutive", self.max_consecutive),
        ):
            val = s.value(f"setup/{key}")
            if val is not None:
                spin.setValue(int(str(val)))
        for key, dspin in (
            ("checkpoint_threshold", self.checkpoint_threshold),
            ("warning_threshold", self.warning_threshold),
            ("budget", self.budget),
        ):
            val = s.value(f"setup/{key}")
            if val is not None:
                dspin.setValue(float(str(val)))


# -------------------------------------------------------------------- an opened run's config
def format_config_value(value: Any) -> str:
    """One value of a logged config as plain text (logs may hold anything: keep it short)."""
    if value is None or value == "" or value == []:
        text = NOT_RECORDED
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, list | tuple):
        text = "\n".join(format_config_value(v) for v in value)
    elif isinstance(value, Mapping):
        text = ", ".join(f"{k}={format_config_value(v)}" for k, v in value.items())
    else:
        text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return text


def _engine_label(v: Any) -> str:
    return ENGINE_LABELS.get(str(v), format_config_value(v))


def _pace_label(v: Any) -> str:
    return "unpaced" if v in (None, 0) else f"{format_config_value(v)} requests a minute"


def _budget_label(v: Any) -> str:
    return "no budget" if v is None else f"${format_config_value(v)}"


def _limit_label(v: Any) -> str:
    return "all images" if v is None else format_config_value(v)


def _failures_label(v: Any) -> str:
    return "off" if v == 0 else format_config_value(v)


def _prompt_label(v: Any) -> str:
    return "none given" if v is None else format_config_value(v)


def _digest_label(v: Any) -> str:
    text = format_config_value(v)
    return text[:12] + "…" if len(text) > 16 else text  # the full digest is in the tooltip


def _unit(suffix: str) -> Callable[[Any], str]:
    return lambda v: format_config_value(v) if v is None else f"{format_config_value(v)} {suffix}"


# (group, label, key path, formatter): what the editable form shows, in the same places,
# plus what only the command line sets. Keys a config has beyond these are listed after.
_CONFIG_ROWS: list[tuple[str, str, tuple[str, ...], Callable[[Any], str]]] = [
    ("Input and engine", "Images", ("inputs",), format_config_value),
    ("Input and engine", "Engine", ("engine",), _engine_label),
    ("Input and engine", "Model", ("model",), format_config_value),
    ("Input and engine", "Base URL", ("base_url",), format_config_value),
    ("Input and engine", "Concurrency", ("concurrency",), format_config_value),
    ("Input and engine", "Request pace", ("requests_per_minute",), _pace_label),
    ("Input and engine", "Budget", ("budget_usd",), _budget_label),
    ("Input and engine", "Max attempts", ("max_attempts",), format_config_value),
    ("Input and engine", "Timeout", ("timeout_s",), _unit("s")),
    ("Input and engine", "Max image side", ("max_side",), _unit("px")),
    ("Input and engine", "Limit", ("limit",), _limit_label),
    ("Input and engine", "Prompt file", ("prompt_path",), _prompt_label),
    ("Input and engine", "Prompt SHA-256", ("prompt_sha256",), _digest_label),
    ("Validation", "Checkpoint after", ("validation", "checkpoint_after"), format_config_value),
    ("Validation", "Halt below", ("validation", "checkpoint_threshold"), format_config_value),
    ("Validation", "Warn every", ("validation", "warning_every"), format_config_value),
    ("Validation", "Warn below", ("validation", "warning_threshold"), format_config_value),
    (
        "Validation",
        "Max failures in a row",
        ("validation", "max_consecutive_failures"),
        _failures_label,
    ),
    ("Output", "Runs folder", ("out_dir",), format_config_value),
]
_KNOWN_TOP = {path[0] for _, _, path, _ in _CONFIG_ROWS}
_KNOWN_VALIDATION = {path[1] for _, _, path, _ in _CONFIG_ROWS if len(path) == 2}


def _flatten(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """A table's entries one row each ("quality.gold"), as the validation extras are: a
    table in one line ran off the panel ("require=—, catalog_pat")."""
    rows: list[tuple[str, Any]] = []
    for key, value in items:
        name = format_config_value(key)
        if isinstance(value, Mapping) and value:
            rows += [(f"{name}.{format_config_value(k)}", v) for k, v in value.items()]
        else:
            rows.append((name, value))
    return rows


_ABSENT = object()  # a key the log does not record: shown as such, not as its default


def _lookup(config: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = config
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return _ABSENT
        value = value[key]
    return value


def _value_label() -> QLabel:
    lab = QLabel()
    lab.setTextFormat(Qt.TextFormat.PlainText)  # a log's text is never markup
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    lab.setWordWrap(True)
    # A path or URL has no place to wrap: let it be cut at the panel's edge (the tooltip and
    # a selection give all of it) rather than widen the dock.
    lab.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return lab


def _setting_row(name: str, value: str) -> QWidget:
    """A setting this version has no row for: names like "validation.quality_threshold" are
    long, so its name on one line and its value under it, both as wide as the panel and
    elided to it (never cut; the tooltip says all)."""
    row = QWidget()
    lay = QVBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 2)
    lay.setSpacing(0)
    lay.addWidget(ElidedLabel(name))
    shown = ElidedLabel(value)
    shown.setContentsMargins(14, 0, 0, 0)
    lay.addWidget(shown)
    return row


class RunConfigView(QWidget):
    """An opened run's configuration from its log, read-only and labelled as that run's."""

    back_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(*PAGE_MARGINS)
        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.PlainText)
        self.header.setWordWrap(True)
        self.header.setObjectName("run_config_header")
        self.header.setStyleSheet(
            "#run_config_header { background: #e3eefb; color: #123d6a; border: 1px solid #8fb3dc;"
            " border-radius: 4px; padding: 6px; }"
        )
        lay.addWidget(self.header)
        self.note = QLabel()
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        self.values: dict[str, QLabel] = {}
        self._forms: dict[str, QFormLayout] = {}
        self._boxes: list[QGroupBox] = []
        for group, label, _, _ in _CONFIG_ROWS:
            if group not in self._forms:
                box = QGroupBox(f"{group} (read-only)")
                self._forms[group] = QFormLayout(box)
                self._boxes.append(box)
                lay.addWidget(box)
            value = _value_label()
            self.values[label] = value
            self._forms[group].addRow(label, value)
        self.other_box = QGroupBox("Other settings (read-only)")
        self.other_form = QFormLayout(self.other_box)
        lay.addWidget(self.other_box)
        self.back_btn = QPushButton("Back to my settings")
        self.back_btn.setToolTip("Edit the app's own settings, for a new run")
        self.back_btn.clicked.connect(self.back_requested)
        lay.addWidget(self.back_btn)
        lay.addStretch(1)
        self.config: dict[str, Any] = {}

    def show_config(
        self, config: Mapping[str, Any] | None, run_id: str | None, *, tailed: bool = False
    ) -> None:
        self.config = dict(config or {})
        what = "Followed run" if tailed else "Opened run"
        name = f" {run_id}" if run_id else ""
        self.header.setText(
            f"{what}{name}: the configuration it was started with, from its log. "
            "Read-only; your own settings for new runs are kept."
        )
        has = bool(self.config)
        self.note.setText(
            ""
            if has
            else "This log records no configuration yet: it comes with the run's "
            "extraction.started event (logs of the original extraction scripts have none)."
        )
        self.note.setVisible(not has)
        for box in self._boxes:
            box.setVisible(has)
        for _, label, path, fmt in _CONFIG_ROWS:
            value = _lookup(self.config, path)
            if value is _ABSENT:
                text, tip = "—", "not recorded in this run's log"
            else:
                text, tip = fmt(value), format_config_value(value)
            self.values[label].setText(text if has else "")
            self.values[label].setToolTip(tip if has else "")
        while self.other_form.rowCount():
            self.other_form.removeRow(0)
        extra = [(k, v) for k, v in self.config.items() if k not in _KNOWN_TOP]
        validation = self.config.get("validation")
        if isinstance(validation, Mapping):
            extra += [
                (f"validation.{k}", v) for k, v in validation.items() if k not in _KNOWN_VALIDATION
            ]
        rows = _flatten(extra)
        for key, value in rows[:MAX_OTHER_ROWS]:
            self.other_form.addRow(_setting_row(key, format_config_value(value)))
        if len(rows) > MAX_OTHER_ROWS:
            more = ElidedLabel(f"… and {len(rows) - MAX_OTHER_ROWS} more in the log")
            self.other_form.addRow(more)
        self.other_box.setVisible(bool(rows))

    def text_of(self, label: str) -> str:
        """The shown value of one row (tests, screenshots)."""
        return self.values[label].text()
