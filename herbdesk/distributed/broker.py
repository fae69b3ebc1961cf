"""One run's Redis operations: emit events, record results, halt and end the run.

Every multi-key step is one Lua script, so it is atomic against other workers: an event's `seq`
is taken and its entry added together (seq follows stream order), and a result is recorded,
numbered and folded into the run's counters together, or not at all when the specimen already
has a record (a specimen processed twice after a claim is recorded and counted once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from herbdesk import __version__
from herbdesk.common.fsnames import json_safe
from herbdesk.distributed.keys import EVENTS_MAXLEN, GROUP, INFLIGHT_LEASE_S, RUNS_KEY, RunKeys
from herbdesk.events.codec import BadLine, from_dict
from herbdesk.events.types import Event, EventType, HaltReason, utc_now_iso
from herbdesk.extraction.budget import Admission, admission, mean_cost, pause_data, pause_message
from herbdesk.monitor.ending import end_event
from herbdesk.monitor.metrics import MetricsAccumulator
from herbdesk.monitor.rules import Decision, Finished, RunRules, apply
from herbdesk.monitor.validation import ValidationConfig
from herbdesk.quality.tally import QualityTally

# how long one fold may hold the rules lock before Redis frees it (a worker killed while
# holding it); a fold takes milliseconds
RULES_LOCK_S = 30.0
# how often a worker waiting for the run's first cost asks again (the first specimen's reply)
ADMIT_POLL_S = 0.05

_EMIT = """
local s = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'seq', s, 'e', ARGV[2])
return s
"""

# KEYS: results, sequence, stats, recent, emitted, inflight
# ARGV: specimen_id, record head, record tail, ok, time_ms, confidence|'', tokens, cost|'',
#       in-flight member
# The specimen leaves `inflight` in the same step as its cost is added: the budget never
# sees it twice (in the cost so far and in flight) or not at all.
_RECORD = """
redis.call('ZREM', KEYS[6], ARGV[9])
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {0, 0} end
local n = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. n .. ARGV[3])
local st = KEYS[3]
redis.call('HINCRBY', st, 'processed', 1)
if ARGV[4] == '1' then
  redis.call('HINCRBY', st, 'success_count', 1)
  redis.call('HSET', st, 'consecutive_failures', 0)
else
  redis.call('HINCRBY', st, 'failed_count', 1)
  redis.call('HINCRBY', st, 'consecutive_failures', 1)
end
redis.call('HINCRBYFLOAT', st, 'sum_time_ms', ARGV[5])
if ARGV[6] ~= '' then
  redis.call('HINCRBYFLOAT', st, 'sum_confidence', ARGV[6])
  redis.call('HINCRBY', st, 'n_confidence', 1)
end
redis.call('HINCRBY', st, 'tokens', ARGV[7])
if ARGV[8] ~= '' then
  redis.call('HINCRBYFLOAT', st, 'cost_usd', ARGV[8])
  redis.call('HINCRBY', st, 'n_cost', 1)
end
redis.call('LPUSH', KEYS[4], ARGV[4])
redis.call('LTRIM', KEYS[4], 0, 49)
return {1, n, redis.call('HGET', st, 'processed'), redis.call('HGET', st, 'success_count') or 0,
        redis.call('HGET', st, 'consecutive_failures')}
"""

# the finished event of a recorded specimen, at most once (KEYS: emitted, seq, events)
_EMIT_FINISHED = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
local s = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'seq', s, 'e', ARGV[3])
return s
"""

_SEQ_MARK = b'"sequence":-1'


def event_from_entry(fields: Mapping[bytes, bytes]) -> Event:
    """Decode one events-stream entry; raises BadLine on anything else."""
    try:
        obj = orjson.loads(fields[b"e"])
        seq = int(fields[b"seq"])
    except (KeyError, ValueError, orjson.JSONDecodeError) as exc:
        raise BadLine(f"not an event entry: {exc}") from exc
    if not isinstance(obj, dict):
        raise BadLine("event entry is not an object")
    obj["seq"] = seq
    return from_dict(obj)


