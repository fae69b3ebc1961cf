"""An opened log's term values read on a thread of their own (TermColumns.prepare).

Reading a million records' values, and sorting each term's distinct values, takes seconds;
done on the GUI thread by the first search or sort it froze the window that long. The window
starts this when a log has loaded; until it is done, term sorts and the value part of a search
wait for it (table_model.py) while the rows, cells and everything else work as before.
"""

from __future__ import annotations

from PySide6.QtCore import QThread, Signal

from herbdesk.runstate.terms import TermColumns


class TermsPreparer(QThread):
    """Runs `terms.prepare()`; `cancel()` stops it between batches (the rest stay spans)."""

    progress = Signal(int, int)
    """(rows read, rows to read)."""
    finished_ok = Signal(bool)
    """True when every value was read, False when cancelled first."""

    def __init__(self, terms: TermColumns, parent=None) -> None:
        super().__init__(parent)
        self.terms = terms
        self._stop = False

    def run(self) -> None:
        ok = self.terms.prepare(self.progress.emit, lambda: self._stop)
        self.finished_ok.emit(ok)

    def cancel(self) -> None:
        self._stop = True
