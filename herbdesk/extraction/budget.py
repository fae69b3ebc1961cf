"""`--budget USD`: nothing new starts once the run's cost would go past its budget.

The rule (README, "Budget"): before a worker starts a specimen, the run's cost so far plus
the specimens in flight and this one, each at the mean cost of the finished ones, must stay
within the budget, and the cost so far must be below it. Otherwise the run pauses
(`extraction.paused`, reason `budget`): in-flight specimens finish, nothing new starts, and
it stays paused until the budget is raised (the window's Resume after raising the field; a
headless run ends instead, since nobody can raise it in-process, and `--resume` with a
higher `--budget` goes on). Counting the ones in flight keeps the overshoot to how much a
specimen's cost varies, not `concurrency` whole specimens.

<<<<<<< HEAD
The cost is the run's own over every invocation: a resumed run starts from what run.json
says the earlier ones spent.

`admits` is the rule itself, the one copy: BudgetGate (a local run's threads) and the
distributed workers (herbdesk/distributed, the counters kept on the broker) both ask it.
=======
The cost is the run's own over every invocation: a resumed run starts from what the earlier
ones spent (pipeline.resumed_spent: run.json's figure, or raw.jsonl's costs after a kill).
>>>>>>> offgui
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from herbdesk.events.bus import Emitter
from herbdesk.events.types import EventType

# how a local run goes on after a budget pause (a distributed run says its own way)
LOCAL_GO_ON = (
    "Raise the budget to go on (the window's Budget field, then Resume; or herbdesk run "
    "--resume RUN_DIR --budget USD)."
)


def mean_cost(costed: int, cost_sum: float) -> float:
    """The mean cost of the finished specimens whose cost is known (0 before any)."""
    return cost_sum / costed if costed else 0.0


def admits(budget: float | None, spent: float, in_flight: int, mean: float) -> bool:
    """May one more specimen start? The cost so far must be below the budget, and with the
    `in_flight` specimens and this one at `mean` each it must stay within it. No budget: yes."""
    if budget is None:
        return True
    return spent < budget and spent + (in_flight + 1) * mean <= budget


def pause_message(
    budget: float | None, spent: float, in_flight: int, mean: float, go_on: str = LOCAL_GO_ON
) -> str:
    """What a budget pause says: why nothing new starts, and `go_on`, how to continue."""
    b = budget or 0.0
    if spent >= b:
        what = f"has reached its budget ${b:.4f}"
    else:
        what = (
            f"with {in_flight} specimen(s) in flight and one more at about "
            f"${mean:.4f} each, would go past its budget ${b:.4f}"
        )
    return (
        f"The run's cost ${spent:.4f} {what}: nothing new starts, specimens in flight "
        f"finish. {go_on}"
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

    `acquire()` blocks while the run is paused for its budget (False once the run stopped);
    `release(cost)` is called for every acquire when that specimen is done. `on_pause` is
    called once per pause, after its event (a headless run halts there).
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
        self._costed = 0  # finished specimens with a recorded cost (this invocation)
        self._cost_sum = 0.0
        self.in_flight = 0
        self.paused = False
        self._emitter = emitter
        self._should_stop = should_stop
        self._on_pause = on_pause
        self._cond = threading.Condition()

    def _mean(self) -> float:
        return mean_cost(self._costed, self._cost_sum)

    def _fits(self) -> bool:
        return admits(self.budget, self.spent, self.in_flight, self._mean())

    def acquire(self) -> bool:
        """Wait for room in the budget for one more specimen; False if the run stopped."""
        pause_msg = ""
        with self._cond:
            if not self.paused and not self._fits():
                self.paused = True
                pause_msg = self._announce_pause()
        if pause_msg and self._on_pause is not None:
            self._on_pause(pause_msg)
        with self._cond:
            while self.paused:
                if self._should_stop():
                    return False
                self._cond.wait(0.5)
            if self._should_stop():
                return False
            self.in_flight += 1
            return True

    def release(self, cost_usd: float | None = None, finished: bool = True) -> None:
        """A specimen acquired earlier is done; `cost_usd` what it cost (None: not known)."""
        with self._cond:
            self.in_flight -= 1
            if cost_usd is not None:
                self.spent += cost_usd
            if finished and cost_usd is not None:
                self._costed += 1
                self._cost_sum += cost_usd

    def raise_to(self, budget_usd: float | None) -> bool:
        """A new budget (None: none); True if a budget pause ended. Still short: the run stays
        paused and says so again with the new figure."""
        with self._cond:
            self.budget = budget_usd
            if not self.paused:
                return False
            if self._fits():
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