class RedisRun:
    """A run on the broker, as seen by one process (enqueuer, worker or follower)."""

    def __init__(self, client: Any, run_id: str, manifest: dict[str, Any] | None = None) -> None:
        self.r = client
        self.run_id = run_id
        self.keys = RunKeys(run_id)
        self._emit = client.register_script(_EMIT)
        self._record = client.register_script(_RECORD)
        self._emit_finished = client.register_script(_EMIT_FINISHED)
        self._manifest: dict[str, Any] | None = manifest  # None: read on first use

    # ------------------------------------------------------------- manifest
    @property
    def manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            raw = self.r.get(self.keys.manifest)
            self._manifest = orjson.loads(raw) if raw else {}
        return self._manifest

    def exists(self) -> bool:
        return bool(self.r.exists(self.keys.manifest))

    # ------------------------------------------------------------- events
    def _event_json(
        self,
        event_type: str,
        specimen_id: str | None,
        sequence: int | None,
        data: Mapping[str, Any] | None,
        metrics: Mapping[str, Any] | None,
    ) -> tuple[dict[str, Any], bytes]:
        ev = Event(
            event_type,
            self.run_id,
            0,
            utc_now_iso(),
            specimen_id,
            sequence,
            json_safe(dict(data or {})),  # a non-UTF-8 file name as \xNN, as in a local run
            dict(metrics) if metrics is not None else None,
        )
        obj = ev.to_dict()
        del obj["seq"]
        return obj, orjson.dumps(obj)

    def emit(
        self,
        event_type: str,
        *,
        specimen_id: str | None = None,
        sequence: int | None = None,
        data: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
    ) -> Event:
        """XADD one event with the run's next seq (same signature as EventBus.emit)."""
        obj, raw = self._event_json(event_type, specimen_id, sequence, data, metrics)
        seq = int(self._emit(keys=[self.keys.seq, self.keys.events], args=[EVENTS_MAXLEN, raw]))
        return from_dict({**obj, "seq": seq})

    # ------------------------------------------------------------- results
    def record(
        self,
        record: dict[str, Any],
        ok: bool,
        time_ms: float,
        confidence: float | None,
        tokens: int,
        cost: float | None,
        in_flight: str = "",
    ) -> tuple[int, int, int, int] | None:
        """Store the record and fold counters atomically; `in_flight` the specimen's member of
        the in-flight set, taken out in the same step.

        Returns (sequence, processed, succeeded, consecutive failures) as of this record, so
        exactly one worker sees each count (the checkpoint fires once), or None if the specimen
        already had a record.
        """
        raw = orjson.dumps(json_safe({**record, "sequence": -1}))
        head, sep, tail = raw.partition(_SEQ_MARK)
        assert sep, "record must carry a sequence"
        k = self.keys
        res = self._record(
            keys=[k.results, k.sequence, k.stats, k.key("recent"), k.key("emitted"), k.inflight],
            args=[
                record["specimen_id"],
                head + b'"sequence":',
                tail,
                "1" if ok else "0",
                repr(float(time_ms)),
                "" if confidence is None else repr(float(confidence)),
                int(tokens),
                "" if cost is None else repr(float(cost)),
                in_flight,
            ],
        )
        if not int(res[0]):
            return None
        return int(res[1]), int(res[2]), int(res[3]), int(res[4])

    def emit_finished(
        self,
        specimen_id: str,
        event_type: str,
        sequence: int,
        data: Mapping[str, Any],
        metrics: Mapping[str, Any],
    ) -> bool:
        """Emit a recorded specimen's completed/failed event unless it was already emitted."""
        _, raw = self._event_json(event_type, specimen_id, sequence, data, metrics)
        k = self.keys
        s = self._emit_finished(
            keys=[k.key("emitted"), k.seq, k.events], args=[specimen_id, EVENTS_MAXLEN, raw]
        )
        return bool(int(s))

    def stored_record(self, specimen_id: str) -> dict[str, Any] | None:
        raw = self.r.hget(self.keys.results, specimen_id)
        return orjson.loads(raw) if raw else None

    def metrics(self) -> MetricsAccumulator:
        """The run's counters as a MetricsAccumulator (for snapshots in events)."""
        st = {k.decode(): v.decode() for k, v in self.r.hgetall(self.keys.stats).items()}
        total = self.enqueued_total()
        m = MetricsAccumulator(
            total=int(self.manifest.get("total") or 0) if total is None else total
        )
        m.processed = int(st.get("processed", 0))
        m.success_count = int(st.get("success_count", 0))
        m.failed_count = int(st.get("failed_count", 0))
        m.consecutive_failures = int(st.get("consecutive_failures", 0))
        m.sum_time_ms = float(st.get("sum_time_ms", 0))
        m.sum_confidence = float(st.get("sum_confidence", 0))
        m.n_confidence = int(st.get("n_confidence", 0))
        m.tokens = int(st.get("tokens", 0))
        m.cost_usd = float(st.get("cost_usd", 0))
        for v in reversed(self.r.lrange(self.keys.key("recent"), 0, -1)):
            m.recent.append(v == b"1")
        return m

    def elapsed_s(self) -> float:
        return max(0.0, time.time() - float(self.manifest.get("started_epoch") or time.time()))

    def snapshot(self) -> tuple[MetricsAccumulator, dict[str, Any]]:
        m = self.metrics()
        return m, m.snapshot(self.elapsed_s())

    # ------------------------------------------------------------- rules
    def fold_rules(
        self, config: ValidationConfig, key: str, observe: Callable[[RunRules], list[Decision]]
    ) -> None:
        """Fold one fact (a finished specimen, a gold sheet's result) into the run's rules,
        once per `key`, and carry out what they decide (emit the checkpoint, halt).

        The same RunRules as a local run, its state kept here; the lock orders folds from
        different workers, and a fact already folded (its worker died after the fold, the
        entry was claimed again) is not folded twice."""
        k = self.keys
        with self._rules_lock():
            if self.r.sismember(k.rules_seen, key):
                return
            rules = self.rules(config)
            decisions = observe(rules)
            apply(decisions, lambda et, data: self.emit(et, data=data), self.halt)
            tx = self.r.pipeline(transaction=True)
            tx.set(k.rules, orjson.dumps(rules.to_state()))
            tx.sadd(k.rules_seen, key)
            tx.execute()

    def fold_finished(self, config: ValidationConfig, specimen_id: str, f: Finished) -> None:
        self.fold_rules(config, specimen_id, lambda rules: rules.observe(f))

    def fold_gold(
        self, config: ValidationConfig, specimen_id: str, data: Mapping[str, Any]
    ) -> None:
        self.fold_rules(config, f"gold:{specimen_id}", lambda rules: rules.observe_gold(data))

    def rules(self, config: ValidationConfig) -> RunRules:
        raw = self.r.get(self.keys.rules)
        return RunRules.from_state(config, orjson.loads(raw) if raw else None)

    def rules_folded(self) -> int:
        """Finished specimens folded into the rules (gold results are keyed apart)."""
        n = int(self.r.scard(self.keys.rules_seen))
        gold = self.rules(self.validation_config()).quality.gold_done
        return n - gold

    def quality_summary(self) -> dict[str, Any]:
        """The terminal event's `quality` object, from the stored records' judgements."""
        tally = QualityTally()
        n = 0
        for _, raw in self.r.hscan_iter(self.keys.results, count=1000):
            rec = orjson.loads(raw)
            q = rec.get("quality")
            tally.set(n, q if rec.get("success") and isinstance(q, dict) else None)
            n += 1
        return tally.summary(n)

    # ------------------------------------------------------------- in flight, budget
    def _rules_lock(self) -> Any:
        """The run's one lock: rule folds, budget admissions and a reopening are ordered by it."""
        return self.r.lock(self.keys.key("rules_lock"), timeout=RULES_LOCK_S, blocking_timeout=None)

    def now(self) -> float:
        """The broker's clock: leases are set and compared by it, whatever the workers' say."""
        sec, usec = self.r.time()
        return float(sec) + float(usec) / 1e6

    def in_flight(self, now: float | None = None) -> int:
        """Specimens started and not finished; the lapsed leases of dead workers dropped."""
        key = self.keys.inflight
        self.r.zremrangebyscore(key, "-inf", self.now() if now is None else now)
        return int(self.r.zcard(key))

    def in_flight_entries(self) -> set[bytes]:
        """The stream entry ids of the specimens in flight (members are `worker|entry id`)."""
        self.in_flight()
        return {m.rpartition(b"|")[2] for m in self.r.zrange(self.keys.inflight, 0, -1)}

    def budget_usd(self) -> float | None:
        """The run's budget, read afresh: reopening the run raises it in the manifest."""
        raw = self.r.get(self.keys.manifest)
        value = (orjson.loads(raw) if raw else {}).get("budget_usd")
        return float(value) if value is not None else None

    def cost_so_far(self) -> tuple[float, float | None]:
        """(the run's recorded cost, the mean cost of a specimen: budget.mean_cost over the
        run's recorded specimens, every stretch of it; None before any was recorded)."""
        total, mean, _ = self._cost_figures()
        return total, mean

    def _cost_figures(self) -> tuple[float, float | None, int]:
        """`cost_so_far` and the number of the run's recorded specimens."""
        spent, n, done = self.r.hmget(self.keys.stats, "cost_usd", "n_cost", "processed")
        total, finished = float(spent or 0.0), int(done or 0)
        return total, mean_cost(finished, int(n or 0), total), finished

    def admit(
        self,
        member: str,
        lease_s: float = INFLIGHT_LEASE_S,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Start one specimen (`member`: `worker|entry id`) if the run takes new work: not
        halted, and its budget admits it (budget.admission, the local run's rule, over the
        whole run's counters here). With a budget the check and the count are made under the
        run's lock, so two workers never both take the last room. While no specimen of the
        run is recorded (the mean not known) and one is in flight, this waits for it (False
        if `should_stop` meanwhile). Refused by the budget, the run pauses: its one
        `extraction.paused` (reason budget), then the halt (reason budget) that ends
        followers with exit 7, like a headless local run; in-flight specimens finish."""
        k = self.keys
        if self.manifest.get("budget_usd") is None:  # no budget: nothing to order
            if self.r.exists(k.control):
                return False
            self.r.zadd(k.inflight, {member: self.now() + lease_s})
            return True
        while True:
            with self._rules_lock():
                if self.r.exists(k.control):
                    return False  # halted (the pause among them): one pause event, one worker
                now = self.now()
                in_flight = self.in_flight(now)
                budget = self.budget_usd()
                spent, mean, finished = self._cost_figures()
                verdict = admission(budget, spent, in_flight, mean, finished)
                if verdict is Admission.START:
                    self.r.zadd(k.inflight, {member: now + lease_s})
                    return True
                if verdict is Admission.PAUSE:
                    msg = pause_message(budget, spent, in_flight, mean, self.go_on())
                    self.emit(EventType.EXTRACTION_PAUSED, data=pause_data(budget, spent, msg))
                    self.halt(HaltReason.BUDGET, msg)
                    return False
            if should_stop():  # waiting for the first cost (outside the lock)
                return False
            time.sleep(ADMIT_POLL_S)

    def go_on(self) -> str:
        """How a distributed run paused at its budget goes on (the pause's message says it)."""
        m = self.manifest
        return (
            f"Raise the budget to go on: herbdesk run --resume RUN_DIR --broker "
            f"{m.get('broker') or 'URL'} --budget USD (RUN_DIR the run's folder, "
            f"e.g. runs/{self.run_id}); workers serving every run take it "
            "up again, start those that served only this run again."
        )

    def renew(self, members: set[str], lease_s: float = INFLIGHT_LEASE_S) -> None:
        """Extend the leases of specimens still in flight (a live worker's heartbeat)."""
        if members:
            until = self.now() + lease_s
            self.r.zadd(self.keys.inflight, dict.fromkeys(members, until), xx=True)

    def release(self, member: str) -> None:
        """A started specimen is done without a record (stopped, or a duplicate)."""
        self.r.zrem(self.keys.inflight, member)

    def reopen(self, budget_usd: float) -> Event:
        """Go on with a run that paused at its budget, with a new budget: the manifest takes
        it, the halt is lifted, entries that were read but never started (refused at the
        pause) go back on the stream as new ones, and `extraction.started` (resumed, with
        `cost_before_usd`) opens the next stretch. Raises ValueError for any other run."""
        k = self.keys
        with self._rules_lock():
            raw = self.r.get(k.manifest)
            if not raw:
                raise ValueError(f"run {self.run_id} is not on the broker")
            decision = self.stop_decision()
            if decision is None or decision.get("reason") != HaltReason.BUDGET:
                why = "it is still running" if decision is None else f"it {decision['reason']}"
                raise ValueError(
                    f"run {self.run_id} did not pause at its budget ({why}); only a budget "
                    "pause can be resumed on the broker"
                )
            manifest = orjson.loads(raw)
            manifest["budget_usd"] = budget_usd
            manifest["config"] = {**(manifest.get("config") or {}), "budget_usd": budget_usd}
            held = self.in_flight_entries()  # finishing on a live worker: its worker acks it
            stranded = [
                p["message_id"]
                for p in self.r.xpending_range(k.specimens, GROUP, "-", "+", 1_000_000)
                if p["message_id"] not in held
            ]
            for entry_id in stranded:
                rows = self.r.xrange(k.specimens, entry_id, entry_id)
                tx = self.r.pipeline(transaction=True)  # re-added and acked together
                if rows and rows[0][1]:
                    tx.xadd(k.specimens, rows[0][1])
                tx.xack(k.specimens, GROUP, entry_id)
                tx.execute()
            tx = self.r.pipeline(transaction=True)
            tx.set(k.manifest, orjson.dumps(manifest))
            tx.delete(k.control, k.ended)
            tx.sadd(RUNS_KEY, self.run_id)
            tx.execute()
            self._manifest = manifest
            spent, _ = self.cost_so_far()
            total = self.enqueued_total()
            return self.emit(
                EventType.EXTRACTION_STARTED,
                data={
                    "total": int(manifest.get("total") or 0) if total is None else total,
                    "resumed": True,
                    "cost_before_usd": round(spent, 6),
                    "herbdesk_version": __version__,
                    "config": manifest["config"],
                    "broker": manifest.get("broker"),
                },
            )

    # ------------------------------------------------------------- control
    def stop_decision(self) -> dict[str, Any] | None:
        """The halt/cancel decision every worker checks before taking new work."""
        raw = self.r.get(self.keys.control)
        return orjson.loads(raw) if raw else None

    def is_ended(self) -> bool:
        return bool(self.r.exists(self.keys.ended))

    def halt(self, reason: str, message: str) -> bool:
        """Record a halt (first reason wins) and end the run as failed; False if already set."""
        decision = orjson.dumps({"reason": reason, "message": message, "at": utc_now_iso()})
        if not self.r.set(self.keys.control, decision, nx=True):
            return False
        self.end("failed", reason, message)
        return True

    def cancel(self, message: str = "stopped by the user") -> None:
        if self.r.set(
            self.keys.control, orjson.dumps({"reason": "cancelled", "message": message}), nx=True
        ):
            self.end("cancelled", None, message)

    def end(self, status: str, reason: str | None, message: str) -> bool:
        """Emit the run's one terminal event (whoever sets `ended` first)."""
        if not self.r.set(self.keys.ended, status, nx=True):
            return False
        self.r.srem(RUNS_KEY, self.run_id)
        _, snap = self.snapshot()
        verdict = self.rules(self.validation_config()).verdict() if status == "completed" else None
        etype, data = end_event(
            status,
            reason,
            message,
            snap,
            int(self.r.hget(self.keys.stats, "started") or 0),
            self.quality_summary(),
            verdict,
        )
        self.emit(etype, data=data, metrics=snap)
        return True

    def validation_config(self) -> ValidationConfig:
        return ValidationConfig(**(self.manifest.get("validation") or {}))

    def enqueued_total(self) -> int | None:
        """How many specimens the run has, once enqueueing has finished (None before). A run
        enqueued all at once (no `streamed` in its manifest) has them all from the start."""
        if not self.manifest.get("streamed"):
            return int(self.manifest.get("total") or 0)
        raw = self.r.get(self.keys.enqueued)
        return int(raw) if raw is not None else None

    def maybe_complete(self) -> bool:
        """End the run as completed once every queued specimen has a record and has been
        judged by the rules (the verdict needs them all)."""
        total = self.enqueued_total()
        if total is None:
            return False  # still enqueueing: more specimens are coming
        done = int(self.r.hlen(self.keys.results))
        if done >= total and self.rules_folded() >= total and not self.r.exists(self.keys.control):
            return self.end("completed", None, "run completed")
        return False
