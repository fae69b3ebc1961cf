"""`--budget USD`: nothing new starts once the run's cost would go past its budget.

The rule (README, "Budget"): before a worker starts a specimen, the run's cost so far plus
the specimens in flight and this one, each at the mean cost of the finished ones, must stay
within the budget, and the cost so far must be below it. While no specimen of the run has
finished, that mean is not known: one specimen at a time is admitted until one finishes (then
the mean is known, 0 if none recorded a cost, so an engine that costs nothing is serialised
for its first specimen only). Otherwise the run pauses (`extraction.paused`, reason `budget`):
in-flight specimens finish, nothing new starts, and it stays paused until the budget is raised
(the window's Resume after raising the field; a headless run ends instead, since nobody can
raise it in-process, and `--resume` with a higher `--budget` goes on). Counting the ones in
flight keeps the overshoot to how much a specimen's cost varies, not `concurrency` whole
specimens.

The cost and the mean are the run's own over every invocation: a resumed run starts from what
the earlier ones spent and finished (pipeline.resumed_spent, results.resume_point: run.json's
figure, or raw.jsonl's records after a kill).

`admission` is the rule itself, the one copy: BudgetGate (a local run's threads) and the
distributed workers (herbdesk/distributed, the counters kept on the broker) both ask it.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable

from herbdesk.events.bus import Emitter
from herbdesk.events.types import EventType

# how a local run goes on after a budget pause (a distributed run says its own way)
LOCAL_GO_ON = (
    "Raise the budget to go on (the window's Budget field, then Resume; or herbdesk run "
    "--resume RUN_DIR --budget USD)."
)


class Admission(enum.Enum):
    """What the rule says to a worker about to start a specimen."""

    START = "start"
    WAIT = "wait"  # the mean is not known yet and one is in flight: wait for it to finish
    PAUSE = "pause"  # no room: the run pauses at its budget


def no_cost_note(engine: str, budget: float | None) -> str:
    """What to say at the start when the run has a budget but its engine reports no cost
    (the offline OCR engine): the budget cannot stop it. "" otherwise."""
    from herbdesk.extraction.engines import reports_cost

    if budget is None or reports_cost(engine):
        return ""
    return (
        f"the {engine} engine reports no cost, so the budget (${budget:.4f}) cannot stop "
        "this run: it goes on to the end"
    )


def mean_cost(finished: int, costed: int, cost_sum: float) -> float | None:
    """The mean cost of a specimen: over the finished ones whose cost is known; 0 once some
    finished but none recorded a cost (an engine that reports none); None (not known) while
    no specimen of the run has finished."""
    if not finished:
        return None
    return cost_sum / costed if costed else 0.0


def admission(
    budget: float | None, spent: float, in_flight: int, mean: float | None, finished: int = 0
) -> Admission:
    """May one more specimen start? The cost so far must be below the budget, and with the
    `in_flight` specimens and this one at `mean` each it must stay within it. No budget:
    always.

    Never more in flight than have `finished` (one alone while none has, the mean not known):
    a mean is trusted for as many specimens as it was taken over, so a first cheap sheet
    cannot admit `concurrency` dear ones at its price. The first few start one, one, two,
    three… at a time; a resume, its earlier specimens counted, runs at full width at once."""
    if budget is None:
        return Admission.START
    if spent >= budget:
        return Admission.PAUSE
    if mean is None or (in_flight and in_flight >= finished):
        return Admission.START if in_flight == 0 else Admission.WAIT
    return Admission.START if spent + (in_flight + 1) * mean <= budget else Admission.PAUSE


def pause_message(
    budget: float | None,
    spent: float,
    in_flight: int,
    mean: float | None,
    go_on: str = LOCAL_GO_ON,
) -> str:
    """What a budget pause says: why nothing new starts, and `go_on`, how to continue."""
    b = budget or 0.0
    if spent >= b:
        what = f"has reached its budget ${b:.4f}"
    else:
        what = (
            f"with {in_flight} specimen(s) in flight and one more at about "
            f"${mean or 0.0:.4f} each, would go past its budget ${b:.4f}"
        )
    return (
        f"The run's cost ${spent:.4f} {what}: nothing new starts, specimens in flight "
        f"finish. {go_on}"
    )


def settled_message(budget: float | None, spent: float, go_on: str = LOCAL_GO_ON) -> str:
    """What a budget pause says once every specimen in flight at it has finished: the final
    spend, not the pause's."""
    return (
        f"The run paused at its budget ${budget or 0.0:.4f}: it spent ${spent:.4f}, every "
        f"specimen in flight finished, nothing new starts. {go_on}"
    )


