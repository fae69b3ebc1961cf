"""RunState: the one Qt-free fold of events into what every view shows.

Live runs, opened logs, tailed logs and distributed runs all go through `apply`, so a replayed
log and the live view cannot disagree. Per-specimen data is kept in columns (lists indexed by
row; the plot series in array('d')), not one object per event, and the fold records which rows
changed so a view can update incrementally on its own timer. Opened logs fold through
`apply_chunk` (bulkload.py), which builds no Event for herbdesk lines: scanned blocks fold in
columns (fastfold.py), the rest line by line into these same rules.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, SupportsIndex, cast, overload

import numpy as np

from herbdesk import bulkload
from herbdesk.events.reader import EventIndex, LineChunk, ReadStats
from herbdesk.events.types import TERMINAL_EVENT_TYPES, Event, EventType
from herbdesk.monitor.metrics import ROLLING_WINDOW
from herbdesk.monitor.projection import Moments, Projection, project
from herbdesk.quality.tally import QualityTally
from herbdesk.termcolumns import TermColumns

STATUS_QUEUED = "queued"
STATUS_PROCESSING = "processing"
STATUS_RETRYING = "retrying"
STATUS_COMPLETED = "completed"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"


NAN = float("nan")
_set_float = array.__setitem__
_append_float = array.append


if TYPE_CHECKING:
    _FloatArray = array[float]
else:
    _FloatArray = array  # not subscriptable at run time before Python 3.12


class ChangedRows:
    """Rows touched since the views last looked, as a sorted array of distinct rows.

    The event-by-event fold adds rows one at a time; the column fold of a bulk load adds whole
    arrays (a million-event load touches every row: putting them in a Python set cost ~8 % of
    the fold, and the views wanted an array anyway).
    """

    def __init__(self) -> None:
        self._single: set[int] = set()
        self._arrays: list[np.ndarray] = []

    def add(self, row: int) -> None:
        self._single.add(row)

    def add_array(self, rows: np.ndarray) -> None:
        self._arrays.append(rows)

    def __len__(self) -> int:
        """How many were added, counting repeats (0: nothing changed)."""
        return len(self._single) + sum(len(a) for a in self._arrays)

    def rows(self) -> np.ndarray:
        """The distinct rows touched so far, ascending (int64)."""
        parts = [a for a in self._arrays if len(a)]
        if self._single:
            parts.append(np.fromiter(self._single, np.int64, len(self._single)))
        if not parts:
            return np.empty(0, np.int64)
        # rows are small non-negative ints: marking them costs a fraction of np.unique
        # (which hashed or sorted a million rows for 0.1-0.3 s)
        seen = np.zeros(max(int(a.max()) for a in parts) + 1, np.bool_)
        for a in parts:
            seen[a] = True
        return np.flatnonzero(seen)


def row_in(rows: np.ndarray, row: int) -> bool:
    """Whether `row` is in a sorted array of rows (`RunState.take_changed_rows`)."""
    i = int(np.searchsorted(rows, row))
    return i < len(rows) and int(rows[i]) == row


class OptionalFloats(_FloatArray):
    """A column of floats or None: array('d') with NaN standing for None.

    Eight bytes a row instead of a list slot plus a float object (32 bytes): a 333,000-row run
    holds three such columns. Reading gives None where nothing was recorded, as a list would;
    numpy views it directly (`np.frombuffer`). NaN itself is never a value: `_num` refuses it.
    """

    def __new__(cls, values: Iterable[float | None] = ()) -> OptionalFloats:
        return cast(
            OptionalFloats, super().__new__(cls, "d", (NAN if v is None else v for v in values))
        )

    @overload  # type: ignore[override]
    def __getitem__(self, i: SupportsIndex) -> float | None: ...
    @overload
    def __getitem__(self, i: slice) -> list[float | None]: ...
    def __getitem__(self, i: SupportsIndex | slice) -> float | list[float | None] | None:
        if isinstance(i, slice):
            return [None if v != v else v for v in array.__getitem__(self, i)]
        v = array.__getitem__(self, i)
        return None if v != v else v

    def __setitem__(self, i: SupportsIndex, v: float | None) -> None:  # type: ignore[override]
        _set_float(self, i, NAN if v is None else v)

    def append(self, v: float | None) -> None:
        _append_float(self, NAN if v is None else v)

    def __iter__(self) -> Iterator[float | None]:  # type: ignore[override]
        return (None if v != v else v for v in array.__iter__(self))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, OptionalFloats)):
            return list(self) == list(other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def tolist(self) -> list[float | None]:  # type: ignore[override]
        return list(self)

    def __copy__(self) -> OptionalFloats:
        return OptionalFloats(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> OptionalFloats:
        return OptionalFloats(self)

    __hash__ = None


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
        self.pause_message = ""  # why the run paused itself (an API quota), if it said
        self._paused_for: set[str] = set()  # "user" (the app's Pause) and/or "quota"
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
        # specimen id -> row; rows the column fold appends are indexed on first use (`row_of`)
        self._row_of: dict[str, int] = {}
        self._indexed = 0  # rows specimen_id[:_indexed] are in _row_of
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
        self._conf_sum = 0.0
        self._conf_n = 0
        self._time_sum = 0.0
        self._time_n = 0
        # series over finish events (x = finish ordinal), for the plots
        # (array('d'): 8 bytes a value instead of a pointer plus a float object; plots copy
        # them into numpy without a Python loop)
        self.finish_x: array[float] = array("d")
        self.cum_rate: array[float] = array("d")
        self.roll_rate: array[float] = array("d")
        self.finish_epoch: array[float] = array("d")
        self.finish_conf: array[float] = array("d")
        self._recent: deque[bool] = deque(maxlen=ROLLING_WINDOW)
        self._recent_ok = 0  # True values in _recent, kept as it slides
        self._finishes = 0
        self._finish_ok = 0
        self.started_epoch: float | None = None
        self.checkpoints: list[dict[str, Any]] = []
        # record quality (herbdesk/quality): per-row findings and the run's counts
        self.quality = QualityTally()
        self.quality_checkpoints: list[dict[str, Any]] = []
        self.gold: list[dict[str, Any]] = []
        # Darwin Core values per row, column-wise (termcolumns.py): the last finish's `dwc`
        self.terms = TermColumns()
        self.verdict: str | None = None  # "passed" | "below_threshold" at a completed end
        self.verdict_message = ""
        self.warnings: list[dict[str, Any]] = []
        self.consumer_errors: list[dict[str, Any]] = []
        self.latest_metrics: dict[str, Any] = {}
        self._metrics_raw: bytes | None = None  # newer than latest_metrics, not decoded yet
        self.last_finished_row: int | None = None
        # change tracking for views: rows added since / rows changed since last take
        self._changed = ChangedRows()
        self._gaps_cache: tuple[int, Moments, Moments] | None = None

    @property
    def row_of(self) -> dict[str, int]:
        """Each specimen id's row.

        The column fold of a bulk load appends rows without this dict (it maps ids to rows
        by their scanned hash, checked against `specimen_id`); they are indexed here, in one
        pass, the first time anything asks. A headless `summary` never does.
        """
        if self._indexed < len(self.specimen_id):
            start, self._indexed = self._indexed, len(self.specimen_id)
            new = range(start, self._indexed)
            self._row_of.update(zip(self.specimen_id[start:], new, strict=True))
        return self._row_of

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

    def apply_chunk(
        self,
        chunk: LineChunk,
        stats: ReadStats,
        decoder: Callable[[bytes], Event],
        index: EventIndex | None = None,
    ) -> None:
        """Fold a block of raw log lines (bulk loads): bad lines are counted, never fatal.

        herbdesk lines are folded with no Event built (bulkload.py); other shapes (the
        original scripts' logs, result records) go through `decoder`. With an `index`, every
        event's place in the file is recorded for lazy views.
        """
        bulkload.apply_chunk(self, chunk, stats, decoder, index)

    def _header(self, et: str, run_id: str, seq: int, timestamp: str) -> None:
        """What every event updates: counts, sequence gaps, first and last timestamps."""
        self.events += 1
        if seq:
            last = self.last_seq
            if last and seq > last + 1:
                self.seq_gaps += seq - last - 1
            if seq > last:
                self.last_seq = seq
        if timestamp:
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
            row = self._row(specimen_id, sequence, seq, g("image"), g("path"))
            self._set_status(row, STATUS_PROCESSING)
        elif et in (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED):
            self._apply_finished(
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
            total = _num(d.get("total"))
            if total is not None:
                self.total = int(total)
            if isinstance(d.get("config"), dict):
                self.config = d["config"]
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
            row = self._row(specimen_id, sequence, seq, g("image"), g("path"))
            if et == EventType.SPECIMEN_SKIPPED and self.row_status[row] not in (
                STATUS_COMPLETED,
                STATUS_FAILED,
            ):
                self._set_status(row, STATUS_SKIPPED)
                self.error[row] = str(d.get("reason") or "")
        elif et == EventType.SPECIMEN_RETRYING:
            row = self._row(specimen_id, sequence, seq, g("image"), g("path"))
            self._set_status(row, STATUS_RETRYING)
            self.error[row] = _error_str(d.get("error"))
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
                        self._set_status(row, STATUS_QUEUED)
        if metrics:
            self.latest_metrics = dict(metrics)
            self._metrics_raw = None

    def _apply_finished(
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
        row = self._row(specimen_id, sequence, seq, image, path)
        self.last_finished_row = row
        self._set_status(row, STATUS_COMPLETED if ok else STATUS_FAILED)
        self.sequence[row] = sequence
        self.fields_extracted[row] = _count(fields_extracted)
        conf = _num(confidence)
        _set_float(self.confidence, row, NAN if conf is None else conf)
        t = _num(processing_time_ms)
        _set_float(self.time_ms, row, NAN if t is None else t)
        cost = _num(cost_usd)
        _set_float(self.cost_usd, row, NAN if cost is None else cost)
        self.error[row] = "" if ok else _error_str(error)
        self.attempts[row] = _count(attempts) or 1
        self.tokens += _count(tokens)
        self.cost_total += cost or 0.0
        if conf is not None and ok:
            self._conf_sum += conf
            self._conf_n += 1
            self.finish_conf.append(conf)
        if t is not None:
            self._time_sum += t
            self._time_n += 1
        self._finishes += 1
        self._finish_ok += ok
        recent = self._recent
        if len(recent) == ROLLING_WINDOW:
            self._recent_ok -= recent[0]
        recent.append(ok)
        self._recent_ok += ok
        self.finish_x.append(self._finishes)
        self.cum_rate.append(self._finish_ok / self._finishes)
        self.roll_rate.append(self._recent_ok / len(recent))
        epoch = parse_ts(timestamp)
        self.finish_epoch.append(epoch if epoch is not None else float("nan"))

    def _row(
        self, specimen_id: str | None, sequence: int | None, seq: int, image: Any, path: Any
    ) -> int:
        sid = specimen_id or f"#{sequence or seq}"
        row_of = self.row_of
        row = row_of.get(sid)
        if row is None:
            row = len(self.specimen_id)
            row_of[sid] = row
            self.specimen_id.append(sid)
            self._indexed += 1
            self.image.append(str(image or ""))
            self.path.append(str(path or ""))
            self.row_status.append(STATUS_QUEUED)
            self.sequence.append(None)
            self.fields_extracted.append(0)
            _append_float(self.confidence, NAN)
            _append_float(self.time_ms, NAN)
            _append_float(self.cost_usd, NAN)
            self.error.append("")
            self.attempts.append(0)
        else:
            if image and not self.image[row]:
                self.image[row] = str(image)
            if path and not self.path[row]:
                self.path[row] = str(path)
        self._changed.add(row)
        return row

    def _set_status(self, row: int, status: str) -> None:
        old = self.row_status[row]
        if old == status:
            return
        self._tally(old, -1)
        self._tally(status, 1)
        self.row_status[row] = status

    def _tally(self, status: str, delta: int) -> None:
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
            self._finishes,
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
        if cached is not None and 0 <= self._finishes - cached[0] <= cached[0] // 100:
            return cached[1], cached[2]
        cost = _moments(np.frombuffer(self.cost_usd, np.float64))
        ends = np.frombuffer(self.finish_epoch, np.float64)
        start = self.started_epoch
        times = ends[~np.isnan(ends)]
        if start is not None:
            times = np.concatenate(([start], times))
        gaps = _moments(np.maximum(np.diff(times), 0.0)) if len(times) > 1 else Moments()
        self._gaps_cache = (self._finishes, cost, gaps)
        return cost, gaps

    def _summary_status(self) -> str:
        if self.status != "pending":
            return self.status
        # results without run events (a raw.jsonl alone): we cannot know how the run ended
        return "unknown" if self.events else "pending"

    def take_changed_rows(self) -> np.ndarray:
        """Rows touched since the last call, sorted, distinct (incremental view updates)."""
        changed, self._changed = self._changed, ChangedRows()
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
            "verdict": self.verdict,
            "verdict_message": self.verdict_message,
            "quality": self.quality_summary(),
            "quality_checkpoints": [dict(c) for c in self.quality_checkpoints],
            "gold": self.gold_summary(),
            "tokens": self.tokens,
            "cost_usd": round(self.cost_total, 6),
            "bad_lines": self.bad_lines,
            "events": self.events,
            "seq_gaps": self.seq_gaps,
            "first_timestamp": self.first_ts,
            "last_timestamp": self.last_ts,
        }


_EXACT = float(2**53)


def _moments(values: np.ndarray) -> Moments:
    """Moments of the recorded (non-NaN) values of a column, in one numpy pass."""
    x = values[~np.isnan(values)]
    if not len(x):
        return Moments()
    mean = float(x.mean())
    return Moments(len(x), mean, float(((x - mean) ** 2).sum()))


def _num(value: Any) -> float | None:
    """A plausible number from a log field, else None: opened and tailed logs may hold anything.

    Magnitudes past 2**53 are no count or cost a run produces, and summed they would overflow
    the 64-bit integers JSON output can carry.
    """
    t = type(value)
    if t is float:  # the common cases first: this runs several times per finished specimen
        return value if -_EXACT <= value <= _EXACT else None  # NaN fails both comparisons
    if t is int and -_EXACT <= value <= _EXACT:
        return float(value)
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) and abs(f) <= 2**53 else None


def _count(value: Any) -> int:
    if type(value) is int and -_EXACT <= value <= _EXACT:
        return value
    f = _num(value)
    return int(f) if f is not None else 0


def _error_str(err: Any) -> str:
    if isinstance(err, dict):
        kind, msg = err.get("kind"), err.get("message")
        return f"{kind}: {msg}" if kind else str(msg or "")
    return str(err or "")
