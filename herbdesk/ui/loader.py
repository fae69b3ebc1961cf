"""Loading a whole log in the background: first rows show at once, the window stays live."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QThread, Signal

from herbdesk.events.codec import BadLine
from herbdesk.events.legacy import AutoDecoder
from herbdesk.events.reader import ReadStats
from herbdesk.events.types import Event

FIRST_BATCH = 500  # small, so the first rows and plots appear within a blink
MAX_BATCH_S = 0.1  # later batches: whatever was read in ~100 ms


class LogLoader(QThread):
    """Reads a JSONL log (any supported shape) and hands events over in growing batches."""

    events_loaded = Signal(list)
    """A batch of decoded events, in file order."""
    progress = Signal(int, int)
    """(bytes read, file size) for the progress bar."""
    loaded = Signal(object)
    """The ReadStats once the whole file was read (or the load was cancelled)."""

    def __init__(self, path: Path, parent=None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.stats = ReadStats()
        self._cancel = False

    def cancel(self) -> None:
        self._cancel = True

    def run(self) -> None:
        decoder = AutoDecoder()
        stats = self.stats
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as fh:
                batch: list[Event] = []
                limit = FIRST_BATCH
                last = time.monotonic()
                offset = 0
                for line_no, raw in enumerate(fh, start=1):
                    start = offset
                    offset += len(raw)
                    line = raw.strip()
                    if line:
                        stats.lines += 1
                        try:
                            batch.append(decoder(line))
                            stats.events += 1
                        except BadLine as exc:
                            stats.record_bad(line_no, start, str(exc), line)
                    if len(batch) >= limit or (batch and time.monotonic() - last > MAX_BATCH_S):
                        if self._cancel:
                            break
                        self.events_loaded.emit(batch)
                        self.progress.emit(offset, size)
                        batch = []
                        limit = 1_000_000  # after the first batch, time decides
                        last = time.monotonic()
                if batch and not self._cancel:
                    self.events_loaded.emit(batch)
                self.progress.emit(offset, size)
        except OSError as exc:
            stats.record_bad(0, 0, f"cannot read {self.path}: {exc}", b"")
        self.loaded.emit(stats)
