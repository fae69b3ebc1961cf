"""Run control shared by the pipeline, its consumers and its front-ends (CLI, app worker).

Halting is an explicit decision recorded here (first reason wins), never an exception thrown
through the event bus. Workers check it before taking each new specimen.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

USER_STOP = "stopped by the user"


@dataclass(frozen=True)
class HaltDecision:
    reason: str
    message: str


class RunControl:
    """Thread-safe stop/halt/pause flags for one run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._halt: HaltDecision | None = None
        self._cancelled = threading.Event()
        self._cancel_message = USER_STOP
        self._stop = threading.Event()  # set by halt and cancel: cuts sleeps short
        self._running = threading.Event()
        self._running.set()

    def halt(self, reason: str, message: str) -> bool:
        """Ask the run to stop for a reason; returns False if a halt was already decided."""
        with self._lock:
            if self._halt is not None:
                return False
            self._halt = HaltDecision(reason, message)
        self._stop.set()
        self._running.set()  # a paused run must wake up to stop
        return True

    @property
    def halted(self) -> HaltDecision | None:
        return self._halt

    def cancel(self, message: str = USER_STOP) -> None:
        """Graceful stop: in-flight specimens finish, no new ones start. `message` says who
        stopped it, for the run's end event (the first one asked counts): the user, or a
        scripted exit or a signal, which must not be recorded as the user's doing."""
        with self._lock:
            if not self._cancelled.is_set():
                self._cancel_message = message
                self._cancelled.set()
        self._stop.set()
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def cancel_message(self) -> str:
        """Who stopped the run (see cancel)."""
        return self._cancel_message

    @property
    def should_stop(self) -> bool:
        return self._halt is not None or self._cancelled.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_if_paused(self, timeout: float | None = None) -> bool:
        """Block while paused; True when free to go on."""
        return self._running.wait(timeout)

    def sleep(self, seconds: float) -> bool:
        """Sleep that a stop cuts short; returns False if the run was stopped meanwhile."""
        return not self._stop.wait(seconds)
