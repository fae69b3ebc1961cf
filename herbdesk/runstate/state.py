"""RunState: the one Qt-free fold of events into what every view shows.

Live runs, opened logs, tailed logs and distributed runs all go through `apply`, so a replayed
log and the live view cannot disagree. Per-specimen data is kept in columns (lists indexed by
row; the plot series in array('d')), not one object per event, and the fold records which rows
changed so a view can update incrementally on its own timer. Opened logs fold through
`chunks.apply_chunk`, which builds no Event for herbdesk lines: scanned blocks fold in
columns (fold_columns.py), the rest line by line into these same rules. The members those
folds share with this one are public and documented here; nothing else writes them.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from herbdesk.events.types import (
    REVIEW_TYPES,
    TERMINAL_EVENT_TYPES,
    Event,
    EventType,
    parse_ts,
)
from herbdesk.monitor import ending
from herbdesk.monitor.metrics import ROLLING_WINDOW
from herbdesk.monitor.projection import Moments, Projection, project
from herbdesk.quality.checks import judge_record
from herbdesk.quality.tally import QualityTally
from herbdesk.runstate.columns import NAN, ChangedRows, OptionalFloats, append_float, set_float
from herbdesk.runstate.terms import TermColumns
from herbdesk.runstate.values import count, error_text, num

STATUS_QUEUED = "queued"
STATUS_PROCESSING = "processing"
STATUS_RETRYING = "retrying"
STATUS_COMPLETED = "completed"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"


def judged(values: Any) -> dict[str, Any] | None:
    """The quality object of a finish's values that came without one (None: not values).

    Every fold path calls this for such finishes, so a raw.jsonl record or another writer's
    event is judged the same whichever path reads it."""
    return judge_record(values).to_data() if isinstance(values, Mapping) else None


class RunState:
    """Columns per specimen, counters, series for plots, checkpoints and warnings.

    Besides what views read, a few members are the fold's own running figures, public because
    the column fold (fold_columns.py) and the block fold (chunks.py) carry them on exactly as
    `apply` does: `row_index`/`indexed_rows` (ids indexed so far), `conf_sum`/`conf_n` and
    `time_sum`/`time_n` (running sums), `recent`/`recent_ok`/`finishes`/`finish_ok` (the rolling
    and cumulative success rate), `metrics_raw` (the newest metrics, not decoded yet) and
    `changed` (rows touched since views last looked); and the steps `row_for`, `set_status`,
    `count_status` and `apply_finished`. Only the folds write them.
    """

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.status = "pending"  # pending | running | completed | failed | cancelled
        self.paused = False
        self.pause_message = ""  # why the run paused itself (an API quota), if it said
        self._paused_for: set[str] = set()  # "user" (the app's Pause) and/or "quota"
        self.reason: str | None = None
        self.message = ""
        self.total: int | None = None
        self.config: dict[str, Any] = {}
        self.budget_usd: float | None = None  # the run's --budget, as last started or paused
        self.broker: str | None = None  # a distributed run's broker (redacted), as it said
        self.preflight: list[dict[str, Any]] = []
        self.events = 0
        self.bad_lines = 0
        self.last_seq = 0
        self.seq_gaps = 0
        self.first_ts: str | None = None
        self.last_ts: str | None = None
        self.type_counts: dict[str, int] = {}
        # per specimen (row) columns
        # specimen id -> row; rows the column fold appends are indexed on first use (`row_of`)
        self.row_index: dict[str, int] = {}
        self.indexed_rows = 0  # rows specimen_id[:indexed_rows] are in row_index
        self.specimen_id: list[str] = []
        self.image: list[str] = []
        self.path: list[str] = []
        self.row_status: list[str] = []
        self.sequence: list[int | None] = []
        self.fields_extracted: list[int] = []
        self.confidence = OptionalFloats()
        self.time_ms = OptionalFloats()
        self.cost_usd = OptionalFloats()
        self.error: list[str] = []
        self.attempts: list[int] = []
        # counters over rows (unique specimens)
        self.succeeded = 0
        self.failed = 0
        self.skipped = 0
        self.in_flight = 0
        self.tokens = 0
        self.cost_total = 0.0
        self.conf_sum = 0.0
        self.conf_n = 0
        self.time_sum = 0.0
        self.time_n = 0
        # series over finish events (x = finish ordinal), for the plots
        # (array('d'): 8 bytes a value instead of a pointer plus a float object; plots copy
        # them into numpy without a Python loop)
        self.finish_x: array[float] = array("d")
        self.cum_rate: array[float] = array("d")
        self.roll_rate: array[float] = array("d")
        self.finish_epoch: array[float] = array("d")
        self.finish_conf: array[float] = array("d")
        self.recent: deque[bool] = deque(maxlen=ROLLING_WINDOW)
        self.recent_ok = 0  # True values in _recent, kept as it slides
        self.finishes = 0
        self.finish_ok = 0
        self.started_epoch: float | None = None
        self.checkpoints: list[dict[str, Any]] = []
        # record quality (herbdesk/quality): per-row findings and the run's counts
        self.quality = QualityTally()
        self.quality_checkpoints: list[dict[str, Any]] = []
        self.gold: list[dict[str, Any]] = []
        # Darwin Core values per row, column-wise (terms.py): the last finish's `dwc`
        self.terms = TermColumns()
        self.verdict: str | None = None  # "passed" | "below_threshold" at a completed end
        self.verdict_message = ""
        self.warnings: list[dict[str, Any]] = []
        self.consumer_errors: list[dict[str, Any]] = []
        self.latest_metrics: dict[str, Any] = {}
        self.metrics_raw: bytes | None = None  # newer than latest_metrics, not decoded yet
        self.last_finished_row: int | None = None
        # change tracking for views: rows added since / rows changed since last take
        self.changed = ChangedRows()
        self._gaps_cache: tuple[int, Moments, Moments] | None = None

    @property
    def row_of(self) -> dict[str, int]:
        """Each specimen id's row.

        The column fold of a bulk load appends rows without this dict (it maps ids to rows
        by their scanned hash, checked against `specimen_id`); they are indexed here, in one
        pass, the first time anything asks. A headless `summary` never does.
        """
        if self.indexed_rows < len(self.specimen_id):
            start, self.indexed_rows = self.indexed_rows, len(self.specimen_id)
            new = range(start, self.indexed_rows)
            self.row_index.update(zip(self.specimen_id[start:], new, strict=True))
        return self.row_index

    # ------------------------------------------------------------------ folding
    def apply_batch(self, events: Iterable[Event]) -> None:
        for ev in events:
            self.apply(ev)

    def apply(self, ev: Event) -> None:
        self._fold(
            ev.event_type,
            ev.run_id,
            ev.seq,
            ev.timestamp,
            ev.specimen_id,
            ev.sequence,
            ev.data,
            ev.metrics,
        )

    def apply_object(self, obj: dict[str, Any]) -> bool:
        """Fold a decoded herbdesk event object without building an Event (bulk loads).

        Only objects whose fields already have their exact types take this path; anything
        else returns False untouched, and the caller goes through `codec.from_dict`, which
        converts or rejects it exactly as for a live event.
        """
        et = obj.get("event_type")
        data = obj.get("data") or {}
        metrics = obj.get("metrics")
        seq = obj.get("seq", 0)
        sequence = obj.get("sequence")
        sid = obj.get("specimen_id")
        run_id = obj.get("run_id") or ""
        ts = obj.get("timestamp") or ""
        sv = obj.get("schema_version", 1)
        if (
            type(et) is not str
            or type(data) is not dict
            or (metrics is not None and type(metrics) is not dict)
            or type(seq) is not int
            or not 0 <= seq < 2**63
            or (sequence is not None and type(sequence) is not int)
            or (sid is not None and type(sid) is not str)
            or type(run_id) is not str
            or type(ts) is not str
            or type(sv) is not int
        ):
            return False
        self._fold(et, run_id, seq, ts, sid, sequence, data, metrics)
        return True

    def _header(self, et: str, run_id: str, seq: int, timestamp: str) -> None:
        """What every event updates: counts, sequence gaps, first and last timestamps."""
        self.events += 1
        if seq:
            last = self.last_seq
            if last and seq > last + 1:
                self.seq_gaps += seq - last - 1
            if seq > last:
                self.last_seq = seq
        if timestamp and et not in REVIEW_TYPES:  # a review days later is not the run's time
            if self.first_ts is None:
                self.first_ts = timestamp
            self.last_ts = timestamp
        tc = self.type_counts
        tc[et] = tc.get(et, 0) + 1
        if run_id and self.run_id is None:
            self.run_id = run_id

    def _fold(
        self,
        et: str,
        run_id: str,
        seq: int,
        timestamp: str,
        specimen_id: str | None,
        sequence: int | None,
        d: Mapping[str, Any],
        metrics: Mapping[str, Any] | None,
    ) -> None:
        self._header(et, run_id, seq, timestamp)
        g = d.get
        if et == EventType.SPECIMEN_PROCESSING:  # the most frequent types first
            row = self.row_for(specimen_id, sequence, seq, g("image"), g("path"))
            self.set_status(row, STATUS_PROCESSING)
        elif et in (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED):
            self.apply_finished(
                et,
                timestamp,
                specimen_id,
                sequence,
                seq,
                g("image"),
                g("path"),
                g("success"),
                g("fields_extracted"),
                g("confidence"),
                g("processing_time_ms"),
                g("cost_usd"),
                g("error"),
                g("attempts"),
                g("tokens"),
            )
            q = g("quality")
            values = g("dwc")
            if q is None:  # a record read from a raw.jsonl, or a writer that judged nothing
                q = judged(values)
            ok = et == EventType.SPECIMEN_COMPLETED and g("success") is not False
            frow = self.last_finished_row
            assert frow is not None
            if q is not None or self.quality:
                self.quality.set(frow, q if ok else None)
            if values is not None or self.terms:
                self.terms.set_row(frow, values if ok else None)
        elif et == EventType.QUALITY_CHECKPOINT:
            self.quality_checkpoints.append(dict(d))
        elif et == EventType.QUALITY_GOLD:
            self.gold.append(dict(d))
        elif et == EventType.EXTRACTION_STARTED:
            self.status = "running"
            self.reason, self.message = None, ""
            total = num(d.get("total"))
            if total is not None:
                self.total = int(total)
            if isinstance(d.get("config"), dict):
                self.config = d["config"]
                self.budget_usd = num(self.config.get("budget_usd"))
            if isinstance(d.get("broker"), str):
                self.broker = d["broker"]
            if self.started_epoch is None:
                self.started_epoch = parse_ts(timestamp)
        elif et in (EventType.EXTRACTION_PAUSED, EventType.EXTRACTION_RESUMED):
            # a user's pause and a quota pause come and go independently: the run is paused
            # while either holds
            why = str(d.get("reason") or "user")
            if et == EventType.EXTRACTION_PAUSED:
                self._paused_for.add(why)
                if why != "user":
                    self.pause_message = str(d.get("message") or "")
                if why == "budget" and num(d.get("budget_usd")) is not None:
                    self.budget_usd = num(d.get("budget_usd"))
            else:
                self._paused_for.discard(why)
                if why != "user":
                    self.pause_message = ""
            self.paused = bool(self._paused_for)
        elif et == EventType.PREFLIGHT_COMPLETED:
            checks = d.get("checks")
            self.preflight = (
                [c for c in checks if isinstance(c, dict)] if isinstance(checks, list) else []
            )
        elif et in (EventType.SPECIMEN_QUEUED, EventType.SPECIMEN_SKIPPED):
            row = self.row_for(specimen_id, sequence, seq, g("image"), g("path"))
            if et == EventType.SPECIMEN_SKIPPED and self.row_status[row] not in (
                STATUS_COMPLETED,
                STATUS_FAILED,
            ):
                self.set_status(row, STATUS_SKIPPED)
                self.error[row] = str(d.get("reason") or "")
        elif et == EventType.SPECIMEN_RETRYING:
            row = self.row_for(specimen_id, sequence, seq, g("image"), g("path"))
            self.set_status(row, STATUS_RETRYING)
            self.error[row] = error_text(d.get("error"))
        elif et == EventType.VALIDATION_CHECKPOINT:
            self.checkpoints.append(dict(d))
        elif et == EventType.VALIDATION_WARNING:
            self.warnings.append(dict(d))
        elif et == EventType.CONSUMER_ERROR:
            self.consumer_errors.append(dict(d))
        elif et in TERMINAL_EVENT_TYPES:
            self.paused = False
            self.pause_message = ""
            self._paused_for.clear()
            self.status = {
                EventType.EXTRACTION_COMPLETED: "completed",
                EventType.EXTRACTION_FAILED: "failed",
                EventType.EXTRACTION_CANCELLED: "cancelled",
            }[et]
            self.reason = d.get("reason")
            self.message = str(d.get("message") or "")
            verdict = d.get("verdict")
            self.verdict = verdict if isinstance(verdict, str) else None
            self.verdict_message = str(d.get("verdict_message") or "")
            if self.in_flight:  # nothing is in flight after the end
                for row, st in enumerate(self.row_status):
                    if st in (STATUS_PROCESSING, STATUS_RETRYING):
                        self.set_status(row, STATUS_QUEUED)
        if metrics:
            self.latest_metrics = dict(metrics)
            self.metrics_raw = None

    def apply_finished(
        self,
        et: str,
        timestamp: str,
        specimen_id: str | None,
        sequence: int | None,
        seq: int,
        image: Any,
        path: Any,
        success: Any,
        fields_extracted: Any,
        confidence: Any,
        processing_time_ms: Any,
        cost_usd: Any,
        error: Any,
        attempts: Any,
        tokens: Any,
    ) -> None:
        """A finished specimen; the data fields as found in the event (None if absent)."""
        ok = et == EventType.SPECIMEN_COMPLETED and success is not False
        row = self.row_for(specimen_id, sequence, seq, image, path)
        self.last_finished_row = row
        self.set_status(row, STATUS_COMPLETED if ok else STATUS_FAILED)
        self.sequence[row] = sequence
        self.fields_extracted[row] = count(fields_extracted)
        conf = num(confidence)
        set_float(self.confidence, row, NAN if conf is None else conf)
        t = num(processing_time_ms)
        set_float(self.time_ms, row, NAN if t is None else t)
        cost = num(cost_usd)
        set_float(self.cost_usd, row, NAN if cost is None else cost)
        self.error[row] = "" if ok else error_text(error)
        self.attempts[row] = count(attempts) or 1
        self.tokens += count(tokens)
        self.cost_total += cost or 0.0
        if conf is not None and ok:
            self.conf_sum += conf
            self.conf_n += 1
            self.finish_conf.append(conf)
        if t is not None:
            self.time_sum += t
            self.time_n += 1
        self.finishes += 1
        self.finish_ok += ok
        recent = self.recent
        if len(recent) == ROLLING_WINDOW:
            self.recent_ok -= recent[0]
        recent.append(ok)
        self.recent_ok += ok
        self.finish_x.append(self.finishes)
        self.cum_rate.append(self.finish_ok / self.finishes)
        self.roll_rate.append(self.recent_ok / len(recent))
        epoch = parse_ts(timestamp)
        self.finish_epoch.append(epoch if epoch is not None else float("nan"))

    def row_for(
        self, specimen_id: str | None, sequence: int | None, seq: int, image: Any, path: Any
    ) -> int:
        """The specimen's row, appended on first sight (an id-less event is keyed by its
        sequence); the first image and path seen are kept. Marks the row changed."""
        sid = specimen_id or f"#{sequence or seq}"
        row_of = self.row_of
        row = row_of.get(sid)
        if row is None:
            row = len(self.specimen_id)
            row_of[sid] = row
            self.specimen_id.append(sid)
            self.indexed_rows += 1
            self.image.append(str(image or ""))
            self.path.append(str(path or ""))
            self.row_status.append(STATUS_QUEUED)
            self.sequence.append(None)
            self.fields_extracted.append(0)
            append_float(self.confidence, NAN)
            append_float(self.time_ms, NAN)
            append_float(self.cost_usd, NAN)
            self.error.append("")
            self.attempts.append(0)
        else:
            if image and not self.image[row]:
                self.image[row] = str(image)
            if path and not self.path[row]:
                self.path[row] = str(path)
        self.changed.add(row)
        return row

    def set_status(self, row: int, status: str) -> None:
        """Move a row to `status`, keeping the counters over rows in step."""
        old = self.row_status[row]
        if old == status:
            return
        self.count_status(old, -1)
        self.count_status(status, 1)
        self.row_status[row] = status

    def count_status(self, status: str, delta: int) -> None:
        """Counters over rows follow their statuses: `delta` rows entered (left) `status`."""
        if status == STATUS_COMPLETED:
            self.succeeded += delta
        elif status == STATUS_FAILED:
            self.failed += delta
        elif status == STATUS_SKIPPED:
            self.skipped += delta
        elif status in (STATUS_PROCESSING, STATUS_RETRYING):
            self.in_flight += delta

    # ------------------------------------------------------------------ reading
    @property
    def rows(self) -> int:
        return len(self.specimen_id)

    def status_text(self, row: int) -> str:
        """The row's status as shown: a specimen still queued when the run ended (halted,
        cancelled) was never started, and never will be in this run."""
        st = self.row_status[row]
        if st == STATUS_QUEUED and self.status in ("failed", "cancelled"):
            return "not started"
        return st

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.processed if self.processed else 0.0

    @property
    def avg_confidence(self) -> float | None:
        return self.conf_sum / self.conf_n if self.conf_n else None

    @property
    def avg_time_ms(self) -> float | None:
        return self.time_sum / self.time_n if self.time_n else None

    @property
    def start_epoch(self) -> float | None:
        """When the run started: its first `extraction.started`, else (the original scripts'
        logs have none) its first timestamp. Elapsed time, the throughput figure and the
        throughput plot all count from here, so they cannot disagree."""
        if self.started_epoch is not None:
            return self.started_epoch
        return parse_ts(self.first_ts or "")

    def elapsed_s(self, now: float | None = None) -> float:
        """Seconds from the start to `now` (a run still being written) or to its last event
        (ended, or opened from a log: `now` None)."""
        start = self.start_epoch
        if start is None:
            return 0.0
        end = (
            now if (now is not None and self.status == "running") else parse_ts(self.last_ts or "")
        )
        return max(0.0, (end or start) - start)

    @property
    def cost_known(self) -> bool:
        """Whether any finished specimen recorded a cost (the original scripts' logs and
        some APIs record none: the cost is unknown there, not $0). The offline engine costs
        nothing."""
        if isinstance(self.config, dict) and self.config.get("engine") == "ocr":
            return True
        n = len(self.cost_usd)
        return n > 0 and not bool(np.isnan(np.frombuffer(self.cost_usd, np.float64, n)).all())

    def throughput_per_min(self, now: float | None = None) -> float:
        el = self.elapsed_s(now)
        return self.finishes / el * 60.0 if el > 0 else 0.0

    def eta_s(self, now: float | None = None) -> float | None:
        if self.total is None or self.status != "running" or self.paused:
            return None  # a paused run has no honest ETA (a quota may hold it for hours)
        per_min = self.throughput_per_min(now)
        remaining = max(0, self.total - self.processed - self.skipped)
        return remaining / per_min * 60.0 if per_min > 0 else None

    def projection(self, now: float | None = None) -> Projection | None:
        """Cost and time ahead with a range (monitor/projection.py), for a running run."""
        if self.total is None or self.status != "running":
            return None
        return project(
            self.total - self.processed - self.skipped,
            self.finishes,
            self.cost_total,
            *self._projection_moments(),
            self.elapsed_s(now),
            paused=self.paused,
        )

    def _projection_moments(self) -> tuple[Moments, Moments]:
        """The finished specimens' costs and the seconds between finishes (the first from
        the start); the KPI strip asks many times a second."""
        cached = self._gaps_cache
        # refreshed once finishes grew by 1 %: a pass over a million rows takes ~65 ms, and
        # the mean and spread barely move in between (the counts and elapsed time are exact)
        if cached is not None and 0 <= self.finishes - cached[0] <= cached[0] // 100:
            return cached[1], cached[2]
        cost = _moments(np.frombuffer(self.cost_usd, np.float64))
        ends = np.frombuffer(self.finish_epoch, np.float64)
        start = self.started_epoch
        times = ends[~np.isnan(ends)]
        if start is not None:
            times = np.concatenate(([start], times))
        gaps = _moments(np.maximum(np.diff(times), 0.0)) if len(times) > 1 else Moments()
        self._gaps_cache = (self.finishes, cost, gaps)
        return cost, gaps

    @property
    def paused_at_budget(self) -> bool:
        """The run ended paused at its --budget (resumable with a higher one): its log says
        `extraction.failed`, reason `budget` (see monitor/ending.py for why), but every view
        shows it as the pause it is."""
        return ending.paused_at_budget(self.status, self.reason)

    @property
    def shown_status(self) -> str:
        """The status as views say it: "paused" for a run that ended at its budget."""
        return "paused" if self.paused_at_budget else self._summary_status()

    def budget_pause_text(self, run_dir: object = "RUN_DIR") -> str:
        """ "Paused at its budget: 4 processed, …; spent $0.0080 of $0.0100; go on with …":
        the final spend, every specimen in flight at the pause finished."""
        return (
            "Paused at its budget: "
            + ending.budget_pause_text(
                self.processed, self.succeeded, self.failed, self.cost_total, self.budget_usd
            )
            + "; "
            + ending.budget_go_on(run_dir, self.broker)
        )

    def _summary_status(self) -> str:
        if self.status != "pending":
            return self.status
        # results without run events (a raw.jsonl alone): we cannot know how the run ended
        return "unknown" if self.events else "pending"

    def take_changed_rows(self) -> np.ndarray:
        """Rows touched since the last call, sorted, distinct (incremental view updates)."""
        changed, self.changed = self.changed, ChangedRows()
        return changed.rows()

    def quality_summary(self) -> dict[str, Any]:
        """The `quality` object (docs/quality.md): counts over finished specimens."""
        return self.quality.summary(self.processed)

    @property
    def usable_rate(self) -> float | None:
        return self.quality.usable / self.processed if self.processed and self.quality else None

    def gold_summary(self) -> dict[str, Any] | None:
        """Known-answer sheets: how many terms were right, over all gold results seen."""
        if not self.gold:
            return None
        results = [
            r for g in self.gold if isinstance(g.get("terms"), dict) for r in g["terms"].values()
        ]
        right = sum(1 for r in results if r == "correct")
        return {
            "sheets": len(self.gold),
            "terms": len(results),
            "correct": right,
            "accuracy": round(right / len(results), 4) if results else None,
        }

    def summary(self) -> dict[str, Any]:
        """What `herbdesk summary` prints: a stable, documented shape."""
        return {
            "run_id": self.run_id,
            # "paused" for a run ended at its budget (the log: failed, reason budget)
            "status": self.shown_status,
            "reason": self.reason,
            "message": self.budget_pause_text() if self.paused_at_budget else self.message,
            "paused_at_budget": self.paused_at_budget,
            "budget_usd": self.budget_usd,
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
            "verdict": self.verdict,
            "verdict_message": self.verdict_message,
            "quality": self.quality_summary(),
            "quality_checkpoints": [dict(c) for c in self.quality_checkpoints],
            "gold": self.gold_summary(),
            "tokens": self.tokens,
            "cost_usd": round(self.cost_total, 6),
            "cost_recorded": self.cost_known,  # False: the log recorded no cost at all
            "bad_lines": self.bad_lines,
            "events": self.events,
            "seq_gaps": self.seq_gaps,
            "first_timestamp": self.first_ts,
            "last_timestamp": self.last_ts,
        }


def _moments(values: np.ndarray) -> Moments:
    """Moments of the recorded (non-NaN) values of a column, in one numpy pass."""
    x = values[~np.isnan(values)]
    if not len(x):
        return Moments()
    mean = float(x.mean())
    return Moments(len(x), mean, float(((x - mean) ** 2).sum()))
