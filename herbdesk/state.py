"""RunState: the one Qt-free fold of events into what every view shows.

Live runs, opened logs, tailed logs and distributed runs all go through `apply`, so a replayed
log and the live view cannot disagree. Per-specimen data is kept in columns (lists indexed by
row), not one object per event, and the fold records which rows changed so a view can update
incrementally on its own timer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from herbdesk.events.types import TERMINAL_EVENT_TYPES, Event, EventType
from herbdesk.monitor.metrics import ROLLING_WINDOW

STATUS_QUEUED = "queued"
STATUS_PROCESSING = "processing"
STATUS_RETRYING = "retrying"
STATUS_COMPLETED = "completed"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"


def parse_ts(ts: str) -> float | None:
    """Epoch seconds from ISO-8601; a timestamp without a zone is taken as UTC."""
    if not ts:
        return None
    try:
        dt = datetime.fromisoformat(ts)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


class RunState:
    """Columns per specimen, counters, series for plots, checkpoints and warnings."""

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.status = "pending"  # pending | running | completed | failed | cancelled
        self.paused = False
        self.reason: str | None = None
        self.message = ""
        self.total: int | None = None
        self.config: dict[str, Any] = {}
        self.preflight: list[dict[str, Any]] = []
        self.events = 0
        self.bad_lines = 0
        self.last_seq = 0
        self.seq_gaps = 0
        self.first_ts: str | None = None
        self.last_ts: str | None = None
        self.type_counts: dict[str, int] = {}
        # per specimen (row) columns
        self.row_of: dict[str, int] = {}
        self.specimen_id: list[str] = []
        self.image: list[str] = []
        self.path: list[str] = []
        self.row_status: list[str] = []
        self.sequence: list[int | None] = []
        self.fields_extracted: list[int] = []
        self.confidence: list[float | None] = []
        self.time_ms: list[float | None] = []
        self.cost_usd: list[float | None] = []
        self.error: list[str] = []
        self.attempts: list[int] = []
        # counters over rows (unique specimens)
        self.succeeded = 0
        self.failed = 0
        self.skipped = 0
        self.in_flight = 0
        self.tokens = 0
        self.cost_total = 0.0
        self._conf_sum = 0.0
        self._conf_n = 0
        self._time_sum = 0.0
        self._time_n = 0
        # series over finish events (x = finish ordinal), for the plots
        self.finish_x: list[int] = []
        self.cum_rate: list[float] = []
        self.roll_rate: list[float] = []
        self.finish_epoch: list[float] = []
        self.finish_conf: list[float] = []
        self._recent: deque[bool] = deque(maxlen=ROLLING_WINDOW)
        self._finishes = 0
        self._finish_ok = 0
        self.started_epoch: float | None = None
        self.checkpoints: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.consumer_errors: list[dict[str, Any]] = []
        self.latest_metrics: dict[str, Any] = {}
        self.last_finished_row: int | None = None
        # change tracking for views: rows added since / rows changed since last take
        self._changed: set[int] = set()

    # ------------------------------------------------------------------ folding
    def apply_batch(self, events: Iterable[Event]) -> None:
        for ev in events:
            self.apply(ev)

    def apply(self, ev: Event) -> None:
        self.events += 1
        if ev.seq:
            if self.last_seq and ev.seq > self.last_seq + 1:
                self.seq_gaps += ev.seq - self.last_seq - 1
            self.last_seq = max(self.last_seq, ev.seq)
        if ev.timestamp:
            if self.first_ts is None:
                self.first_ts = ev.timestamp
            self.last_ts = ev.timestamp
        et = ev.event_type
        self.type_counts[et] = self.type_counts.get(et, 0) + 1
        if ev.run_id and self.run_id is None:
            self.run_id = ev.run_id
        d = ev.data
        if et == EventType.EXTRACTION_STARTED:
            self.status = "running"
            self.reason, self.message = None, ""
            if d.get("total") is not None:
                self.total = int(d["total"])
            if isinstance(d.get("config"), dict):
                self.config = d["config"]
            if self.started_epoch is None:
                self.started_epoch = parse_ts(ev.timestamp)
        elif et == EventType.EXTRACTION_PAUSED:
            self.paused = True
        elif et == EventType.EXTRACTION_RESUMED:
            self.paused = False
        elif et == EventType.PREFLIGHT_COMPLETED:
            self.preflight = list(d.get("checks") or [])
        elif et in (EventType.SPECIMEN_QUEUED, EventType.SPECIMEN_SKIPPED):
            row = self._row(ev)
            if et == EventType.SPECIMEN_SKIPPED and self.row_status[row] not in (
                STATUS_COMPLETED,
                STATUS_FAILED,
            ):
                self._set_status(row, STATUS_SKIPPED)
                self.error[row] = str(d.get("reason") or "")
        elif et == EventType.SPECIMEN_PROCESSING:
            self._set_status(self._row(ev), STATUS_PROCESSING)
        elif et == EventType.SPECIMEN_RETRYING:
            row = self._row(ev)
            self._set_status(row, STATUS_RETRYING)
            self.error[row] = _error_str(d.get("error"))
        elif et in (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED):
            self._apply_finished(ev)
        elif et == EventType.VALIDATION_CHECKPOINT:
            self.checkpoints.append(dict(d))
        elif et == EventType.VALIDATION_WARNING:
            self.warnings.append(dict(d))
        elif et == EventType.CONSUMER_ERROR:
            self.consumer_errors.append(dict(d))
        elif et in TERMINAL_EVENT_TYPES:
            self.paused = False
            self.status = {
                EventType.EXTRACTION_COMPLETED: "completed",
                EventType.EXTRACTION_FAILED: "failed",
                EventType.EXTRACTION_CANCELLED: "cancelled",
            }[et]
            self.reason = d.get("reason")
            self.message = str(d.get("message") or "")
            for row, st in enumerate(self.row_status):  # nothing is in flight after the end
                if st in (STATUS_PROCESSING, STATUS_RETRYING):
                    self._set_status(row, STATUS_QUEUED)
        if ev.metrics:
            self.latest_metrics = dict(ev.metrics)

    def _apply_finished(self, ev: Event) -> None:
        d = ev.data
        ok = ev.event_type == EventType.SPECIMEN_COMPLETED and d.get("success", True) is not False
        row = self._row(ev)
        self.last_finished_row = row
        self._set_status(row, STATUS_COMPLETED if ok else STATUS_FAILED)
        self.sequence[row] = ev.sequence
        self.fields_extracted[row] = int(d.get("fields_extracted") or 0)
        conf = d.get("confidence")
        self.confidence[row] = float(conf) if conf is not None else None
        t = d.get("processing_time_ms")
        self.time_ms[row] = float(t) if t is not None else None
        cost = d.get("cost_usd")
        self.cost_usd[row] = float(cost) if cost is not None else None
        self.error[row] = "" if ok else _error_str(d.get("error"))
        self.attempts[row] = int(d.get("attempts") or 1)
        self.tokens += int(d.get("tokens") or 0)
        self.cost_total += float(cost or 0.0)
        if conf is not None and ok:
            self._conf_sum += float(conf)
            self._conf_n += 1
            self.finish_conf.append(float(conf))
        if t is not None:
            self._time_sum += float(t)
            self._time_n += 1
        self._finishes += 1
        self._finish_ok += ok
        self._recent.append(ok)
        self.finish_x.append(self._finishes)
        self.cum_rate.append(self._finish_ok / self._finishes)
        self.roll_rate.append(sum(self._recent) / len(self._recent))
        epoch = parse_ts(ev.timestamp)
        self.finish_epoch.append(epoch if epoch is not None else float("nan"))

    def _row(self, ev: Event) -> int:
        sid = ev.specimen_id or f"#{ev.sequence or ev.seq}"
        row = self.row_of.get(sid)
        d = ev.data
        if row is None:
            row = len(self.specimen_id)
            self.row_of[sid] = row
            self.specimen_id.append(sid)
            self.image.append(str(d.get("image") or ""))
            self.path.append(str(d.get("path") or ""))
            self.row_status.append(STATUS_QUEUED)
            self.sequence.append(None)
            self.fields_extracted.append(0)
            self.confidence.append(None)
            self.time_ms.append(None)
            self.cost_usd.append(None)
            self.error.append("")
            self.attempts.append(0)
        else:
            if d.get("image") and not self.image[row]:
                self.image[row] = str(d["image"])
            if d.get("path") and not self.path[row]:
                self.path[row] = str(d["path"])
        self._changed.add(row)
        return row

    def _set_status(self, row: int, status: str) -> None:
        old = self.row_status[row]
        if old == status:
            return
        for st, delta in ((old, -1), (status, 1)):
            if st == STATUS_COMPLETED:
                self.succeeded += delta
            elif st == STATUS_FAILED:
                self.failed += delta
            elif st == STATUS_SKIPPED:
                self.skipped += delta
            elif st in (STATUS_PROCESSING, STATUS_RETRYING):
                self.in_flight += delta
        self.row_status[row] = status

    # ------------------------------------------------------------------ reading
    @property
    def rows(self) -> int:
        return len(self.specimen_id)

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.processed if self.processed else 0.0

    @property
    def avg_confidence(self) -> float | None:
        return self._conf_sum / self._conf_n if self._conf_n else None

    @property
    def avg_time_ms(self) -> float | None:
        return self._time_sum / self._time_n if self._time_n else None

    def elapsed_s(self, now: float | None = None) -> float:
        """Seconds from the first start to now (running) or to the last event (ended)."""
        if self.started_epoch is None:
            return 0.0
        end = (
            now if (now is not None and self.status == "running") else parse_ts(self.last_ts or "")
        )
        return max(0.0, (end or self.started_epoch) - self.started_epoch)

    def throughput_per_min(self, now: float | None = None) -> float:
        el = self.elapsed_s(now)
        return self._finishes / el * 60.0 if el > 0 else 0.0

    def eta_s(self, now: float | None = None) -> float | None:
        if self.total is None or self.status != "running":
            return None
        per_min = self.throughput_per_min(now)
        remaining = max(0, self.total - self.processed - self.skipped)
        return remaining / per_min * 60.0 if per_min > 0 else None

    def _summary_status(self) -> str:
        if self.status != "pending":
            return self.status
        # results without run events (a raw.jsonl alone): we cannot know how the run ended
        return "unknown" if self.events else "pending"

    def take_changed_rows(self) -> set[int]:
        """Rows touched since the last call (for incremental view updates)."""
        changed, self._changed = self._changed, set()
        return changed

    def summary(self) -> dict[str, Any]:
        """What `herbdesk summary` prints: a stable, documented shape."""
        return {
            "run_id": self.run_id,
            "status": self._summary_status(),
            "reason": self.reason,
            "message": self.message,
            "total": self.total,
            "processed": self.processed,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            "success_rate": round(self.success_rate, 4),
            "checkpoints": [
                {
                    "checkpoint": c.get("checkpoint"),
                    "status": c.get("status"),
                    "success_rate": c.get("success_rate"),
                }
                for c in self.checkpoints
            ],
            "warnings": [dict(w) for w in self.warnings],
            "tokens": self.tokens,
            "cost_usd": round(self.cost_total, 6),
            "bad_lines": self.bad_lines,
            "events": self.events,
            "seq_gaps": self.seq_gaps,
            "first_timestamp": self.first_ts,
            "last_timestamp": self.last_ts,
        }


def _error_str(err: Any) -> str:
    if isinstance(err, dict):
        kind, msg = err.get("kind"), err.get("message")
        return f"{kind}: {msg}" if kind else str(msg or "")
    return str(err or "")