def pause_data(budget: float | None, spent: float, message: str) -> dict[str, object]:
    """The `extraction.paused` event's data for a budget pause (local and distributed)."""
    return {
        "reason": "budget",
        "budget_usd": budget,
        "cost_usd": round(spent, 6),
        "message": message,
    }


class BudgetGate:
    """Admits specimens while the budget leaves room; shared by every worker of one run.

    `acquire()` blocks while the run is paused for its budget, or while the first specimen's
    cost is not known yet (False once the run stopped); `release(cost, finished)` is called
    for every acquire when that specimen is done. `on_pause` is called once per pause, once
    nothing is in flight any more, with settled_message (a headless run halts there: not at
    the pause itself, which would stop a specimen admitted within the budget that was still
    waiting for its request slot).
    """

    def __init__(
        self,
        budget_usd: float | None,
        emitter: Emitter,
        spent_before: float = 0.0,
        should_stop: Callable[[], bool] = lambda: False,
        on_pause: Callable[[str], object] | None = None,
    ) -> None:
        self.budget = budget_usd
        self.spent = spent_before
        # the mean's figures, over every invocation of the run (resume_from adds the earlier)
        self.finished = 0  # specimens finished (recorded), a cost known or not
        self._costed = 0  # of them, those with a recorded cost
        self._cost_sum = 0.0
        self.in_flight = 0
        self.paused = False
        self._settled = False  # this pause's on_pause was called
        self._emitter = emitter
        self._should_stop = should_stop
        self._on_pause = on_pause
        self._cond = threading.Condition()

    def resume_from(self, spent: float, finished: int, costed: int, cost_sum: float) -> None:
        """A resumed run: what its earlier invocations spent, and the specimens they finished
        (`costed` of them with a cost summing to `cost_sum`), so the mean is known at once."""
        with self._cond:
            self.spent = spent
            self.finished, self._costed, self._cost_sum = finished, costed, cost_sum

    def _mean(self) -> float | None:
        return mean_cost(self.finished, self._costed, self._cost_sum)

    def _admission(self) -> Admission:
        return admission(self.budget, self.spent, self.in_flight, self._mean(), self.finished)

    def acquire(self) -> bool:
        """Wait for room in the budget for one more specimen; False if the run stopped."""
        while True:
            with self._cond:
                while True:
                    if self._should_stop():
                        return False
                    verdict = Admission.WAIT if self.paused else self._admission()
                    if verdict is Admission.START:
                        self.in_flight += 1
                        return True
                    if verdict is Admission.PAUSE:
                        self.paused, self._settled = True, False
                        self._announce_pause()
                        settled = self._settle()
                        break
                    self._cond.wait(0.5)  # paused, or the first cost is not known yet
            self._tell_settled(settled)

    def release(self, cost_usd: float | None = None, finished: bool = True) -> None:
        """A specimen acquired earlier is done; `cost_usd` what it cost (None: not known),
        `finished` False for one that was not recorded (stopped, or nothing was taken)."""
        with self._cond:
            self.in_flight -= 1
            if cost_usd is not None:
                self.spent += cost_usd
            if finished:
                self.finished += 1
                if cost_usd is not None:
                    self._costed += 1
                    self._cost_sum += cost_usd
            self._cond.notify_all()  # a worker waiting for the first cost may go on
            settled = self._settle()
        self._tell_settled(settled)

    def _settle(self) -> str:
        """(Under the lock) the settled message, once per pause, when nothing is in flight."""
        if not self.paused or self._settled or self.in_flight:
            return ""
        self._settled = True
        return settled_message(self.budget, self.spent)

    def _tell_settled(self, message: str) -> None:
        if message and self._on_pause is not None:
            self._on_pause(message)

    def raise_to(self, budget_usd: float | None) -> bool:
        """A new budget (None: none); True if a budget pause ended. Still short: the run stays
        paused and says so again with the new figure."""
        with self._cond:
            self.budget = budget_usd
            if not self.paused:
                return False
            if self._admission() is not Admission.PAUSE:
                self.paused = False
                self._emitter.emit(EventType.EXTRACTION_RESUMED, data={"reason": "budget"})
                self._cond.notify_all()
                return True
            self._announce_pause()
            return False

    def _announce_pause(self) -> str:
        """The budget pause's event (under the lock); its message."""
        msg = pause_message(self.budget, self.spent, self.in_flight, self._mean())
        self._emitter.emit(
            EventType.EXTRACTION_PAUSED, data=pause_data(self.budget, self.spent, msg)
        )
        return msg

    def wake(self) -> None:
        """Let waiting workers see a stop."""
        with self._cond:
            self._cond.notify_all()
