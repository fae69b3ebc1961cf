"""Run-level judgement of records: the quality checkpoint, identical records, degradation after
the checkpoint, known-answer (gold) sheets, and the end verdict.

A consumer on the bus like validation: it reads the `quality` object each finished-specimen
event carries (herbdesk/quality/checks.py) and halts through the RunControl. Failed
specimens count as not usable. The thresholds live in ValidationConfig so that run.json,
resume and distributed runs carry them with the rest of the run's rules.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from herbdesk.events.bus import EventBus
from herbdesk.events.types import FINISHED_SPECIMEN_TYPES, Event, EventType, HaltReason
from herbdesk.extraction.control import RunControl
from herbdesk.monitor.metrics import ROLLING_WINDOW
from herbdesk.monitor.validation import ValidationConfig
from herbdesk.quality.tally import QualityTally

IDENTICAL_FIRST = 5  # at least 3 of the first 5 ...
IDENTICAL_FIRST_MIN = 3
IDENTICAL_RECENT = 20  # ... or more than half of the last 20 records the same
DEGRADED_MIN_WINDOW = 20  # the rolling window is judged once it holds this many


class QualityConsumer:
    def __init__(self, config: ValidationConfig, bus: EventBus, control: RunControl) -> None:
        self.config = config
        self._bus = bus
        self._control = control
        self.finished = 0
        self.succeeded = 0
        self.usable = 0
        self.checkpoint_done = False
        self._first: list[str | None] = []
        self._recent: deque[str | None] = deque(maxlen=IDENTICAL_RECENT)
        self._window: deque[tuple[bool, bool]] = deque(maxlen=ROLLING_WINDOW)
        self._examples: dict[str, list[str]] = {}
        self._invalid: Counter[str] = Counter()
        self.gold_expected = 0
        self.gold_terms = 0
        self.gold_correct = 0
        self.gold_done = 0
        self._gold_judged = False
        self.tally = QualityTally()  # for the terminal event's `quality` object
        self._rows: dict[str, int] = {}

    def __call__(self, event: Event) -> None:
        if event.event_type == EventType.QUALITY_GOLD:
            self._on_gold(event.data)
            return
        if event.event_type not in FINISHED_SPECIMEN_TYPES:
            return
        ok = event.event_type == EventType.SPECIMEN_COMPLETED
        q = event.data.get("quality")
        q = q if isinstance(q, Mapping) else {}
        usable = ok and bool(q.get("usable"))
        self.finished += 1
        self.succeeded += ok
        self.usable += usable
        self._window.append((ok, usable))
        row = self._rows.setdefault(event.specimen_id or f"#{self.finished}", len(self._rows))
        self.tally.set(row, q if ok and q else None)
        self._note_examples(q)
        # usable records only: identical junk is reported as junk by the checkpoint
        fp = q.get("fingerprint") if usable else None
        fp = fp if isinstance(fp, str) else None
        if self.finished <= IDENTICAL_FIRST:
            self._first.append(fp)
        self._recent.append(fp)
        if self._identical():
            return
        cfg = self.config
        if not self.checkpoint_done and self.finished >= cfg.checkpoint_after:
            self.checkpoint_done = True
            self._checkpoint()
            return
        if self.checkpoint_done and cfg.degraded_halt:
            self._degradation()

    # ---------------------------------------------------------------- rules
    def _identical(self) -> bool:
        first = Counter(f for f in self._first if f)
        recent = Counter(f for f in self._recent if f)
        same_first = max(first.values(), default=0)
        same_recent = max(recent.values(), default=0)
        if same_first >= IDENTICAL_FIRST_MIN and self.finished <= IDENTICAL_FIRST:
            n, of = same_first, len(self._first)
        elif len(self._recent) == IDENTICAL_RECENT and same_recent > IDENTICAL_RECENT // 2:
            n, of = same_recent, IDENTICAL_RECENT
        else:
            return False
        self._control.halt(
            HaltReason.IDENTICAL_RECORDS,
            f"{n} of {of} different images gave the same record (a stuck model or a cached reply?)",
        )
        return True

    def _checkpoint(self) -> None:
        cfg = self.config
        rate = self.usable / self.finished
        passed = rate >= cfg.quality_threshold
        failing = [t for t, _ in self._invalid.most_common(4)]
        self._bus.emit(
            EventType.QUALITY_CHECKPOINT,
            data={
                "checkpoint": self.finished,
                "status": "passed" if passed else "failed",
                "usable_rate": round(rate, 4),
                "threshold": cfg.quality_threshold,
                "usable": self.usable,
                "unusable": self.finished - self.usable,
                "failed_terms": {t: self._examples.get(t, [])[:3] for t in failing},
            },
        )
        if not passed:
            detail = "; ".join(
                f"{t}: " + ", ".join(repr(v) for v in self._examples.get(t, [])[:3])
                for t in failing
            )
            self._control.halt(
                HaltReason.EARLY_QUALITY_FAILED,
                f"quality checkpoint {self.finished} failed: {rate:.0%} of records usable, "
                f"below {cfg.quality_threshold:.0%}" + (f" ({detail})" if detail else ""),
            )

    def _degradation(self) -> None:
        if len(self._window) < min(DEGRADED_MIN_WINDOW, ROLLING_WINDOW):
            return
        n = len(self._window)
        ok_rate = sum(o for o, _ in self._window) / n
        usable_rate = sum(u for _, u in self._window) / n
        cfg = self.config
        if ok_rate < cfg.checkpoint_threshold:
            what = f"success rate {ok_rate:.0%} below {cfg.checkpoint_threshold:.0%}"
        elif usable_rate < cfg.quality_threshold:
            what = f"usable share {usable_rate:.0%} below {cfg.quality_threshold:.0%}"
        else:
            return
        self._control.halt(
            HaltReason.DEGRADED,
            f"the run degraded: over the last {n} specimens the {what} "
            "(--no-degraded-halt to let it go on)",
        )

    def _on_gold(self, data: Mapping[str, Any]) -> None:
        terms = data.get("terms")
        if not isinstance(terms, Mapping):
            return
        self.gold_done += 1
        self.gold_terms += len(terms)
        self.gold_correct += sum(1 for r in terms.values() if r == "correct")
        if self._gold_judged or self.gold_done < self.gold_expected:
            return
        self._gold_judged = True
        acc = self.gold_correct / self.gold_terms if self.gold_terms else 1.0
        if acc < self.config.gold_threshold:
            self._control.halt(
                HaltReason.GOLD_FAILED,
                f"known-answer sheets: {acc:.0%} of terms right ({self.gold_correct}/"
                f"{self.gold_terms}), below {self.config.gold_threshold:.0%}",
            )

    def _note_examples(self, q: Mapping[str, Any]) -> None:
        findings = q.get("findings")
        if not isinstance(findings, list):
            return
        for f in findings:
            if isinstance(f, list) and len(f) >= 3 and f[0] != "required_missing":
                term = str(f[1])
                self._invalid[term] += 1
                ex = self._examples.setdefault(term, [])
                if len(ex) < 3 and str(f[2]) not in ex:
                    ex.append(str(f[2]))

    # ---------------------------------------------------------------- end
    def verdict(self) -> tuple[str, str]:
        """("passed" | "below_threshold", why) for a run that ran to its end."""
        if not self.finished:
            return "passed", ""
        cfg = self.config
        rate = self.succeeded / self.finished
        usable = self.usable / self.finished
        if rate < cfg.checkpoint_threshold:
            return "below_threshold", (
                f"finished below threshold: success rate {rate:.0%} "
                f"< {cfg.checkpoint_threshold:.0%}"
            )
        if usable < cfg.quality_threshold:
            return "below_threshold", (
                f"finished below threshold: {usable:.0%} of records usable "
                f"< {cfg.quality_threshold:.0%}"
            )
        return "passed", ""
