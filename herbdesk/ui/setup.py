"""Run setup: inputs, engine, key, thresholds, output; Start/Pause/Stop/Resume buttons."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from herbdesk.apikeys import DEFAULT_KEY_ENV, get_api_key, store_api_key
from herbdesk.assets import default_prompt_path, sample_specimens_dir
from herbdesk.extraction.engines import EngineSettings
from herbdesk.extraction.engines.openrouter import DEFAULT_MODEL
from herbdesk.extraction.pipeline import RunConfig
from herbdesk.monitor.validation import ValidationConfig

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"


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

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        outer = QVBoxLayout(self)

        box = QGroupBox("Input and engine")
        form = QFormLayout(box)
        self.images = QLineEdit()
        self.images.setPlaceholderText("Folder of specimen images (or drop one here)")
        form.addRow("Images", _path_row(self.images, self._pick_images))
        self.engine = QComboBox()
        self.engine.addItem("Offline OCR (RapidOCR)", "ocr")
        self.engine.addItem("Vision LLM (OpenRouter / OpenAI-compatible)", "openrouter")
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
        self.concurrency = QSpinBox()
        self.concurrency.setRange(1, 64)
        self.concurrency.setValue(1)
        form.addRow("Concurrency", self.concurrency)
        outer.addWidget(box)

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
        outer.addWidget(vbox)

        obox = QGroupBox("Output")
        oform = QFormLayout(obox)
        self.out_dir = QLineEdit(str(Path.cwd() / "runs"))
        oform.addRow("Runs folder", _path_row(self.out_dir, self._pick_out))
        outer.addWidget(obox)

        buttons = QHBoxLayout()
        self.start_btn = QPushButton("Start")
        self.start_btn.setDefault(True)
        self.start_btn.clicked.connect(self.start_requested)
        self.pause_btn = QPushButton("Pause")
        self.pause_btn.setCheckable(True)
        self.pause_btn.toggled.connect(self._pause_toggled)
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.clicked.connect(self.stop_requested)
        for b in (self.start_btn, self.pause_btn, self.stop_btn):
            buttons.addWidget(b)
        outer.addLayout(buttons)
        self.resume_btn = QPushButton("Resume a previous run…")
        self.resume_btn.clicked.connect(self._pick_resume)
        outer.addWidget(self.resume_btn)
        self.message = QLabel("")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)
        outer.addWidget(self.message)
        outer.addStretch(1)
        self.set_running(False)
        self._engine_changed()

    @staticmethod
    def _rate_box(value: float) -> QDoubleSpinBox:
        b = QDoubleSpinBox()
        b.setRange(0.0, 1.0)
        b.setSingleStep(0.05)
        b.setDecimals(2)
        b.setValue(value)
        return b

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
        if api and self.concurrency.value() == 1:
            self.concurrency.setValue(4)
        elif not api:
            self.concurrency.setValue(1)

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
            if key and typed and self.save_key.isChecked() and not store_api_key(base_url, key):
                self.message.setText(
                    "No OS keyring is available: the key is used for this run only."
                )
        prompt = default_prompt_path()
        validation = ValidationConfig(
            checkpoint_after=self.checkpoint_after.value(),
            checkpoint_threshold=self.checkpoint_threshold.value(),
            warning_threshold=self.warning_threshold.value(),
            max_consecutive_failures=self.max_consecutive.value(),
        )
        return RunConfig(
            inputs=inputs,
            out_dir=Path(self.out_dir.text().strip() or "runs"),
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
        )

    # ---------------------------------------------------------------- persistence
    def save_settings(self, s: QSettings) -> None:
        """Everything but the key (which only ever goes to the OS keyring)."""
        s.setValue("setup/images", self.images.text())
        s.setValue("setup/engine", self.engine.currentData())
        s.setValue("setup/model", self.model.text())
        s.setValue("setup/base_url", self.base_url.text())
        s.setValue("setup/concurrency", self.concurrency.value())
        s.setValue("setup/out_dir", self.out_dir.text())
        s.setValue("setup/checkpoint_after", self.checkpoint_after.value())
        s.setValue("setup/checkpoint_threshold", self.checkpoint_threshold.value())
        s.setValue("setup/warning_threshold", self.warning_threshold.value())
        s.setValue("setup/max_consecutive", self.max_consecutive.value())

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
        ):
            val = s.value(f"setup/{key}")
            if val is not None:
                dspin.setValue(float(str(val)))
