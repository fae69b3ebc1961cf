"""File → Locate images… off the GUI thread: hashing a folder of large sheets takes minutes.

The thread checks which recorded paths are missing, lists the folder and hashes what the
names leave (herbdesk/extraction/locate.py); the window shows its progress in the status bar
and applies the result when `done` arrives, on the GUI thread. A cancelled search hands back
nothing, so what the log's sheets were found at before stays as it was.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QThread, Signal

from herbdesk.extraction.locate import LocateCancelled, Located, locate_images, missing_sheets

PROGRESS_S = 0.1  # at most ten status-bar updates a second, however fast small files hash


class LocateThread(QThread):
    """Searches one folder for the sheets of `rows` ((id, image name, path) each)."""

    progress = Signal(int, int)
    """(files hashed, files that may have to be hashed)"""
    done = Signal(object, str)
    """The Located (None if cancelled or failed) and an error text ("" otherwise). Its
    `wanted` is 0 when every recorded path was there: nothing was searched."""

    def __init__(self, folder: Path, rows: list[tuple[str, str, str]], parent=None) -> None:
        super().__init__(parent)
        self.folder = folder
        self._rows = rows
        self._stop = False
        self._shown = 0.0

    def cancel(self) -> None:
        self._stop = True

    @property
    def cancelled(self) -> bool:
        return self._stop

    def _progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._shown >= PROGRESS_S or done == total:
            self._shown = now
            self.progress.emit(done, total)

    def run(self) -> None:
        found: Located | None = None
        error = ""
        try:
            wanted = missing_sheets(self._rows)
            self._rows = []  # not held for the rest of the search
            found = Located()
            if wanted:
                found = locate_images(self.folder, wanted, lambda: self._stop, self._progress)
        except LocateCancelled:
            found = None
        except OSError as exc:
            error = f"Cannot read {self.folder}: {exc}"
        self.done.emit(found, error)
