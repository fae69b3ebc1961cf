"""File → Export…: a small dialog (format, only usable, path) and the thread that exports.

All the work is herbdesk.export.export, the same function as `herbdesk export`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QThread, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from herbdesk.export import ExportError, ExportOptions, ExportResult, export

_SUFFIX = {"dwca": ".zip", "csv": ".csv"}


class ExportDialog(QDialog):
    """Asks how to export `source`; `options()` gives the choice once accepted."""

    def __init__(self, source: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export records")
        self.source = source
        form = QFormLayout(self)
        self.source_label = QLabel(str(source))
        self.source_label.setWordWrap(True)
        form.addRow("From", self.source_label)
        self.format_box = QComboBox()
        self.format_box.addItem("Darwin Core Archive (zip)", "dwca")
        self.format_box.addItem("Occurrences CSV", "csv")
        self.format_box.currentIndexChanged.connect(self._format_changed)
        form.addRow("Format", self.format_box)
        self.only_usable = QCheckBox("Only records judged usable")
        form.addRow("", self.only_usable)
        self.only_reviewed = QCheckBox("Only reviewed records")
        form.addRow("", self.only_reviewed)
        self.path_edit = QLineEdit(str(self._default_path("dwca")))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        form.addRow("Save as", row)
        self.replace = QCheckBox("Replace the file if it exists")
        form.addRow("", self.replace)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _default_path(self, fmt: str) -> Path:
        base = self.source if self.source.is_dir() else self.source.parent
        stem = self.source.name if self.source.is_dir() else self.source.parent.name
        return base / f"{stem or 'records'}-export{_SUFFIX[fmt]}"

    def _format_changed(self) -> None:
        fmt = self.format_box.currentData()
        path = Path(self.path_edit.text())
        if path.suffix in _SUFFIX.values():  # follow the format unless the user named it
            self.path_edit.setText(str(path.with_suffix(_SUFFIX[fmt])))

    def _browse(self) -> None:
        fmt = self.format_box.currentData()
        pattern = "Darwin Core Archive (*.zip)" if fmt == "dwca" else "CSV (*.csv)"
        path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path_edit.text(), pattern)
        if path:
            self.path_edit.setText(path)
            self.replace.setChecked(True)  # the save dialog asked before replacing

    def options(self) -> ExportOptions:
        return ExportOptions(
            source=self.source,
            out=Path(self.path_edit.text()).expanduser(),
            fmt=str(self.format_box.currentData()),
            only_usable=self.only_usable.isChecked(),
            only_reviewed=self.only_reviewed.isChecked(),
            force=self.replace.isChecked(),
        )


class ExportThread(QThread):
    """Runs one export off the GUI thread; `done` carries the result or the error text."""

    done = Signal(object, str)  # ExportResult | None, error message ("" on success)

    def __init__(self, options: ExportOptions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.options = options
        self._stop = False

    def cancel(self) -> None:
        self._stop = True

    def run(self) -> None:
        result: ExportResult | None = None
        error = ""
        try:
            result = export(self.options, cancelled=lambda: self._stop)
        except ExportError as exc:
            error = str(exc)
        except OSError as exc:
            error = f"cannot write {self.options.out}: {exc}"
        self.done.emit(result, error)
