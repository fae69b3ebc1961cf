"""The run's rules, written once: validation (checkpoint, warning, breaker) and record quality
(quality checkpoint, identical records, degradation, known-answer sheets, the end verdict).

Each rule set is a pure fold over finished specimens that returns decisions (an event to emit,
a halt) instead of acting, and whose state is a small JSON-able dict. A local run folds it in a
consumer on the bus (RulesConsumer); a distributed run keeps the state in Redis and folds each
finished specimen once, under a lock, on whichever worker finished it (distributed/broker.py).
The same code decides both, so a rule cannot drift apart between them.

Failed specimens count as not usable. A resumed run is judged on all its records: its rules
first fold the earlier invocations' (`replay_earlier`), so a resume that adds nothing ends as
the earlier invocation did, and one that adds good records passes only if the whole run does.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from herbdesk.events.types import FINISHED_SPECIMEN_TYPES, Event, EventType, HaltReason
from herbdesk.monitor.metrics import ROLLING_WINDOW
from herbdesk.monitor.validation import ValidationConfig

IDENTICAL_FIRST = 5  # at least 3 of the first 5 ...
IDENTICAL_FIRST_MIN = 3
IDENTICAL_RECENT = 20  # ... or more than half of the last 20 records the same
DEGRADED_MIN_WINDOW = 20  # the rolling window is judged once it holds this many


@dataclass(frozen=True)
class Emit:
    event_type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Halt:
    reason: str
    message: str


Decision = Emit | Halt


@dataclass(frozen=True)
class Finished:
    """What the rules know of one finished specimen."""

    ok: bool
    quality: Mapping[str, Any]  # RecordJudge.quality; {} when not judged
    error: str = ""  # "kind: message" of a failed specimen

    @classmethod
    def of_event(cls, event: Event) -> Finished:
        q = event.data.get("quality")
        err = event.data.get("error")
        if isinstance(err, Mapping):
            text = f"{err.get('kind', '?')}: {err.get('message', '')}"
        else:
            text = str(err or "unknown")
        return cls(
            ok=event.event_type == EventType.SPECIMEN_COMPLETED,
            quality=q if isinstance(q, Mapping) else {},
            error=text,
        )

    @property
    def usable(self) -> bool:
        return self.ok and bool(self.quality.get("usable"))


class ValidationRules:
    """Checkpoint after the Nth finished specimen, a warning every `warning_every`, and the
    consecutive-failure breaker (see ValidationConfig)."""

    def __init__(self, config: ValidationConfig) -> None:
        self.config = config
        self.finished = 0
        self.succeeded = 0
        self.consecutive_failures = 0
        self.checkpoint_done = False

    def observe(self, f: Finished) -> list[Decision]:
        cfg = self.config
        self.finished += 1
        if f.ok:
            self.succeeded += 1
            self.consecutive_failures = 0
        else:
            self.consecutive_failures += 1
        rate = self.succeeded / self.finished
        out: list[Decision] = []
        if not self.checkpoint_done and self.finished >= cfg.checkpoint_after:
            self.checkpoint_done = True
            passed = rate >= cfg.checkpoint_threshold
            out.append(
                Emit(
                    EventType.VALIDATION_CHECKPOINT,
                    {
                        "checkpoint": self.finished,
                        "status": "passed" if passed else "failed",
                        "success_rate": round(rate, 4),
                        "threshold": cfg.checkpoint_threshold,
                        "succeeded": self.succeeded,
                        "failed": self.finished - self.succeeded,
                    },
                )
            )
            if not passed:
                out.append(
                    Halt(
                        HaltReason.EARLY_VALIDATION_FAILED,
                        f"checkpoint {self.finished} failed: success rate {rate:.0%} is below "
                        f"{cfg.checkpoint_threshold:.0%} "
                        f"({self.succeeded}/{self.finished} succeeded)",
                    )
                )
                return out
        if self.finished % cfg.warning_every == 0 and rate < cfg.warning_threshold:
            out.append(
                Emit(
                    EventType.VALIDATION_WARNING,
                    {
                        "at": self.finished,
                        "success_rate": round(rate, 4),
                        "threshold": cfg.warning_threshold,
                        "message": f"success rate {rate:.0%} after {self.finished} specimens "
                        f"is below {cfg.warning_threshold:.0%}",
                    },
                )
            )
        n = cfg.max_consecutive_failures
        if n and self.consecutive_failures >= n:
            out.append(
                Halt(
                    HaltReason.CONSECUTIVE_FAILURES,
                    f"{self.consecutive_failures} specimens failed in a row "
                    f"(last error: {f.error or 'unknown'})",
                )
            )
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            "finished": self.finished,
            "succeeded": self.succeeded,
            "consecutive_failures": self.consecutive_failures,
            "checkpoint_done": self.checkpoint_done,
        }

    def load_state(self, s: Mapping[str, Any]) -> None:
        self.finished = int(s.get("finished", 0))
        self.succeeded = int(s.get("succeeded", 0))
        self.consecutive_failures = int(s.get("consecutive_failures", 0))
        self.checkpoint_done = bool(s.get("checkpoint_done", False))


class QualityRules:
    """Record quality over the run: the quality checkpoint, identical records, degradation
    after the checkpoint, known-answer sheets and the end verdict."""

    def __init__(self, config: ValidationConfig) -> None:
        self.config = config
        self.finished = 0
        self.succeeded = 0
        self.usable = 0
        self.checkpoint_done = False
        self._first: list[str | None] = []
        self._recent: deque[str | None] = deque(maxlen=IDENTICAL_RECENT)
        self._window: deque[tuple[bool, bool]] = deque(maxlen=ROLLING_WINDOW)
        # running counts of the two deques, so a fold costs the same at any window size (a
        # resume folds every earlier record before it starts)
        self._recent_fps: Counter[str] = Counter()
        self._window_ok = self._window_usable = 0
        self._examples: dict[str, list[str]] = {}
        self._invalid: Counter[str] = Counter()
        self.gold_expected = 0
        self.gold_terms = 0
        self.gold_correct = 0
        self.gold_done = 0
        self._gold_judged = False

    def observe(self, f: Finished) -> list[Decision]:
        usable = f.usable
        self.finished += 1
        self.succeeded += f.ok
        self.usable += usable
        self._push_window(f.ok, usable)
        self._note_examples(f.quality)
        # usable records only: identical junk is reported as junk by the checkpoint
        fp = f.quality.get("fingerprint") if usable else None
        fp = fp if isinstance(fp, str) else None
        if self.finished <= IDENTICAL_FIRST:
            self._first.append(fp)
        self._push_recent(fp)
        identical = self._identical()
        if identical is not None:
            return [identical]
        if not self.checkpoint_done and self.finished >= self.config.checkpoint_after:
            self.checkpoint_done = True
            return self._checkpoint()
        if self.checkpoint_done and self.config.degraded_halt:
            return self._degradation()
        return []

    def _push_window(self, ok: bool, usable: bool) -> None:
        if len(self._window) == self._window.maxlen:
            o, u = self._window[0]
            self._window_ok -= o
            self._window_usable -= u
        self._window.append((ok, usable))
        self._window_ok += ok
        self._window_usable += usable

    def _push_recent(self, fp: str | None) -> None:
        if len(self._recent) == self._recent.maxlen:
            old = self._recent[0]
            if old:
                self._recent_fps[old] -= 1
                if not self._recent_fps[old]:
                    del self._recent_fps[old]
        self._recent.append(fp)
        if fp:
            self._recent_fps[fp] += 1

    def _identical(self) -> Halt | None:
        same_first = 0
        if self.finished <= IDENTICAL_FIRST:
            same_first = max(Counter(f for f in self._first if f).values(), default=0)
        same_recent = max(self._recent_fps.values(), default=0)
        if same_first >= IDENTICAL_FIRST_MIN and self.finished <= IDENTICAL_FIRST:
            n, of = same_first, len(self._first)
        elif len(self._recent) == IDENTICAL_RECENT and same_recent > IDENTICAL_RECENT // 2:
            n, of = same_recent, IDENTICAL_RECENT
        else:
            return None
        return Halt(
            HaltReason.IDENTICAL_RECORDS,
            f"{n} of {of} different images gave the same record (a stuck model or a cached reply?)",
        )

    def _checkpoint(self) -> list[Decision]:
        cfg = self.config
        rate = self.usable / self.finished
        passed = rate >= cfg.quality_threshold
        failing = [t for t, _ in self._invalid.most_common(4)]
        out: list[Decision] = [
            Emit(
                EventType.QUALITY_CHECKPOINT,
                {
                    "checkpoint": self.finished,
                    "status": "passed" if passed else "failed",
                    "usable_rate": round(rate, 4),
                    "threshold": cfg.quality_threshold,
                    "usable": self.usable,
                    "unusable": self.finished - self.usable,
                    "failed_terms": {t: self._examples.get(t, [])[:3] for t in failing},
                },
            )
        ]
        if not passed:
            detail = "; ".join(
                f"{t}: " + ", ".join(repr(v) for v in self._examples.get(t, [])[:3])
                for t in failing
            )
            out.append(
                Halt(
                    HaltReason.EARLY_QUALITY_FAILED,
                    f"quality checkpoint {self.finished} failed: {rate:.0%} of records usable, "
                    f"below {cfg.quality_threshold:.0%}" + (f" ({detail})" if detail else ""),
                )
            )
        return out

    def _degradation(self) -> list[Decision]:
        if len(self._window) < min(DEGRADED_MIN_WINDOW, ROLLING_WINDOW):
            return []
        n = len(self._window)
        ok_rate = self._window_ok / n
        usable_rate = self._window_usable / n
        cfg = self.config
        if ok_rate < cfg.checkpoint_threshold:
            what = f"success rate {ok_rate:.0%} below {cfg.checkpoint_threshold:.0%}"
        elif usable_rate < cfg.quality_threshold:
            what = f"usable share {usable_rate:.0%} below {cfg.quality_threshold:.0%}"
        else:
            return []
        return [
            Halt(
                HaltReason.DEGRADED,
                f"the run degraded: over the last {n} specimens the {what} "
                "(--no-degraded-halt to let it go on)",
            )
        ]

    def observe_gold(self, data: Mapping[str, Any]) -> list[Decision]:
        """A `quality.gold` event's data; judged once every expected gold sheet is in."""
        return self.judge_gold() if self.count_gold(data) else []

    def count_gold(self, data: Mapping[str, Any]) -> bool:
        """Count a `quality.gold` event's data without judging; False if it has no terms."""
        terms = data.get("terms")
        if not isinstance(terms, Mapping):
            return False
        self.gold_done += 1
        self.gold_terms += len(terms)
        self.gold_correct += sum(1 for r in terms.values() if r == "correct")
        return True

    def judge_gold(self) -> list[Decision]:
        """The known-answer judgement, once: when every expected gold sheet is in (a resume
        whose gold sheets were all done before calls it once its own are queued)."""
        if self._gold_judged or not self.gold_done or self.gold_done < self.gold_expected:
            return []
        self._gold_judged = True
        acc = self.gold_correct / self.gold_terms if self.gold_terms else 1.0
        if acc >= self.config.gold_threshold:
            return []
        return [
            Halt(
                HaltReason.GOLD_FAILED,
                f"known-answer sheets: {acc:.0%} of terms right ({self.gold_correct}/"
                f"{self.gold_terms}), below {self.config.gold_threshold:.0%}",
            )
        ]

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

    def to_state(self) -> dict[str, Any]:
        return {
            "finished": self.finished,
            "succeeded": self.succeeded,
            "usable": self.usable,
            "checkpoint_done": self.checkpoint_done,
            "first": self._first,
            "recent": list(self._recent),
            "window": [[o, u] for o, u in self._window],
            "examples": self._examples,
            "invalid": dict(self._invalid),
            "gold": [self.gold_expected, self.gold_terms, self.gold_correct, self.gold_done],
            "gold_judged": self._gold_judged,
        }

    def load_state(self, s: Mapping[str, Any]) -> None:
        self.finished = int(s.get("finished", 0))
        self.succeeded = int(s.get("succeeded", 0))
        self.usable = int(s.get("usable", 0))
        self.checkpoint_done = bool(s.get("checkpoint_done", False))
        self._first = list(s.get("first", []))
        self._recent = deque(maxlen=IDENTICAL_RECENT)
        self._recent_fps = Counter()
        for fp in s.get("recent", [])[-IDENTICAL_RECENT:]:
            self._push_recent(fp if isinstance(fp, str) else None)
        self._window = deque(maxlen=ROLLING_WINDOW)
        self._window_ok = self._window_usable = 0
        for o, u in s.get("window", [])[-ROLLING_WINDOW:]:
            self._push_window(bool(o), bool(u))
        self._examples = {str(k): list(v) for k, v in (s.get("examples") or {}).items()}
        self._invalid = Counter({str(k): int(v) for k, v in (s.get("invalid") or {}).items()})
        gold = list(s.get("gold") or [0, 0, 0, 0])
        self.gold_expected, self.gold_terms, self.gold_correct, self.gold_done = map(int, gold)
        self._gold_judged = bool(s.get("gold_judged", False))


