"""The event bus: every emitted event is appended to the log first, then handed to consumers.

Consumers run synchronously on the emitting thread, one event at a time (a lock orders them),
so a checkpoint decided in a consumer is in force before the emitting worker takes new work.
An event emitted from inside a consumer is logged at once and dispatched after the current one,
so every consumer sees events in log order. A consumer that raises is isolated: the failure
becomes a `consumer.error` event and the other consumers still run.
"""

from __future__ import annotations

import threading
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from herbdesk.common.fsnames import fs_text, json_safe
from herbdesk.events.types import Event, EventType, utc_now_iso

Handler = Callable[[Event], None]


class Emitter(Protocol):
    """What per-specimen code emits through: an EventBus, or a Redis event stream."""

    def emit(
        self,
        event_type: str,
        *,
        specimen_id: str | None = None,
        sequence: int | None = None,
        data: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
    ) -> Any: ...


class EventSink(Protocol):
    """Somewhere events are durably appended (the run's events.jsonl)."""

    def write_event(self, event: Event) -> None: ...


class EventBus:
    """subscribe/emit for one run; assigns run_id, seq and timestamp."""

    def __init__(self, run_id: str, sink: EventSink | None = None, start_seq: int = 0) -> None:
        self.run_id = fs_text(run_id)
        self._sink = sink
        self._seq = start_seq
        self._lock = threading.RLock()
        self._handlers: list[tuple[str, Handler]] = []
        self._pending: deque[Event] = deque()
        self._dispatching = False

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def lock(self) -> threading.RLock:
        """Held while an event is written and its consumers run (re-entrant): a caller holding
        it sees no event, and no consumer's reaction to one (a halt), happen meanwhile."""
        return self._lock

    def subscribe(self, handler: Handler, name: str | None = None) -> None:
        """Add a consumer; it receives every event emitted after this call."""
        with self._lock:
            label = name or str(getattr(handler, "__qualname__", repr(handler)))
            self._handlers.append((label, handler))

    def unsubscribe(self, handler: Handler) -> None:
        with self._lock:
            self._handlers = [(n, h) for n, h in self._handlers if h != handler]

    def emit(
        self,
        event_type: str,
        *,
        specimen_id: str | None = None,
        sequence: int | None = None,
        data: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
    ) -> Event:
        """Build, append and dispatch one event. Raises only if the log cannot be written."""
        with self._lock:
            self._seq += 1
            event = Event(
                event_type=event_type,
                run_id=self.run_id,
                seq=self._seq,
                timestamp=utc_now_iso(),
                specimen_id=specimen_id,
                sequence=sequence,
                # a file name that is not UTF-8 is written as \xNN (herbdesk.common.fsnames), in
                # the log and in what consumers see alike
                data=json_safe(dict(data or {})),
                metrics=dict(metrics) if metrics is not None else None,
            )
            if self._sink is not None:
                try:
                    self._sink.write_event(event)
                except BaseException:  # not logged: its number goes to the next event
                    self._seq -= 1
                    raise
            self._pending.append(event)
            if not self._dispatching:
                self._drain()
            return event

    def _drain(self) -> None:
        self._dispatching = True
        try:
            while self._pending:
                event = self._pending.popleft()
                for name, handler in list(self._handlers):
                    try:
                        handler(event)
                    except Exception as exc:  # isolate: one broken consumer never stops a run
                        if event.event_type == EventType.CONSUMER_ERROR:
                            continue  # never loop on a consumer that fails on its own reports
                        self.emit(
                            EventType.CONSUMER_ERROR,
                            data={
                                "consumer": name,
                                "on_event": event.event_type,
                                "on_seq": event.seq,
                                "error": f"{type(exc).__name__}: {exc}",
                                "traceback": traceback.format_exc(limit=5),
                            },
                        )
        finally:
            self._dispatching = False
