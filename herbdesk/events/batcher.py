"""Coalesces events from any thread into batches delivered at most every `interval` seconds.

The desktop app's signal path and the log tailer both use it, so the GUI event loop receives a
few dozen lists per second instead of one call per event (Spyder's find-in-files lesson).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from herbdesk.events.types import Event

Deliver = Callable[[list[Event]], None]


class EventBatcher:
    """`add()` from any thread; `deliver(batch)` runs on the batcher's own thread."""

    def __init__(self, deliver: Deliver, interval: float = 0.02, max_batch: int = 4096) -> None:
        self._deliver = deliver
        self._interval = interval
        self._max_batch = max_batch
        self._buf: list[Event] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="herbdesk-batcher", daemon=True)
        self._thread.start()

    def add(self, event: Event) -> None:
        with self._cond:
            self._buf.append(event)
            if len(self._buf) == 1 or len(self._buf) >= self._max_batch:
                self._cond.notify()

    def add_many(self, events: list[Event]) -> None:
        with self._cond:
            self._buf.extend(events)
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._buf and not self._closed:
                    self._cond.wait()
                if not self._buf and self._closed:
                    return
                full = len(self._buf) >= self._max_batch
            if not full and not self._closed:
                # let more events gather; a lone event still arrives within `interval`
                with self._cond:
                    self._cond.wait_for(
                        lambda: self._closed or len(self._buf) >= self._max_batch,
                        timeout=self._interval,
                    )
            with self._cond:
                batch, self._buf = self._buf, []
            if batch:
                self._deliver(batch)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is buffered, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)
