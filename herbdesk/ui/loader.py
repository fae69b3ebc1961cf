"""Loading a whole log in the background: first rows show at once, the window stays live.

The loader thread only reads and splits the file into blocks of lines; the GUI thread folds
each block into the RunState (`RunDocument.apply_events`) without building an Event per line,
and records each event's byte offset in an `EventIndex`, so the event log pane and replay read
events back from the file instead of holding a million objects.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QThread, Signal

from herbdesk.events.legacy import AutoDecoder
from herbdesk.events.reader import EventIndex, LineChunk, ReadStats, iter_line_chunks, open_regular

FIRST_BYTES = 128 << 10  # ~300 events: the first rows and plots appear within a blink
# then ~5,000 events a block: about 10 ms of folding each with the compiled scanner, a few
# tens of ms without it (events/fastscan.py)
CHUNK_BYTES = 4 << 20
LOAD_SWITCH_S = 0.0005
PROGRESS_S = 0.1  # the progress bar moves ten times a second
# Blocks read ahead of the fold: bounds memory whatever the file size. Three (~5 MB more than
# two, 354-359 MB peak on a 1M-event load) ride out the views' first refresh and the jitter
# of both threads: 0.76-0.86 s against 0.82-1.09 s with two, alternating runs.
MAX_PENDING = 3


@dataclass
class BulkLoad:
    """What all blocks of one load share: stats, decoder state, the index, read-ahead slots."""

    path: Path
    stats: ReadStats = field(default_factory=ReadStats)
    decoder: AutoDecoder = field(default_factory=AutoDecoder)
    index: EventIndex = field(init=False)
    slots: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(MAX_PENDING))
    cancelled: bool = False

    def __post_init__(self) -> None:
        self.index = EventIndex(self.path)


@dataclass
class LoadedChunk:
    """One block of lines of a load, handed to the GUI thread to fold."""

    load: BulkLoad
    chunk: LineChunk


class LogLoader(QThread):
    """Reads a JSONL log (any supported shape) and hands it over in blocks of lines."""

    events_loaded = Signal(list)
    """A one-element list holding a LoadedChunk (RunDocument.apply_events folds it)."""
    progress = Signal(int, int)
    """(bytes read, file size) for the progress bar."""
    loaded = Signal(object)
    """The ReadStats once the whole file was read (or the load was cancelled)."""

    def __init__(self, path: Path, parent=None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.load = BulkLoad(self.path)
        self.stats = self.load.stats
        self._cancel = False

    def cancel(self) -> None:
        self._cancel = True
        self.load.cancelled = True  # blocks already queued are dropped by the document

    def run(self) -> None:
        # The GUI thread folds while this thread scans: each time a scan or read returns here,
        # this thread waits for the GIL until the fold reaches a switch point (every 5 ms by
        # default), several times a block. Handing it over every 0.5 ms while a file loads
        # cut the window's load of a 1M-event log by ~8 % (alternating runs); the default
        # comes back when the load ends.
        previous = sys.getswitchinterval()
        sys.setswitchinterval(min(previous, LOAD_SWITCH_S))
        try:
            self._run()
        finally:
            sys.setswitchinterval(previous)

    def _run(self) -> None:
        load = self.load
        offset = 0
        shown = 0.0
        try:
            size = self.path.stat().st_size
            with open_regular(self.path) as fh:
                for chunk in iter_line_chunks(fh, CHUNK_BYTES, FIRST_BYTES):
                    while not load.slots.acquire(timeout=0.05):  # the fold is behind: wait
                        if self._cancel:
                            break
                    if self._cancel:
                        break
                    offset = chunk.end_offset
                    self.events_loaded.emit([LoadedChunk(load, chunk)])
                    now = time.monotonic()
                    if now - shown >= PROGRESS_S:  # each repaint of the bar costs a ms
                        shown = now
                        self.progress.emit(offset, size)
                self.progress.emit(offset, size)
        except OSError as exc:
            load.stats.record_bad(0, 0, f"cannot read {self.path}: {exc}", b"")
        self.loaded.emit(load.stats)
