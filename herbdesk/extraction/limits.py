"""The API's request limits: pace requests below a per-minute cap, wait out a daily cap.

OpenRouter's free model variants (`…:free`, the default model) allow 20 requests a minute and
50 a day (1,000 once credits were ever bought). Sending faster only provokes 429 storms, and a
run of thousands of sheets cannot finish in one UTC day: reaching the daily cap must pause the
run until the reset and say so, not fail every remaining specimen.

Only the provider's own word makes a 429 a quota (the engine sets `EngineError.quota`), and a
quota that is still used up after MAX_QUOTA_PAUSES waits in a row, with no request answered in
between, stops the run with a reason instead of pausing without end.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from herbdesk.events.bus import Emitter
from herbdesk.events.types import EventType
from herbdesk.extraction.engines.base import EngineError, EngineSettings, ErrorKind
from herbdesk.extraction.engines.openrouter import DEFAULT_MODEL

FREE_MODEL_PER_MINUTE = 20  # OpenRouter's documented cap for ':free' variants
FREE_MODEL_PER_DAY = 50  # ... and a day, for an account that never bought credits
FREE_MODEL_PER_DAY_WITH_CREDITS = 1000  # ... once credits were ever bought
PACE_SHARE = 0.9  # pace a little below a known cap: clocks and proxies are not exact
RESET_MARGIN_S = 30.0  # wait this much past the announced reset before trying again
# A daily quota resets within a day: a longer announced wait (or none that makes sense) is
# taken as "the next UTC midnight"; a reset already past (clocks disagree) as a short wait.
MAX_RESET_WAIT_S = 26 * 3600
PAST_RESET_WAIT_S = 60.0
# Waits for a quota reset in a row, no request answered between them, before the run stops.
MAX_QUOTA_PAUSES = 3


def default_requests_per_minute(settings: EngineSettings) -> float | None:
    """The pace a run gets when none is configured: only OpenRouter's free models have one.

    Told by the model name (OpenRouter's `:free` suffix), whatever the base URL: a proxy or
    gateway in front of OpenRouter is held to the same cap.
    """
    if is_free_model(settings.engine, settings.model):
        return FREE_MODEL_PER_MINUTE * PACE_SHARE
    return None


def is_free_model(engine: str | None, model: str | None) -> bool:
    """OpenRouter's `:free` variants (told by the name, as the pace is)."""
    return engine == "openrouter" and (model or DEFAULT_MODEL).endswith(":free")


def daily_cap_note(engine: str | None, model: str | None, sheets: int | None) -> str | None:
    """What a free model's daily cap means for this many sheets, in days, with what to do
    about it; None when the model has no daily cap or the sheets fit in one day."""
    if not is_free_model(engine, model) or not sheets or sheets <= FREE_MODEL_PER_DAY:
        return None
    days = math.ceil(sheets / FREE_MODEL_PER_DAY)
    paid = math.ceil(sheets / FREE_MODEL_PER_DAY_WITH_CREDITS)
    return (
        f"{sheets:,} sheets at {FREE_MODEL_PER_DAY} requests a day: about {days:,} days "
        f"({FREE_MODEL_PER_DAY_WITH_CREDITS:,} a day once you have bought credits: "
        f"{paid:,} day{'s' if paid != 1 else ''}); choose a paid model or run the OCR engine"
    )


class RequestPacer:
    """Spaces request starts at least 60/per_minute seconds apart, across all workers."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0:
            raise ValueError("requests per minute must be > 0")
        self.interval = 60.0 / per_minute
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Claim the next free slot; returns the seconds to wait before sending."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
            return slot - now


def is_quota_exhausted(err: EngineError) -> bool:
    """A 429 the provider says means "no more requests until the reset", not "slow down"."""
    return err.kind == ErrorKind.RATE_LIMITED and err.quota


def seconds_until_reset(err: EngineError, now: float | None = None) -> float:
    """From the server's reset time if it gave a plausible one, else until the next UTC
    midnight; always a finite number of seconds no longer than a day and a bit."""
    ra = err.retry_after
    if ra is not None and math.isfinite(ra):
        if 0 < ra <= MAX_RESET_WAIT_S:
            return ra + RESET_MARGIN_S
        if ra <= 0:
            return PAST_RESET_WAIT_S
    t = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    midnight = (t + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - t).total_seconds() + RESET_MARGIN_S


class RequestLimits:
    """Pacing and quota waits shared by every worker of one run.

    `sleep(seconds)` is the run's stop-aware sleep (False when the run was stopped meanwhile).
    The first worker to meet an exhausted quota announces the pause (`extraction.paused` with
    reason `quota`), the first one past the reset announces the resume; the others wait for
    the same moment without a word. `give_up(message)` halts the run once the quota was still
    used up after MAX_QUOTA_PAUSES waits in a row; no request goes out after that.
    """

    def __init__(
        self,
        per_minute: float | None,
        sleep: Callable[[float], bool],
        emitter: Emitter,
        wall_clock: Callable[[], float] = time.time,
        give_up: Callable[[str], object] | None = None,
    ) -> None:
        self.pacer = RequestPacer(per_minute) if per_minute else None
        self._sleep = sleep
        self._emitter = emitter
        self._now = wall_clock
        self._give_up = give_up
        self._lock = threading.Lock()
        self._until = 0.0  # wall-clock time the quota resets (0: not exhausted)
        self._pauses = 0  # quota pauses since a request was last answered
        self.epoch = 0  # counts quota pauses: a request sent before one says nothing after it
        self.gave_up = False

    def answered(self, sent_in: int | None = None) -> None:
        """A request sent in `sent_in` (the epoch when it went out) was answered: the quota,
        if it was used up, is back, unless a pause began after that request went out (a slow
        reply to an early request does not mean the quota came back)."""
        with self._lock:
            if sent_in is None or sent_in == self.epoch:
                self._pauses = 0

    def before_request(self) -> bool:
        """Wait for a quota reset and the next paced slot; False if the run was stopped."""
        while True:
            if self.gave_up:
                return False
            if not self._wait_for_quota():
                return False
            if self.pacer is not None:
                delay = self.pacer.reserve()
                if delay > 0 and not self._sleep(delay):
                    return False
            with self._lock:
                if self._until == 0.0:
                    return True
            # the quota ran out while this request waited for its slot: wait for the reset

    def _wait_for_quota(self) -> bool:
        while True:
            with self._lock:
                until = self._until
                wait = until - self._now()
                resumed = until > 0 and wait <= 0
                if resumed:
                    self._until = 0.0
            if resumed:
                self._emitter.emit(EventType.EXTRACTION_RESUMED, data={"reason": "quota"})
            if wait <= 0:
                return True
            if not self._sleep(wait):  # the run's own sleep: a stop cuts it short
                return False

    def quota_wait_s(self) -> float:
        """Seconds until the quota resets (0 when it is not used up)."""
        with self._lock:
            until = self._until
        return max(0.0, until - self._now()) if until else 0.0

    def quota_exhausted(self, err: EngineError) -> bool:
        """If `err` says the quota is used up, pause until the reset and return True (the
        attempt is not the specimen's fault and is tried again); False for any other error."""
        if not is_quota_exhausted(err):
            return False
        now = self._now()
        with self._lock:
            announce = self._until <= now and not self.gave_up
            if announce:
                self._pauses += 1
                self.epoch += 1
                stop = self._pauses > MAX_QUOTA_PAUSES
                self.gave_up = stop
                self._until = 0.0 if stop else now + seconds_until_reset(err, now)
            until, n = self._until, self._pauses
        if announce and self.gave_up:
            msg = (
                f"{err.kind}: the API's request quota was still used up after {n - 1} waits "
                f"for its reset ({err.message}); the run stops. Resume it once the quota is "
                "back: nothing is lost."
            )
            if self._give_up is not None:
                self._give_up(msg)
        elif announce:
            at = datetime.fromtimestamp(until, UTC)
            again = f" (wait {n} of at most {MAX_QUOTA_PAUSES} in a row)" if n > 1 else ""
            self._emitter.emit(
                EventType.EXTRACTION_PAUSED,
                data={
                    "reason": "quota",
                    "until": at.isoformat(timespec="seconds").replace("+00:00", "Z"),
                    "message": (
                        f"The API's request quota is used up ({err.message}). The run waits "
                        f"until {at:%Y-%m-%d %H:%M:%S} UTC{again} and then goes on by itself; "
                        "nothing is lost meanwhile."
                    ),
                },
            )
        return True
