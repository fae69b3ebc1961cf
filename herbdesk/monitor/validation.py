"""The thresholds of a run's rules (the rules themselves: monitor/rules.py).

- checkpoint after the Nth finished specimen of this run (default 5): below the threshold
  (default 0.5) the run halts with `early_validation_failed`;
- every `warning_every` finished specimens (default 50), a warning when the run's success rate
  is below `warning_threshold` (default 0.7);
- a breaker: `max_consecutive_failures` (default 10) failures in a row halt the run.

The rules only decide; the RunControl (or a distributed run's broker) carries out a halt.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ValidationConfig:
    checkpoint_after: int = 5
    checkpoint_threshold: float = 0.5
    warning_every: int = 50
    warning_threshold: float = 0.7
    max_consecutive_failures: int = 10  # 0 disables the breaker
    # record quality (monitor/rules.py): the usable share the checkpoint, the rolling
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
