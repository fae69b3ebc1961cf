"""RunDocument: the run the window shows, fed by any event source, refreshing views on a timer."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from herbdesk.events.types import Event
from herbdesk.extraction.rawindex import RawIndex
from herbdesk.state import RunState

REFRESH_MS = 33  # at most ~30 view refreshes a second, never one per event


class RunDocument(QObject):
    """Folds event batches into a RunState; views read the state when `refreshed` fires."""

    reset_done = Signal()
    """The document was cleared for a new source; views drop what they show."""
    events_applied = Signal(list)
    """A batch of events was folded (the event log pane appends them)."""
    refreshed = Signal(set)
    """Timer tick after changes; carries the table rows touched since the last tick."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = RunState()
        self.events: list[Event] = []
        self.run_dir: Path | None = None
        self.raw_index: RawIndex | None = None
        self.source_label = ""
        self.live = False
        self.last_arrival: float | None = None  # monotonic time the newest batch came in
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def reset(self, run_dir: Path | None, source_label: str = "", live: bool = False) -> None:
        """Start over for a new source; `live` sources (runs, tails) may notify the desktop."""
        self.live = live
        self.last_arrival = time.monotonic() if live else None
        self.state = RunState()
        self.events = []
        self.run_dir = Path(run_dir) if run_dir else None
        self.raw_index = RawIndex(self.run_dir / "raw.jsonl") if self.run_dir else None
        self.source_label = source_label
        self._dirty = True
        self.reset_done.emit()

    @Slot(list)
    def apply_events(self, batch: list[Event]) -> None:
        self.state.apply_batch(batch)
        self.events.extend(batch)
        self.last_arrival = time.monotonic()
        self._dirty = True
        self.events_applied.emit(batch)

    def silent_for(self) -> float | None:
        """Seconds since a live source last delivered anything (None for opened logs).

        Arrival time, not event timestamps: a remote host's clock may be off.
        """
        if not self.live or self.last_arrival is None:
            return None
        return time.monotonic() - self.last_arrival

    def set_bad_lines(self, n: int) -> None:
        self.state.bad_lines = n
        self._dirty = True

    def flush(self) -> None:
        """Refresh views now (tests, screenshots)."""
        self._tick()

    def _tick(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.refreshed.emit(self.state.take_changed_rows())
