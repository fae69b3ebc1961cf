"""Event types and the immutable event envelope shared by every source and consumer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1


class EventType:
    """Names of the event types; the strings are the stable on-disk contract."""

    EXTRACTION_STARTED = "extraction.started"
    PREFLIGHT_COMPLETED = "preflight.completed"
    SPECIMEN_QUEUED = "specimen.queued"
    SPECIMEN_SKIPPED = "specimen.skipped"
    SPECIMEN_PROCESSING = "specimen.processing"
    SPECIMEN_RETRYING = "specimen.retrying"
    SPECIMEN_COMPLETED = "specimen.completed"
    SPECIMEN_FAILED = "specimen.failed"
    VALIDATION_CHECKPOINT = "validation.checkpoint"
    VALIDATION_WARNING = "validation.warning"
    QUALITY_CHECKPOINT = "quality.checkpoint"
    QUALITY_GOLD = "quality.gold"
    EXTRACTION_PAUSED = "extraction.paused"
    EXTRACTION_RESUMED = "extraction.resumed"
    CONSUMER_ERROR = "consumer.error"
    EXTRACTION_COMPLETED = "extraction.completed"
    EXTRACTION_FAILED = "extraction.failed"
    EXTRACTION_CANCELLED = "extraction.cancelled"
    ALERT_SENT = "alert.sent"
    ALERT_FAILED = "alert.failed"


ALL_EVENT_TYPES: frozenset[str] = frozenset(
    v for k, v in vars(EventType).items() if k.isupper() and isinstance(v, str)
)
TERMINAL_EVENT_TYPES: frozenset[str] = frozenset(
    {
        EventType.EXTRACTION_COMPLETED,
        EventType.EXTRACTION_FAILED,
        EventType.EXTRACTION_CANCELLED,
    }
)
FINISHED_SPECIMEN_TYPES: frozenset[str] = frozenset(
    {EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED}
)


class HaltReason:
    """Values of `data.reason` on `extraction.failed`."""

    PREFLIGHT_FAILED = "preflight_failed"
    EARLY_VALIDATION_FAILED = "early_validation_failed"
    CONSECUTIVE_FAILURES = "consecutive_failures"
    EARLY_QUALITY_FAILED = "early_quality_failed"
    IDENTICAL_RECORDS = "identical_records"
    DEGRADED = "degraded"
    GOLD_FAILED = "gold_failed"
    FATAL_ERROR = "fatal_error"
    INTERNAL_ERROR = "internal_error"
    BUDGET = "budget"  # a headless run paused at its --budget, then ended (resumable)


def utc_now_iso() -> str:
    """UTC timestamp with millisecond precision, e.g. 2026-11-26T21:18:49.123Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Event:
    """One step of a run. Frozen: consumers and the GUI never mutate what others see."""

    event_type: str
    run_id: str
    seq: int
    timestamp: str
    specimen_id: str | None = None
    sequence: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to events.jsonl (None fields omitted)."""
        out: dict[str, Any] = {
            "schema_version": self.schema_version,
            "seq": self.seq,
            "event_type": self.event_type,
            "timestamp": self.timestamp,
            "run_id": self.run_id,
        }
        if self.specimen_id is not None:
            out["specimen_id"] = self.specimen_id
        if self.sequence is not None:
            out["sequence"] = self.sequence
        out["data"] = dict(self.data)
        if self.metrics is not None:
            out["metrics"] = dict(self.metrics)
        return out


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
