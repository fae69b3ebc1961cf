"""Run metrics: one accumulator used by the pipeline (snapshots in events) and by RunState."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herbdesk.events.types import FINISHED_SPECIMEN_TYPES, Event, EventType
from herbdesk.events.writer import JsonlAppender

ROLLING_WINDOW = 50


@dataclass
class MetricsAccumulator:
    """Counters over finished specimens. `elapsed_s` is wall time since the run's first start."""

    total: int | None = None
    processed: int = 0
    success_count: int = 0
    failed_count: int = 0
    sum_time_ms: float = 0.0
    sum_confidence: float = 0.0
    n_confidence: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    consecutive_failures: int = 0
    usable_count: int = 0  # records that passed the quality checks (herbdesk/quality)
    recent: deque[bool] = field(default_factory=lambda: deque(maxlen=ROLLING_WINDOW))

    def add(
        self,
        success: bool,
        time_ms: float | None = None,
        confidence: float | None = None,
        tokens: int | None = None,
        cost_usd: float | None = None,
        usable: bool = False,
    ) -> None:
        self.processed += 1
        self.usable_count += usable
        if success:
            self.success_count += 1
            self.consecutive_failures = 0
        else:
            self.failed_count += 1
            self.consecutive_failures += 1
        self.recent.append(success)
        if time_ms is not None:
            self.sum_time_ms += float(time_ms)
        if confidence is not None:
            self.sum_confidence += float(confidence)
            self.n_confidence += 1
        self.tokens += int(tokens or 0)
        self.cost_usd += float(cost_usd or 0.0)

    def add_event(self, event: Event) -> None:
        """Fold one finished-specimen event (herbdesk's own data fields)."""
        d = event.data
        self.add(
            success=event.event_type == EventType.SPECIMEN_COMPLETED and d.get("success", True),
            time_ms=d.get("processing_time_ms"),
            confidence=d.get("confidence"),
            tokens=d.get("tokens"),
            cost_usd=d.get("cost_usd"),
        )

    @property
    def success_rate(self) -> float:
        return self.success_count / self.processed if self.processed else 0.0

    @property
    def rolling_success_rate(self) -> float:
        return sum(self.recent) / len(self.recent) if self.recent else 0.0

    def snapshot(self, elapsed_s: float) -> dict[str, Any]:
        """The `metrics` object carried by every finished-specimen event."""
        per_min = self.processed / elapsed_s * 60.0 if elapsed_s > 0 else 0.0
        remaining = (self.total - self.processed) if self.total is not None else None
        eta = remaining / per_min * 60.0 if remaining is not None and per_min > 0 else None
        return {
            "total": self.total,
            "total_processed": self.processed,
            "success_count": self.success_count,
            "failed_count": self.failed_count,
            "success_rate": round(self.success_rate, 4),
            "rolling_success_rate": round(self.rolling_success_rate, 4),
            "avg_processing_time_ms": round(self.sum_time_ms / self.processed, 1)
            if self.processed
            else 0.0,
            "specimens_per_minute": round(per_min, 2),
            "avg_confidence": round(self.sum_confidence / self.n_confidence, 4)
            if self.n_confidence
            else None,
            "tokens": self.tokens,
            "cost_usd": round(self.cost_usd, 6),
            "eta_seconds": round(eta, 1) if eta is not None else None,
            "usable_count": self.usable_count,
            "usable_rate": round(self.usable_count / self.processed, 4) if self.processed else 0.0,
            "elapsed_seconds": round(elapsed_s, 1),
        }


class MetricsFileConsumer:
    """Writes metrics.jsonl: one line per finished specimen, the snapshot its event carried."""

    def __init__(self, path: Path) -> None:
        self._out = JsonlAppender(path)

    def __call__(self, event: Event) -> None:
        if event.event_type in FINISHED_SPECIMEN_TYPES and event.metrics is not None:
            self._out.write_obj(
                {
                    "seq": event.seq,
                    "timestamp": event.timestamp,
                    "sequence": event.sequence,
                    "specimen_id": event.specimen_id,
                    **event.metrics,
                }
            )

    def close(self) -> None:
        self._out.close()
