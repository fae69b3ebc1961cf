"""RunDocument: the run the window shows, fed by any event source, refreshing views on a timer."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from herbdesk.events.reader import EventIndex, EventStore
from herbdesk.events.types import Event
from herbdesk.extraction.liveness import log_silence_s
from herbdesk.extraction.rawindex import RawIndex
from herbdesk.runstate.chunks import apply_chunk
from herbdesk.runstate.state import RunState
from herbdesk.runstate.terms import FileSpans
from herbdesk.ui.loader import LoadedChunk
from herbdesk.ui.terms_prep import TermsPreparer

REFRESH_MS = 33  # at most ~30 view refreshes a second, never one per event
# While an opened file streams in, views refresh once a second (the progress bar moves ten
# times a second): each refresh costs in proportion to the rows so far, and the fold of the
# next blocks is what the user waits for; a million-event log loads in about a second.
BULK_REFRESH_S = 1.0
# Rows whose term values a sort or search reads on the GUI thread (~0.1 s); more are read on a
# thread of their own while the sort or search waits.
READ_AT_ONCE = 20_000


class RunDocument(QObject):
    """Folds event batches into a RunState; views read the state when `refreshed` fires."""

    reset_done = Signal()
    """The document was cleared for a new source; views drop what they show."""
    events_applied = Signal(list)
    """A batch of Event objects was folded (live sources; blocks of an opened file are not)."""
    events_added = Signal(int, int)
    """(first, count): events appended to `events`, from any source (the event log pane)."""
    refreshed = Signal(object)
    """Timer tick after changes; carries the table rows touched since the last tick (a sorted
    int64 array, `RunState.take_changed_rows`)."""
    flushed = Signal()
    """`flush` refreshed the views: ones that spread their redraws over time catch up now."""
    terms_progress = Signal(int, int)
    """(rows, of rows): an opened log's term values being read for search and sort."""
    terms_ready = Signal()
    """Every term value is read: searches and term sorts that waited can run."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = RunState()
        # Opened files: an index of byte offsets, decoded on demand; live events are held.
        self.events = EventStore()
        self.run_dir: Path | None = None
        self.raw_index: RawIndex | None = None
        # specimen id -> a sheet found by File → Locate images… (the log's path is missing)
        self.located: dict[str, str] = {}
        self.source_label = ""
        self.live = False
        self.last_arrival: float | None = None  # monotonic time the newest batch came in
        self._dirty = False
        self._bulk_at = 0.0  # monotonic time the last block of an opened file was folded
        self._refreshed_at = 0.0
        self._refreshed_events = 0  # events the views had seen at the last refresh
        self._preparer: TermsPreparer | None = None
        self._old_preparers: list[TermsPreparer] = []  # cancelled, kept until they end
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def reset(self, run_dir: Path | None, source_label: str = "", live: bool = False) -> None:
        """Start over for a new source; `live` sources (runs, tails) may notify the desktop."""
        self.live = live
        self.last_arrival = time.monotonic() if live else None
        self.stop_preparing()
        self.state = RunState()
        self.events = EventStore()
        self.run_dir = Path(run_dir) if run_dir else None
        self.raw_index = RawIndex(self.run_dir / "raw.jsonl") if self.run_dir else None
        self.source_label = source_label
        self.located = {}
        self._dirty = True
        self.reset_done.emit()

    @Slot(list)
    def apply_events(self, batch: list[Event] | list[LoadedChunk]) -> None:
        """Fold a batch of events, or a block of lines from the background loader."""
        if batch and isinstance(batch[0], LoadedChunk):
            self._apply_loaded(batch[0])
            return
        events: list[Event] = batch  # type: ignore[assignment]
        first = len(self.events)
        self.state.apply_batch(events)
        self.events.extend(events)
        self.last_arrival = time.monotonic()
        self._dirty = True
        self.events_applied.emit(events)
        self.events_added.emit(first, len(events))

    def _apply_loaded(self, item: LoadedChunk) -> None:
        load = item.load
        try:
            store = self.events
            if load.cancelled:
                return  # queued before its load was cancelled: not this document's source
            if store.file_index is not load.index:
                if len(store) or store.file_index is not None:
                    return
                store.file_index = load.index
                self.state.terms.source = FileSpans(load.path)  # values read back on demand
            first = store.limit
            apply_chunk(self.state, item.chunk, load.stats, load.decoder, load.index)
            store.limit = len(load.index)
            self.state.bad_lines = load.stats.bad_lines
            self._dirty = True
            self._bulk_at = time.monotonic()
            if store.limit > first:
                self.events_added.emit(first, store.limit - first)
        finally:
            load.slots.release()

    # ---------------------------------------------------------------- term values
    @property
    def preparing(self) -> bool:
        """The term values are being read: term sorts and value searches wait."""
        return self._preparer is not None

    def terms_at_hand(self) -> bool:
        """Whether the term values can be looked at as a whole now (a sort, a search). A few
        rows still in the log are read by the caller at once; many are read on a thread of
        their own (the window stays live), and False until `terms_ready`. Asked for, not done
        on opening: the values of a million records take hundreds of MB once read."""
        if self._preparer is not None:
            return False
        if self.state.terms.pending() <= READ_AT_ONCE:
            return True
        self.prepare_terms()
        return False

    def prepare_terms(self) -> None:
        """Read an opened log's term values on a thread of their own, then each term's search
        text and sort order; `terms_ready` says when."""
        if self._preparer is not None or not self.state.terms.pending():
            return
        prep = TermsPreparer(self.state.terms, self)
        prep.progress.connect(self._prep_progress)
        prep.finished_ok.connect(self._prep_done)
        prep.finished.connect(self._thread_ended)
        self._preparer = prep
        # said at once, not at the first batch; after the caller has noted what waits for it
        total = self.state.terms.pending()
        QTimer.singleShot(0, lambda: self._started(prep, total))
        prep.start()

    def stop_preparing(self, wait_ms: int = 0) -> None:
        """Cancel the reading (a new source, quitting); it ends between two batches and is
        let go of then (`wait_ms`: wait that long for it here)."""
        prep, self._preparer = self._preparer, None
        if prep is not None:
            prep.cancel()
            self._old_preparers.append(prep)
        for old in list(self._old_preparers) if wait_ms else ():
            if old.wait(wait_ms):
                self._old_preparers.remove(old)

    def _thread_ended(self) -> None:
        prep = self.sender()
        if prep in self._old_preparers:  # a cancelled one, ended: let it go
            assert isinstance(prep, TermsPreparer)
            prep.wait()
            self._old_preparers.remove(prep)
            prep.deleteLater()

    def _started(self, prep: TermsPreparer, total: int) -> None:
        if prep is self._preparer:
            self.terms_progress.emit(0, total)

    def _prep_progress(self, done: int, total: int) -> None:
        if self.sender() is self._preparer:
            self.terms_progress.emit(done, total)

    def _prep_done(self, ok: bool) -> None:
        prep = self.sender()
        if prep is not self._preparer:
            return  # cancelled: `_thread_ended` lets it go
        assert isinstance(prep, TermsPreparer)
        prep.wait()
        prep.deleteLater()
        self._preparer = None
        if ok:
            self.terms_ready.emit()

    def apply_indexed(self, index: EventIndex, stop: int) -> None:
        """Fold events of an opened file's index up to `stop` (replay), holding none of them.

        The document's events must be empty or a prefix of the same index.
        """
        store = self.events
        if store.file_index is not index:
            if len(store):
                raise ValueError("the document already holds other events")
            store.file_index = index
        first = store.limit
        stop = min(stop, len(index))
        if stop <= first:
            return
        for ev in index.iter_events(first, stop):
            self.state.apply(ev)
        store.limit = stop
        self._dirty = True
        self.events_added.emit(first, stop - first)

    def silent_for(self) -> float | None:
        """Seconds since a live source's log was last written (None for opened logs).

        The log file's mtime where the run directory is on this machine, else the newest
        event's timestamp; not arrival time, which restarts when the window opens a dead log.
        """
        if not self.live or self.last_arrival is None:
            return None
        silent = log_silence_s(self.run_dir, self.state.last_ts)
        return silent if silent is not None else time.monotonic() - self.last_arrival

    def set_bad_lines(self, n: int) -> None:
        self.state.bad_lines = n
        self._dirty = True

    def flush(self) -> None:
        """Refresh views now (tests, screenshots, the end of a load)."""
        self._bulk_at = 0.0
        self._tick()
        self.flushed.emit()

    def _tick(self) -> None:
        if not self._dirty:
            return
        now = time.monotonic()
        throttled = now - self._bulk_at < BULK_REFRESH_S and self._refreshed_events > 0
        if throttled and now - self._refreshed_at < BULK_REFRESH_S:
            return  # the first events of a load still show at the next tick
        self._refreshed_at = now
        self._refreshed_events = self.state.events
        self._dirty = False
        self.refreshed.emit(self.state.take_changed_rows())
