"""The pipeline inside a QThread: the same Pipeline as `herbdesk run`, its events as signals."""

from __future__ import annotations

from PySide6.QtCore import QThread, Signal

from herbdesk.events.batcher import EventBatcher
from herbdesk.extraction.config import RunConfig, RunOutcome
from herbdesk.extraction.control import USER_STOP
from herbdesk.extraction.pipeline import Pipeline


class RunWorker(QThread):
    """Runs one extraction; every event is already in events.jsonl when its signal arrives."""

    events_emitted = Signal(list)
    """A batch of events (list[Event]) from the run, in log order."""
    run_finished = Signal(object)
    """The RunOutcome, once the terminal event is written and files are closed."""

    def __init__(self, config: RunConfig, parent=None) -> None:
        super().__init__(parent)
        # Built here, on the GUI thread, so a bad output folder fails before the thread starts.
        self.pipeline = Pipeline(config)
        self.pipeline.hold_at_budget = True  # a budget pause waits here for a raise
        self._batcher = EventBatcher(self.events_emitted.emit)
        self.pipeline.subscribe(self._batcher.add, "desktop")
        self.outcome: RunOutcome | None = None

    @property
    def run_dir(self):
        return self.pipeline.run_dir

    def run(self) -> None:
        try:
            self.outcome = self.pipeline.run()
        except Exception as exc:  # run() never raises; if a bug makes it, the log still ends
            self.outcome = self.pipeline.finish_after_crash(exc)
        finally:
            self._batcher.close()  # every event is delivered before run_finished
        self.run_finished.emit(self.outcome)

    def pause(self) -> None:
        self.pipeline.pause()

    def resume(self, budget_usd: float | None = None) -> None:
        """Resume a paused run; one paused at its budget takes `budget_usd` (the Budget
        field) and goes on if that leaves room (else it says so again, still paused)."""
        if self.pipeline.budget.paused:
            self.pipeline.raise_budget(budget_usd)
        self.pipeline.resume()

    def stop(self, message: str = USER_STOP) -> None:
        """Graceful stop; `message` is the end event's account of who stopped the run."""
        self.pipeline.cancel(message)
