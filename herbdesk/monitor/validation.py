"""Validation: judges the run while it is young and halts it when it is failing.

- checkpoint after the Nth finished specimen of this run (default 5): below the threshold
  (default 0.5) the run halts with `early_validation_failed`;
- every `warning_every` finished specimens (default 50), a warning when the run's success rate
  is below `warning_threshold` (default 0.7);
- a breaker: `max_consecutive_failures` (default 10) failures in a row halt the run.

The consumer only decides; the RunControl carries the decision to the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

from herbdesk.events.bus import EventBus
from herbdesk.events.types import FINISHED_SPECIMEN_TYPES, Event, EventType, HaltReason
from herbdesk.extraction.control import RunControl


@dataclass
class ValidationConfig:
    checkpoint_after: int = 5
    checkpoint_threshold: float = 0.5
    warning_every: int = 50
    warning_threshold: float = 0.7
    max_consecutive_failures: int = 10  # 0 disables the breaker
    # record quality (monitor/quality.py): the usable share the checkpoint, the rolling
    # window and the end verdict hold a run to; known-answer sheets' share of right terms
    quality_threshold: float = 0.5
    degraded_halt: bool = True
    gold_threshold: float = 0.7

    def validate(self) -> None:
        if self.checkpoint_after < 1:
            raise ValueError("checkpoint_after must be >= 1")
        if not 0.0 <= self.checkpoint_threshold <= 1.0:
            raise ValueError("checkpoint_threshold must be within 0..1")
        if self.warning_every < 1:
            raise ValueError("warning_every must be >= 1")
        if not 0.0 <= self.warning_threshold <= 1.0:
            raise ValueError("warning_threshold must be within 0..1")
        for name in ("quality_threshold", "gold_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
        if self.max_consecutive_failures < 0:
            raise ValueError("max_consecutive_failures must be >= 0")


class ValidationConsumer:
    """Counts this run's finished specimens and emits checkpoint/warning events."""

    def __init__(self, config: ValidationConfig, bus: EventBus, control: RunControl) -> None:
        self.config = config
        self._bus = bus
        self._control = control
        self.finished = 0
        self.succeeded = 0
        self.consecutive_failures = 0
        self.checkpoint_done = False

    def __call__(self, event: Event) -> None:
        if event.event_type not in FINISHED_SPECIMEN_TYPES:
            return
        cfg = self.config
        ok = event.event_type == EventType.SPECIMEN_COMPLETED
        self.finished += 1
        if ok:
            self.succeeded += 1
            self.consecutive_failures = 0
        else:
            self.consecutive_failures += 1
        rate = self.succeeded / self.finished

        if not self.checkpoint_done and self.finished >= cfg.checkpoint_after:
            self.checkpoint_done = True
            passed = rate >= cfg.checkpoint_threshold
            self._bus.emit(
                EventType.VALIDATION_CHECKPOINT,
                data={
                    "checkpoint": self.finished,
                    "status": "passed" if passed else "failed",
                    "success_rate": round(rate, 4),
                    "threshold": cfg.checkpoint_threshold,
                    "succeeded": self.succeeded,
                    "failed": self.finished - self.succeeded,
                },
            )
            if not passed:
                self._control.halt(
                    HaltReason.EARLY_VALIDATION_FAILED,
                    f"checkpoint {self.finished} failed: success rate {rate:.0%} is below "
                    f"{cfg.checkpoint_threshold:.0%} ({self.succeeded}/{self.finished} succeeded)",
                )
                return

        if self.finished % cfg.warning_every == 0 and rate < cfg.warning_threshold:
            self._bus.emit(
                EventType.VALIDATION_WARNING,
                data={
                    "at": self.finished,
                    "success_rate": round(rate, 4),
                    "threshold": cfg.warning_threshold,
                    "message": f"success rate {rate:.0%} after {self.finished} specimens is "
                    f"below {cfg.warning_threshold:.0%}",
                },
            )

        n = cfg.max_consecutive_failures
        if n and self.consecutive_failures >= n:
            self._control.halt(
                HaltReason.CONSECUTIVE_FAILURES,
                f"{self.consecutive_failures} specimens failed in a row "
                f"(last error: {_error_text(event)})",
            )


def _error_text(event: Event) -> str:
    err = event.data.get("error")
    if isinstance(err, dict):
        return f"{err.get('kind', '?')}: {err.get('message', '')}"
    return str(err or "unknown")
