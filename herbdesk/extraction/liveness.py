"""Is an unfinished run still being written? For `tail`, `summary` and the window.

A writer on this host is known dead at once (its pid from run.lock / run.json is gone). One on
another host can only be judged by silence, measured from the log's last write (the file's
mtime where the run directory is visible, else the newest event's timestamp) or from the
writer's heartbeat (run.lock's mtime, touched every 30 s), whichever is later; never from when
the reader happened to open the log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from herbdesk.events.layout import EVENTS
from herbdesk.events.types import Event, EventType, parse_ts
from herbdesk.extraction.runlock import WriterStatus, writer_status
from herbdesk.monitor.projection import duration

# The only copy, for `tail`, `summary` and the window: a run silent this long has probably died.
DEFAULT_STALE_S = 600.0


def log_silence_s(
    run_dir: Path | None, last_timestamp: str | None, now: float | None = None
) -> float | None:
    """Seconds since the run's log was last written (None if nothing tells)."""
    now = time.time() if now is None else now
    if run_dir is not None:
        try:
            return max(0.0, now - (Path(run_dir) / EVENTS).stat().st_mtime)
        except OSError:
            pass
    ts = parse_ts(last_timestamp or "")
    return max(0.0, now - ts) if ts is not None else None


@dataclass(frozen=True)
class Verdict:
    state: str  # "dead" | "stalled"
    message: str


class RunWatch:
    """Follows the events of an unfinished run and says when it is dead or stalled."""

    def __init__(self, run_dir: Path | None, stale_after_s: float = DEFAULT_STALE_S) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.stale_after_s = stale_after_s
        self._last_ts: str | None = None
        self._paused = False
        self._allowance = 0.0  # a retry announced to wait this long is not silence
        self._dead_seen = False

    def saw(self, ev: Event) -> None:
        self._last_ts = ev.timestamp or self._last_ts
        t = ev.event_type
        if t == EventType.EXTRACTION_PAUSED:
            self._paused = True
        elif t in (EventType.EXTRACTION_RESUMED, EventType.EXTRACTION_STARTED):
            self._paused = False
        delay = ev.data.get("delay_s") if t == EventType.SPECIMEN_RETRYING else None
        self._allowance = float(delay) if isinstance(delay, int | float) and delay > 0 else 0.0

    def writer(self) -> WriterStatus | None:
        return writer_status(self.run_dir) if self.run_dir is not None else None

    def check(self, now: float | None = None) -> Verdict | None:
        """Dead (a local writer gone), stalled (silent past the limit), or None.

        Dead is said on the second check in a row that finds the writer gone (call it
        repeatedly, as a follower does).
        """
        ws = self.writer()
        where = f" in {self.run_dir}" if self.run_dir is not None else ""
        dead = ws is not None and ws.state == "dead"
        # twice in a row: a resume taking the directory over is briefly named by the old record
        confirmed, self._dead_seen = dead and self._dead_seen, dead
        if ws is not None and confirmed:
            return Verdict(
                "dead",
                f"the run's writer ({ws.describe()}) is gone and the run never ended{where}; "
                f"continue it with: herbdesk run --resume {self.run_dir}",
            )
        if dead or self._paused:
            return None  # dead: confirmed next check; paused: quiet on purpose
        silent = log_silence_s(self.run_dir, self._last_ts, now)
        if ws is not None and ws.heartbeat_age_s is not None and ws.state != "unknown":
            silent = ws.heartbeat_age_s if silent is None else min(silent, ws.heartbeat_age_s)
        if silent is None or silent <= self.stale_after_s + self._allowance:
            return None
        who = f" (writer {ws.describe()})" if ws is not None and ws.holder else ""
        return Verdict(
            "stalled",
            f"nothing written for {duration(silent)}, more than the "
            f"{duration(self.stale_after_s)} allowed: the run{who} has probably died "
            "or hung (killed, machine asleep or gone, disk full)",
        )
