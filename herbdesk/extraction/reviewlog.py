"""Appending review verdicts to a run's events.jsonl without a second writer.

The log is never rewritten: a verdict is one more line, its `seq` after the log's last.
Who may append:
- a run live in this process: its own bus (`BusAppender`), so the verdict is numbered and
  written under the same lock as the run's events and two writers never interleave;
- a run nobody writes (ended, or its writer gone): this process, holding the run's
  `run.lock` for as long as the review is open (`LogAppender`), so a `--resume` or a
  second review cannot start writing meanwhile;
- a run another process still writes (a tailed log): nobody here. `LogAppender.open`
  refuses with a message naming the writer; once that writer has ended or died, the lock is
  free and the review can append.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Protocol

import orjson

from herbdesk.events.bus import EventBus
from herbdesk.events.layout import EVENTS
from herbdesk.events.reader import head_objects
from herbdesk.events.types import TERMINAL_EVENT_TYPES, Event
from herbdesk.events.writer import EventLogWriter, last_seq
from herbdesk.extraction.liveness import DEFAULT_STALE_S
from herbdesk.extraction.runlock import LOCK, RunDirInUseError, RunLock, writer_status
from herbdesk.quality.review import TYPE_OF_VERDICT, verdict_data


class ReviewRefused(Exception):
    """Verdicts cannot be appended to this log now; the message says why and what to do."""


class ReviewAppender(Protocol):
    def append(
        self, specimen_id: str, term: str, verdict: str, extracted: str, value: str, sample: str
    ) -> Event: ...

    def close(self) -> None: ...


class LiveRun(Protocol):
    """What BusAppender needs of a running Pipeline."""

    bus: EventBus
    log_closed: bool


def _emit(
    bus: EventBus,
    specimen_id: str,
    term: str,
    verdict: str,
    extracted: str,
    value: str,
    sample: str,
) -> Event:
    data = verdict_data(term, verdict, extracted, value, sample)
    return bus.emit(TYPE_OF_VERDICT[verdict], specimen_id=specimen_id, data=data)


class BusAppender:
    """Verdicts on a run live in this process, through the run's own bus."""

    def __init__(self, run: LiveRun) -> None:
        self.run = run

    def append(
        self, specimen_id: str, term: str, verdict: str, extracted: str, value: str, sample: str
    ) -> Event:
        with self.run.bus.lock:  # the pipeline closes its log under this lock
            if self.run.log_closed:
                raise ReviewRefused("the run has just ended: reopen the review to go on")
            return _emit(self.run.bus, specimen_id, term, verdict, extracted, value, sample)

    def close(self) -> None:
        pass  # the run owns its bus and log


class LogAppender:
    """Verdicts on a run nobody else writes, appended by this process holding run.lock."""

    def __init__(
        self,
        run_dir: Path,
        lock: RunLock,
        bus: EventBus,
        writer: EventLogWriter,
        previous: tuple[bytes, float] | None = None,
    ) -> None:
        self.run_dir = run_dir
        self._lock: RunLock | None = lock
        self._writer = writer
        self._previous = previous
        self.bus = bus

    @classmethod
    def open(cls, run_dir: Path) -> LogAppender:
        """Take the run directory for appending; ReviewRefused while another writer has it."""
        run_dir = Path(run_dir)
        log = run_dir / EVENTS
        if not log.is_file():
            raise ReviewRefused(
                f"{run_dir} has no {EVENTS}: verdicts are recorded in a herbdesk run's event "
                "log (a raw.jsonl on its own cannot take them)"
            )
        if not os.access(log, os.W_OK) or not os.access(run_dir, os.W_OK):
            raise ReviewRefused(f"{log} is not writable here: verdicts cannot be recorded")
        ws = writer_status(run_dir)
        if (
            ws.state == "remote"
            and ws.heartbeat_age_s is not None
            and ws.heartbeat_age_s < DEFAULT_STALE_S
            and not _ended(log)
        ):
            raise ReviewRefused(
                f"the run is still being written by herbdesk {ws.describe()} (its heartbeat "
                f"is {ws.heartbeat_age_s:.0f} s old): review it there, or once it has ended"
            )
        previous = _lock_file(run_dir)
        try:
            lock = RunLock.acquire(run_dir)
        except RunDirInUseError as exc:
            h = exc.holder
            who = (
                f"herbdesk pid {h.get('pid')} on {h.get('host')}"
                if h.get("pid")
                else "another herbdesk process"
            )
            raise ReviewRefused(
                f"the run is still being written by {who} (or reviewed there): two writers "
                "would interleave in its log, so verdicts are not recorded here; review it "
                "in the window that runs it, or once that process has ended"
            ) from None
        except OSError as exc:
            raise ReviewRefused(f"cannot take {run_dir} for the review: {exc}") from exc
        try:
            writer = EventLogWriter(log)
            bus = EventBus(_run_id(log) or run_dir.name, writer, start_seq=last_seq(log))
        except OSError as exc:
            lock.release()
            raise ReviewRefused(f"cannot append to {log}: {exc}") from exc
        return cls(run_dir, lock, bus, writer, previous)

    def append(
        self, specimen_id: str, term: str, verdict: str, extracted: str, value: str, sample: str
    ) -> Event:
        if self._lock is None:
            raise ReviewRefused("the review's log is closed")
        try:
            return _emit(self.bus, specimen_id, term, verdict, extracted, value, sample)
        except OSError as exc:  # a full disk: said, nothing half-recorded counts
            raise ReviewRefused(f"cannot append to {self.run_dir / EVENTS}: {exc}") from exc

    def close(self) -> None:
        """Let other writers in again (a resume, another review)."""
        self._writer.close()
        if self._lock is not None:
            self._restore_lock_file()
            self._lock.release()
            self._lock = None

    def _restore_lock_file(self) -> None:
        """Put back the run's writer record and heartbeat time, still holding the lock: a
        review is no writer of the run, so `tail` and `summary` must go on judging the
        run's own writer (dead, or silent since) and not this process."""
        if self._previous is None:
            return
        body, mtime = self._previous
        path = self.run_dir / LOCK
        with contextlib.suppress(OSError):
            with open(path, "r+b") as fh:
                fh.truncate(0)
                fh.write(body)
            os.utime(path, (mtime, mtime))


def _lock_file(run_dir: Path) -> tuple[bytes, float] | None:
    """run.lock's content and mtime before the review takes it (None: there was none)."""
    path = run_dir / LOCK
    try:
        return path.read_bytes(), path.stat().st_mtime
    except OSError:
        return None


def _run_id(log: Path) -> str:
    first = next(head_objects(log, 20), {})
    return str(first.get("run_id") or "")


def _ended(log: Path, tail_bytes: int = 65536) -> bool:
    """Whether the log's last invocation ended (a terminal event near its end, none of the
    run's own events after it but alerts and verdicts)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - tail_bytes))
            lines = fh.read().splitlines()
    except OSError:
        return False
    for line in reversed(lines):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        et = obj.get("event_type") if isinstance(obj, dict) else None
        if not isinstance(et, str) or et.startswith(("alert.", "review.")):
            continue
        return et in TERMINAL_EVENT_TYPES
    return False
