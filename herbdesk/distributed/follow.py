"""Following a run's event stream (XREAD BLOCK), with an optional local mirror.

`RedisFollower` has TailFollower's interface (start/stop/offset/stats/state/mode/caught_up,
`on_events`/`on_status` callbacks on its own thread), so `herbdesk tail`, the desktop app's
TailSource and `herbdesk run --broker` fold a Redis run through the same RunState as a file.

The mirror writes the run directory a local run would have: each finished specimen's record
is appended to raw.jsonl (from the results hash) before its event reaches events.jsonl, so the
mirror keeps the rule that an event never claims what the disk does not hold.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from herbdesk.distributed.broker import RedisRun, event_from_entry
from herbdesk.distributed.keys import connect, redact_url
from herbdesk.events.codec import BadLine
from herbdesk.events.tail import TailStats, TailStatus
from herbdesk.events.types import FINISHED_SPECIMEN_TYPES, TERMINAL_EVENT_TYPES, Event
from herbdesk.events.writer import EventLogWriter, last_seq
from herbdesk.extraction import runfiles
from herbdesk.extraction.results import ResultsWriter

OnEvents = Callable[[list[Event]], None]
OnStatus = Callable[[TailStatus], None]
CONNECTING, FOLLOWING, RECONNECTING, STOPPED = "connecting", "following", "reconnecting", "stopped"


class RunMirror:
    """Appends a followed run to a local run directory (events.jsonl, raw.jsonl, run.json).

    A lock file keeps two mirrors (say `herbdesk run --broker` and `herbdesk tail` in the same
    folder) from interleaving; the second one follows without writing. Events already in
    events.jsonl (by seq) are skipped, so re-attaching continues the mirror.
    """

    def __init__(self, run_dir: Path, run: RedisRun) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.run = run
        self._lock_fh: IO[bytes] | None = open(self.run_dir / ".mirror.lock", "ab")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_fh.close()
            self._lock_fh = None
        self.active = self._lock_fh is not None
        self._events: EventLogWriter | None = None
        self._results: ResultsWriter | None = None
        self._last = 0
        if self.active:
            path = self.run_dir / runfiles.EVENTS
            self._last = last_seq(path)
            self._events = EventLogWriter(path)
            self._results = ResultsWriter(self.run_dir)
            self.write_run_json("running")

    def write(self, events: list[Event]) -> None:
        if self._events is None or self._results is None:
            return
        for ev in events:
            if ev.seq <= self._last:
                continue
            if ev.event_type in FINISHED_SPECIMEN_TYPES and ev.specimen_id:
                rec = self.run.stored_record(ev.specimen_id)
                if rec is not None:
                    self._results.write(rec)
            self._events.write_event(ev)
            self._last = ev.seq
            if ev.event_type in TERMINAL_EVENT_TYPES:
                d = ev.data
                self.write_run_json(
                    str(d.get("status") or "failed"),
                    reason=d.get("reason"),
                    message=d.get("message"),
                    metrics=ev.metrics,
                )

    def write_run_json(self, status: str, **extra: Any) -> None:
        m = self.run.manifest
        runfiles.record_run(
            self.run_dir,
            self.run.run_id,
            status,
            m.get("started_at"),
            m.get("config") or {},
            broker=m.get("broker"),
            distributed=True,
            **extra,
        )

    def close(self) -> None:
        for f in (self._results, self._events):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        if self._lock_fh is not None:
            self._lock_fh.close()


class RedisFollower:
    """Follows `herbdesk:run:<id>:events` on its own thread; `offset` is the last seq seen."""

    def __init__(
        self,
        broker_url: str,
        run_id: str,
        on_events: OnEvents,
        *,
        on_status: OnStatus | None = None,
        from_end: bool = False,
        mirror_dir: Path | None = None,
        block_ms: int = 500,
        client: Any = None,
    ) -> None:
        self.broker_url = broker_url
        self.source = f"{redact_url(broker_url)}/{run_id}"
        self.run_id = run_id
        self._on_events = on_events
        self._on_status = on_status
        self._from_end = from_end
        self.mirror_dir = mirror_dir
        self.mirror: RunMirror | None = None
        self.block_ms = block_ms
        self.mode = "redis"
        self.state = CONNECTING
        self.stats = TailStats()
        self._client = client
        self._last_id = "$" if from_end else "0-0"
        self._seq = 0
        self._caught_up = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def offset(self) -> int:
        return self._seq

    @property
    def caught_up(self) -> bool:
        return self._caught_up

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("RedisFollower already started")
        self._thread = threading.Thread(target=self._run, name="herbdesk-redis-tail", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _status(self, state: str, message: str = "", change: str = "") -> None:
        self.state = state
        if self._on_status is not None:
            self._on_status(TailStatus(state, self.source, self._seq, message, change))

    def _run(self) -> None:
        import redis

        try:
            while not self._stop.is_set():
                try:
                    self._follow()
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    self.stats.reconnects += 1
                    self._status(RECONNECTING, redact_url(str(exc)))
                    self._stop.wait(1.0)
                except redis.RedisError as exc:  # e.g. AUTH refused: say so and give up
                    self._status(STOPPED, redact_url(f"{type(exc).__name__}: {exc}"), "error")
                    return
        finally:
            if self.mirror is not None:
                self.mirror.close()
            if self.state != STOPPED:
                self._status(STOPPED)

    def _follow(self) -> None:
        if self._client is None:
            self._client = connect(self.broker_url, socket_timeout=self.block_ms / 1000 + 10)
        r = self._client
        r.ping()
        run = RedisRun(r, self.run_id)
        if self.mirror_dir is not None and self.mirror is None:
            self.mirror = RunMirror(self.mirror_dir, run)
        self._status(FOLLOWING, "" if run.exists() else "run not on the broker yet")
        stream = run.keys.events
        while not self._stop.is_set():
            resp = r.xread({stream: self._last_id}, count=4096, block=self.block_ms)
            if not resp:
                self._caught_up = True
                continue
            batch: list[Event] = []
            for _, entries in resp:
                for entry_id, fields in entries:
                    self._last_id = entry_id
                    self.stats.lines += 1
                    try:
                        ev = event_from_entry(fields)
                    except BadLine as exc:
                        self.stats.record_bad(self.stats.lines, 0, str(exc), b"")
                        continue
                    self.stats.events += 1
                    self._seq = ev.seq
                    batch.append(ev)
            self._caught_up = len(batch) < 4096
            if batch:
                if self.mirror is not None:
                    self.mirror.write(batch)
                self._on_events(batch)


MIRROR_ENV = "HERBDESK_MIRROR_DIR"


def follower_for_target(
    target: str,
    on_events: OnEvents,
    on_status: OnStatus | None = None,
    *,
    from_end: bool = False,
    mirror_root: Path | None = None,
) -> RedisFollower | None:
    """A RedisFollower for `redis://host:port/DB/RUN_ID` (mirrored to <root>/<run_id>, root
    from $HERBDESK_MIRROR_DIR or ./runs), or None when the target is not a broker URL."""
    import os

    from herbdesk.distributed.keys import is_broker_url, parse_run_target

    if not is_broker_url(target):
        return None
    broker, run_id = parse_run_target(target)  # ValueError: a bad target
    root = mirror_root or Path(os.environ.get(MIRROR_ENV) or "runs")
    return RedisFollower(
        broker, run_id, on_events, on_status=on_status, from_end=from_end, mirror_dir=root / run_id
    )
