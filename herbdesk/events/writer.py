"""Append-only JSONL writer: each line written whole and flushed before the next event."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO, Any

import orjson

from herbdesk.events.codec import encode
from herbdesk.events.types import Event


class JsonlAppender:
    """Appends JSON objects as lines to a file, flushing each one; thread-safe.

    If the file ends with a torn line (a crash mid-write), a newline is added first so the
    next record starts on a line of its own and readers lose only the torn one.
    """

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        needs_newline = False
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                needs_newline = fh.read(1) != b"\n"
        self._fh: IO[bytes] = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        if needs_newline:
            self._fh.write(b"\n")
            self._fh.flush()

    def write_bytes(self, line: bytes) -> None:
        """Write one already-encoded line (ending in a newline) and flush it."""
        with self._lock:
            self._fh.write(line)
            self._fh.flush()
            if self._fsync:
                os.fsync(self._fh.fileno())

    def write_obj(self, obj: Any) -> None:
        """Encode one object as a JSON line and append it."""
        self.write_bytes(orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE))

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()


class EventLogWriter(JsonlAppender):
    """The run's events.jsonl."""

    def write_event(self, event: Event) -> None:
        self.write_bytes(encode(event))


def last_seq(path: Path) -> int:
    """Highest `seq` in an existing log (0 if none), so a resumed run continues the numbering."""
    from herbdesk.events.reader import iter_events

    best = 0
    if Path(path).exists():
        for ev in iter_events(path):
            best = max(best, ev.seq)
    return best
