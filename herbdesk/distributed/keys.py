"""Key layout of a distributed run, broker URLs, and password redaction."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PREFIX = "herbdesk"
RUNS_KEY = f"{PREFIX}:runs"  # set of run ids workers without --run-id serve
GROUP = "workers"
# Bounded event stream: ~1M events is ~330k specimens at 3 events each, far above one run;
# approximate trimming ("~") keeps XADD O(1). Followers attached later than that many events
# behind see the run from the oldest kept event (the coordinator's mirror holds everything).
EVENTS_MAXLEN = 1_000_000
SCHEMES = ("redis", "rediss", "unix")
# deliveries of one specimen entry (Redis's count: the first read plus each claim) before a
# claimed entry is failed (`worker_crashed`) instead of processed again; a specimen that kills
# every worker that takes it would otherwise be re-claimed each claim-idle, forever
MAX_DELIVERIES = 5
# a specimen in flight holds a lease on the run's `inflight` set that its worker renews every
# third of this; a killed worker's leases lapse after it, so the budget (and the follower
# waiting for in-flight specimens) stops counting them
INFLIGHT_LEASE_S = 30.0


@dataclass(frozen=True)
class RunKeys:
    """The Redis keys of one run."""

    run_id: str

    def key(self, name: str) -> str:
        return f"{PREFIX}:run:{self.run_id}:{name}"

    @property
    def specimens(self) -> str:
        return self.key("specimens")

    @property
    def events(self) -> str:
        return self.key("events")

    @property
    def control(self) -> str:
        return self.key("control")

    @property
    def ended(self) -> str:
        return self.key("ended")

    @property
    def results(self) -> str:
        return self.key("results")

    @property
    def stats(self) -> str:
        return self.key("stats")

    @property
    def seq(self) -> str:
        return self.key("seq")

    @property
    def sequence(self) -> str:
        return self.key("sequence")

    @property
    def manifest(self) -> str:
        return self.key("manifest")

    @property
    def enqueued(self) -> str:
        """How many specimens the run has on its stream, set once enqueueing has finished
        (until then the run cannot complete)."""
        return self.key("enqueued")

    @property
    def rules(self) -> str:
        """The run rules' state (monitor/rules.py RunRules.to_state, JSON)."""
        return self.key("rules")

    @property
    def inflight(self) -> str:
        """Specimens started and not finished: `worker|entry id` -> lease expiry (the broker's
        clock, epoch seconds), a sorted set."""
        return self.key("inflight")

    @property
    def rules_seen(self) -> str:
        """Specimen ids already folded into the rules (each is folded once)."""
        return self.key("rules_seen")


def is_broker_url(text: str) -> bool:
    return any(text.startswith(f"{s}://") for s in SCHEMES)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, safe for logs, events and run.json."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//[^@/]*@", "//***@", url)
    if parts.password is None and "@" not in parts.netloc:
        out = url
    else:
        user = parts.username or ""
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        cred = f"{user}:***" if parts.password is not None else user
        out = urlunsplit((parts.scheme, f"{cred}@{host}", parts.path, parts.query, ""))
    # unix sockets and query strings may carry the password as ?password=
    return re.sub(r"(password=)[^&]*", r"\1***", out)


def parse_run_target(target: str) -> tuple[str, str]:
    """`redis://[user:pw@]host:port/DB/RUN_ID` -> (broker URL, run id)."""
    parts = urlsplit(target)
    segs = [s for s in parts.path.split("/") if s]
    if parts.scheme not in SCHEMES or len(segs) != 2 or not segs[0].isdigit():
        raise ValueError(
            f"not a Redis run target: {redact_url(target)} "
            "(expected redis://host:6379/<db>/<run_id>)"
        )
    broker = urlunsplit((parts.scheme, parts.netloc, f"/{segs[0]}", parts.query, ""))
    return broker, segs[1]


def connect(url: str, **kw: Any) -> Any:
    """A redis-py client for the URL (AUTH and TLS as redis-py's from_url supports them)."""
    import redis

    return redis.Redis.from_url(url, health_check_interval=30, **kw)