class RunRules:
    """Every rule of a run: validation first, then quality (both see every specimen)."""

    def __init__(self, config: ValidationConfig) -> None:
        self.validation = ValidationRules(config)
        self.quality = QualityRules(config)

    def observe(self, f: Finished) -> list[Decision]:
        return self.validation.observe(f) + self.quality.observe(f)

    def observe_gold(self, data: Mapping[str, Any]) -> list[Decision]:
        return self.quality.observe_gold(data)

    def verdict(self) -> tuple[str, str]:
        return self.quality.verdict()

    def to_state(self) -> dict[str, Any]:
        return {"validation": self.validation.to_state(), "quality": self.quality.to_state()}

    @classmethod
    def from_state(cls, config: ValidationConfig, s: Mapping[str, Any] | None) -> RunRules:
        rules = cls(config)
        if s:
            rules.validation.load_state(s.get("validation") or {})
            rules.quality.load_state(s.get("quality") or {})
        return rules


Rules = ValidationRules | QualityRules | RunRules


def replay_earlier(
    rules: RunRules,
    events: Iterable[Event],
    done: Collection[str],
    expected_gold: Callable[[str], bool],
) -> list[Halt]:
    """Fold a resumed run's earlier records into `rules`; the halts they reach, in order.

    The records are the earlier invocations' `specimen.completed` events of the specimens
    done (`done`: a successful record in raw.jsonl, not redone), each specimen's newest one,
    in the order they came, with their `quality.gold` results. Failed specimens are left
    out: the resume redoes them, and their new outcome is what counts. Gold results are
    counted, not judged: the resume's own gold sheets are queued first (`judge_gold` then).
    Events they decided were logged by the invocation that decided them; only the halts are
    returned, for the resume to stop with before it spends anything.
    """
    latest: dict[str, Finished] = {}  # not the events: a big log's values are let go
    gold: dict[str, Mapping[str, Any]] = {}
    for ev in events:
        sid = ev.specimen_id
        if sid is None or sid not in done:
            continue
        if ev.event_type == EventType.SPECIMEN_COMPLETED:
            latest.pop(sid, None)  # the newest record counts, where it came
            latest[sid] = Finished.of_event(ev)
        elif ev.event_type == EventType.QUALITY_GOLD:
            gold[sid] = ev.data
    halts: list[Halt] = []
    for sid, f in latest.items():
        halts += [d for d in rules.observe(f) if isinstance(d, Halt)]
        g = gold.get(sid)
        if g is not None and rules.quality.count_gold(g):
            rules.quality.gold_expected += expected_gold(str(g.get("image", "")))
    return halts


class _Bus(Protocol):
    def emit(self, event_type: str, *, data: Mapping[str, Any] | None = None) -> Any: ...


class _Control(Protocol):
    def halt(self, reason: str, message: str) -> Any: ...


def apply(
    decisions: Sequence[Decision],
    emit: Callable[[str, dict[str, Any]], Any],
    halt: Callable[[str, str], Any],
) -> None:
    """Carry decisions out: events through `emit`, then halts through `halt` (first one wins).

    Every event of one observation goes out before any halt: a distributed run's halt ends
    the run at once (its terminal event), a local run's only when the pipeline stops, and
    both must log the quality checkpoint that came with a failed success checkpoint before
    their end (tests/test_distributed.py::test_local_and_distributed_runs_decide_alike).
    """
    for d in decisions:
        if isinstance(d, Emit):
            emit(d.event_type, d.data)
    for d in decisions:
        if isinstance(d, Halt):
            halt(d.reason, d.message)


class RulesConsumer:
    """A bus consumer folding finished-specimen (and gold) events through `rules`; the
    decisions go to the bus and the RunControl."""

    def __init__(self, rules: Rules, bus: _Bus, control: _Control) -> None:
        self.rules = rules
        self._bus = bus
        self._halt = control.halt

    def _emit(self, event_type: str, data: dict[str, Any]) -> None:
        self._bus.emit(event_type, data=data)

    def __call__(self, event: Event) -> None:
        if event.event_type == EventType.QUALITY_GOLD:
            if not isinstance(self.rules, ValidationRules):
                apply(self.rules.observe_gold(event.data), self._emit, self._halt)
            return
        if event.event_type in FINISHED_SPECIMEN_TYPES:
            apply(self.rules.observe(Finished.of_event(event)), self._emit, self._halt)
