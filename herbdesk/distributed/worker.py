"""`herbdesk worker`: takes specimens from the broker's runs and extracts them.

Delivery is at-least-once: an entry is acknowledged (XACK) only after its record is stored
and its finished event added, and entries idle past `claim_idle_s` on a dead worker are
claimed (XAUTOCLAIM) by live ones. The result hash makes the effect exactly-once: a specimen
done twice is recorded, counted and announced once.

A claimed entry Redis has delivered more than `max_deliveries` times (every worker that took it
died on it: a decoder crash, an OOM kill on a gigantic sheet) is not tried again: it is recorded
as a failed specimen (`worker_crashed`) through the same path as any failure, and acknowledged,
so the run still completes.

Each specimen a worker starts holds a lease in the run's in-flight set until it is recorded
(taken out in the recording step) or given up; the process's main loop renews its leases,
so those of a killed worker lapse within INFLIGHT_LEASE_S. The budget counts them (admission is
RedisRun.admit, the local run's rule), and followers wait for them after the run's end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from herbdesk.common.apikeys import DEFAULT_KEY_ENV, get_api_key
from herbdesk.distributed.broker import RedisRun
from herbdesk.distributed.keys import (
    GROUP,
    INFLIGHT_LEASE_S,
    MAX_DELIVERIES,
    RUNS_KEY,
    redact_url,
)
from herbdesk.events.types import EventType, HaltReason
from herbdesk.extraction.config import (
    DEFAULT_BACKOFF_BASE_S,
    DEFAULT_BACKOFF_MAX_S,
    DEFAULT_MAX_ATTEMPTS,
)
from herbdesk.extraction.engines import Engine, EngineSettings, create_engine
from herbdesk.extraction.engines.base import (
    DEFAULT_MAX_SIDE,
    DEFAULT_TIMEOUT_S,
    EngineError,
    ErrorKind,
    SpecimenInput,
)
from herbdesk.extraction.limits import RequestLimits, default_requests_per_minute
from herbdesk.extraction.pipeline import (
    SpecimenOutcome,
    backoff_delay,
    changed_outcome,
    extract_with_retries,
    finished_event_data,
    specimen_record,
    with_same_bytes,
)
from herbdesk.monitor.rules import Finished
from herbdesk.monitor.validation import ValidationConfig
from herbdesk.quality.judge import QualitySettings, RecordJudge
from herbdesk.runstate.terms import value_text

log = logging.getLogger(__name__)
STOP_POLL_S = 0.2  # how often a backoff sleep looks at the control key


def _stops_admitted(run: RedisRun) -> bool:
    """Whether the run's halt stops a specimen already admitted: any halt or cancel but a
    budget pause, which refuses new specimens only. What the budget admitted fits in it and
    finishes, as in a local run (which halts once those finished): stopping one still waiting
    for its request slot left less spent than the budget had room for."""
    decision = run.stop_decision()
    return decision is not None and decision.get("reason") != HaltReason.BUDGET


class _RunContext:
    """A run as one worker serves it: broker handle, engine and validation settings."""

    def __init__(self, run: RedisRun) -> None:
        self.run = run
        m = run.manifest
        e = m.get("engine") or {}
        base_url = str(e.get("base_url") or "")
        engine_name = str(e.get("engine") or "ocr")
        self.settings = EngineSettings(
            engine=engine_name,
            model=str(e.get("model") or ""),
            base_url=base_url,
            api_key=get_api_key(base_url, str(m.get("api_key_env") or DEFAULT_KEY_ENV))
            if engine_name != "ocr"
            else None,
            prompt_text=str(e.get("prompt_text") or ""),
            max_side=int(e.get("max_side") or DEFAULT_MAX_SIDE),
            timeout_s=float(e.get("timeout_s") or DEFAULT_TIMEOUT_S),
        )
        # the run's pace (requests a minute, kept by each worker process), as enqueued; a
        # run enqueued before it was recorded keeps the engine's known cap
        self.pace: float | None = default_requests_per_minute(self.settings)
        if "requests_per_minute" in m:  # None there: unpaced
            self.pace = float(m["requests_per_minute"] or 0) or None
        self.limits: RequestLimits | None = None  # made by the Worker, with its stop-aware sleep
        self.max_attempts = int(m.get("max_attempts") or DEFAULT_MAX_ATTEMPTS)
        self.backoff_base_s = float(m.get("backoff_base_s") or DEFAULT_BACKOFF_BASE_S)
        self.backoff_max_s = float(m.get("backoff_max_s") or DEFAULT_BACKOFF_MAX_S)
        self.validation = ValidationConfig(**(m.get("validation") or {}))
        # records are judged by the same checks as a local run's; the gold file and the
        # checklist are read at their enqueued (absolute) paths, as images are: every worker
        # must reach them there (one machine, a shared mount)
        q = m.get("quality") or {}
        self.judge = RecordJudge.from_settings(
            QualitySettings(
                require=q.get("require"),
                catalog_pattern=q.get("catalog_pattern"),
                gold_path=Path(q["gold"]) if q.get("gold") else None,
                checklist_path=Path(q["checklist"]) if q.get("checklist") else None,
            ),
            self.settings.prompt_text,
        )
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = create_engine(self.settings)
            return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()


class Worker:
    """`concurrency` threads serving one run (`run_id`) or every run in the broker's run set."""

    def __init__(
        self,
        client: Any,
        *,
        concurrency: int = 1,
        run_id: str | None = None,
        claim_idle_s: float = 60.0,
        block_ms: int = 250,
        name: str | None = None,
        max_deliveries: int = MAX_DELIVERIES,
        lease_s: float = INFLIGHT_LEASE_S,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be >= 1")
        self.r = client
        self.concurrency = concurrency
        self.run_id = run_id
        self.claim_idle_ms = max(1, int(claim_idle_s * 1000))
        self.block_ms = block_ms
        self.max_deliveries = max_deliveries
        self.lease_s = lease_s
        self._held: dict[str, set[str]] = {}  # run id -> in-flight members this process holds
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.processed = 0
        self._stop = threading.Event()
        self._contexts: dict[str, _RunContext] = {}
        self._unservable: set[str] = set()  # runs whose quality files this worker cannot load
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Finish in-flight specimens, take no new ones."""
        self._stop.set()

    # ------------------------------------------------------------- loop
    def run(self) -> int:
        threads = [
            threading.Thread(
                target=self._loop,
                args=(f"{self.name}-{i}",),
                daemon=True,
                name=f"herbdesk-dworker-{i}",
            )
            for i in range(self.concurrency)
        ]
        for t in threads:
            t.start()
        last_renew = time.monotonic()
        try:
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(0.2)
                if time.monotonic() - last_renew >= self.lease_s / 3:
                    last_renew = time.monotonic()
                    self._renew_leases()
        finally:
            self._stop.set()
            for ctx in self._contexts.values():
                ctx.close()
        return 0

    def _renew_leases(self) -> None:
        """The heartbeat: extend the leases of the specimens this process has in flight."""
        import redis

        with self._lock:
            held = {rid: set(members) for rid, members in self._held.items() if members}
        for rid, members in held.items():
            try:
                RedisRun(self.r, rid, {}).renew(members, self.lease_s)
            except redis.RedisError as exc:  # the broker is away: the leases may lapse
                log.warning("cannot renew in-flight leases: %s", redact_url(str(exc)))

    def _hold(self, run_id: str, member: str, held: bool) -> None:
        with self._lock:
            members = self._held.setdefault(run_id, set())
            if held:
                members.add(member)
            else:
                members.discard(member)

    def _context(self, run_id: str) -> _RunContext | None:
        with self._lock:
            ctx = self._contexts.get(run_id)
            if ctx is None and run_id not in self._unservable:
                run = RedisRun(self.r, run_id)
                if not run.manifest:
                    return None
                try:
                    ctx = _RunContext(run)
                except (OSError, ValueError) as exc:
                    # a gold file or checklist this worker cannot read: records judged without
                    # it would differ from other workers' judgements, so the run stops here
                    log.error("run %s: %s", run_id, exc)
                    self._unservable.add(run_id)
                    run.halt(
                        HaltReason.FATAL_ERROR,
                        f"worker {self.name} cannot load the run's quality files: {exc} "
                        "(workers read them at the enqueued path)",
                    )
                    return None
                self._contexts[run_id] = ctx
                # pacing and quota waits shared by this process's threads for the run: a used-up
                # daily quota pauses them until the reset instead of failing every specimen
                ctx.limits = RequestLimits(
                    ctx.pace,
                    lambda d: self._sleep(run, d),
                    run,
                    give_up=lambda msg: run.halt(HaltReason.FATAL_ERROR, msg),
                )
            return ctx

    def _active(self) -> list[_RunContext]:
        """Runs to take work from: not halted, cancelled or ended (checked before each take)."""
        ids = (
            [self.run_id] if self.run_id else sorted(x.decode() for x in self.r.smembers(RUNS_KEY))
        )
        out = []
        for rid in ids:
            ctx = self._context(rid)
            if ctx is None:
                continue
            run = ctx.run
            if run.r.exists(run.keys.control) or run.is_ended():
                continue
            out.append(ctx)
        return out

    def _loop(self, consumer: str) -> None:
        """Take and process specimens until stopped (or, with run_id, until the run ends).

        A broker error never kills the thread: the entry in hand stays pending (claimed again
        later) and the loop retries, so a worker outlives a broker restart.
        """
        import redis

        state: dict[str, Any] = {"last_claim": 0.0, "seen_run": False}
        while not self._stop.is_set():
            try:
                if not self._step(consumer, state):
                    return
            except redis.RedisError as exc:
                log.warning("broker error: %s; retrying in 1 s", redact_url(str(exc)))
                self._stop.wait(1.0)

    def _step(self, consumer: str, state: dict[str, Any]) -> bool:
        """One take-and-process; False when there is nothing more to serve."""
        import redis

        runs = self._active()
        if not runs:
            if self.run_id and (
                state["seen_run"]
                or self._context(self.run_id) is not None
                or self.run_id in self._unservable
            ):
                return False  # our run is over (or halted): nothing more to take
            self._stop.wait(self.block_ms / 1000)
            return True
        state["seen_run"] = True
        item: tuple[_RunContext, bytes, dict[bytes, bytes]] | None = None
        deliveries = 1  # an entry read as new (">") is on its first delivery
        now = time.monotonic()
        if now - state["last_claim"] >= min(1.0, self.claim_idle_ms / 2000):
            state["last_claim"] = now
            item = self._claim(runs, consumer)
            if item is not None:
                deliveries = self._deliveries(item[0], item[1])
        if item is None:
            item = self._read(runs, consumer)
        if item is None:
            for ctx in runs:
                ctx.run.maybe_complete()
            return True
        ctx, entry_id, fields = item
        try:
            if deliveries > self.max_deliveries:
                self._give_up(ctx, consumer, entry_id, fields, deliveries)
            else:
                self._handle(ctx, consumer, entry_id, fields)
        except redis.RedisError:
            raise
        except Exception as exc:  # a bug halts the run with a reason, like a local run
            log.exception("worker failed on %s", entry_id)
            ctx.run.halt(HaltReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        return True

    def _read(
        self, runs: list[_RunContext], consumer: str
    ) -> tuple[_RunContext, bytes, dict[bytes, bytes]] | None:
        by_stream = {ctx.run.keys.specimens: ctx for ctx in runs}
        resp = self.r.xreadgroup(
            GROUP, consumer, {k: ">" for k in by_stream}, count=1, block=self.block_ms
        )
        for stream, entries in resp or []:
            for entry_id, fields in entries:
                return by_stream[stream.decode()], entry_id, fields
        return None

    def _claim(
        self, runs: list[_RunContext], consumer: str
    ) -> tuple[_RunContext, bytes, dict[bytes, bytes]] | None:
        for ctx in runs:
            resp = self.r.xautoclaim(
                ctx.run.keys.specimens,
                GROUP,
                consumer,
                min_idle_time=self.claim_idle_ms,
                start_id="0-0",
                count=1,
            )
            for entry_id, fields in resp[1]:
                if fields:  # None for an entry trimmed from the stream
                    return ctx, entry_id, fields
        return None

    def _deliveries(self, ctx: _RunContext, entry_id: bytes) -> int:
        """How many times Redis has delivered the entry (this claim included); 0 if it is no
        longer pending (acknowledged meanwhile)."""
        rows = self.r.xpending_range(ctx.run.keys.specimens, GROUP, entry_id, entry_id, 1)
        return int(rows[0]["times_delivered"]) if rows else 0

    # ------------------------------------------------------------- one specimen
    def _sleep(self, run: RedisRun, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return True
            if self._stop.is_set() or _stops_admitted(run):
                return False
            time.sleep(min(STOP_POLL_S, left))

    def _take(
        self, ctx: _RunContext, entry_id: bytes, fields: dict[bytes, bytes]
    ) -> SpecimenInput | None:
        """The entry's specimen, or None when there is nothing to do with it: already recorded
        (settled here), or the run halted while the read blocked (left pending)."""
        run = ctx.run
        sid = fields[b"specimen_id"].decode()
        item = SpecimenInput(path=Path(os.fsdecode(fields[b"path"])), specimen_id=sid)
        if run.r.hexists(run.keys.results, sid):
            self._settle_recorded(ctx, item, entry_id)
            return None
        if run.r.exists(run.keys.control):
            return None  # halted: leave it pending, start nothing new
        return item

    def _handle(
        self, ctx: _RunContext, consumer: str, entry_id: bytes, fields: dict[bytes, bytes]
    ) -> None:
        import redis

        run = ctx.run
        taken = self._take(ctx, entry_id, fields)
        if taken is None:
            return
        # the budget's admission (and the in-flight lease) before anything is started or
        # sent, as a local run's worker acquires its BudgetGate before taking a specimen
        member = f"{consumer}|{entry_id.decode()}"
        if not run.admit(member, self.lease_s, self._stop.is_set):
            return  # halted, paused at the budget just now, or stopping: left pending
        if run.manifest.get("budget_usd") is not None and run.r.hexists(
            run.keys.results, taken.specimen_id
        ):  # recorded while this one waited for the run's first cost (a claimed duplicate)
            run.release(member)
            self._settle_recorded(ctx, taken, entry_id)
            return
        self._hold(run.run_id, member, True)
        try:
            self._extract(ctx, consumer, entry_id, taken, member)
        finally:
            self._hold(run.run_id, member, False)
            with contextlib.suppress(redis.RedisError):  # else its lease lapses
                run.release(member)  # a no-op once recorded (the record took it out)

    def _extract(
        self,
        ctx: _RunContext,
        consumer: str,
        entry_id: bytes,
        item: SpecimenInput,
        member: str,
    ) -> None:
        run = ctx.run
        sid, path = item.specimen_id, item.path

        def started() -> bool:  # after the paced slot and any quota wait, as in a local run
            if _stops_admitted(run):
                return False  # halted meanwhile: leave it pending, start nothing new
            run.r.hincrby(run.keys.stats, "started", 1)
            run.emit(
                EventType.SPECIMEN_PROCESSING,
                specimen_id=sid,
                data={"image": path.name, "path": str(path), "worker": consumer},
            )
            return True

        engine = ctx.engine()
        checked = with_same_bytes(item)  # the same check as a local run's
        if checked is None:
            if started():
                self._finish(ctx, item, entry_id, engine, changed_outcome(item), member)
            return
        item = checked
        outcome = extract_with_retries(
            engine,
            item,
            ctx.max_attempts,
            lambda n, err: backoff_delay(n, err, ctx.backoff_base_s, ctx.backoff_max_s),
            lambda d: self._sleep(run, d),
            run,
            limits=ctx.limits,
            on_start=started,
        )
        if outcome.stopped:
            return  # left pending: not finished, so not recorded
        self._finish(ctx, item, entry_id, engine, outcome, member)

    def _give_up(
        self,
        ctx: _RunContext,
        consumer: str,
        entry_id: bytes,
        fields: dict[bytes, bytes],
        deliveries: int,
    ) -> None:
        """A claimed entry over the delivery limit: every worker that took it before died on
        it. Fail it without trying again (recorded, announced, acked like any failure)."""
        item = self._take(ctx, entry_id, fields)
        if item is None:
            return
        sid = item.specimen_id
        taken = deliveries - 1  # the deliveries before this claim, none of which finished
        log.warning(
            "%s: specimen %s (%s) was taken %d times and never finished (a worker crash or "
            "kill each time); failing it as worker_crashed without another try (limit %d "
            "deliveries)",
            consumer,
            sid,
            item.path,
            taken,
            self.max_deliveries,
        )
        error = EngineError(
            ErrorKind.WORKER_CRASHED,
            f"taken by workers {taken} times and never finished (a worker crash or kill each "
            f"time, e.g. a decoder crash or running out of memory on this image); not tried "
            f"again. Check the image (does it open? how large is it?) and the workers' logs, "
            f"then process it again in a new run (resuming a distributed run is not supported "
            f"yet)",
        )
        outcome = SpecimenOutcome(None, error, taken, 0.0)
        self._finish(ctx, item, entry_id, ctx.engine(), outcome)

    def _finish(
        self,
        ctx: _RunContext,
        item: SpecimenInput,
        entry_id: bytes,
        engine: Engine,
        outcome: SpecimenOutcome,
        in_flight: str = "",
    ) -> None:
        """Record a finished specimen once, announce it, ack its entry, run validation.
        `in_flight` its in-flight member, taken out as its cost is recorded."""
        run = ctx.run
        record = specimen_record(run.run_id, 0, item, engine, outcome)
        quality = ctx.judge.quality(record["dwc"]) if outcome.success else None
        # the judgement is stored with the record: a claimed duplicate's event and the
        # terminal event's quality summary read it from there
        counts = run.record(
            {**record, "quality": quality}, *outcome.metrics_args(), in_flight=in_flight
        )
        if counts is None:  # another worker recorded it meanwhile (a claimed duplicate)
            self._settle_recorded(ctx, item, entry_id)
            return
        sequence = counts[0]
        _, snap = run.snapshot()
        data = finished_event_data(item, outcome, quality)
        run.emit_finished(item.specimen_id, outcome.event_type, sequence, data, snap)
        self._judge(ctx, item.specimen_id, outcome.event_type, data)
        gold = ctx.judge.gold_result(item.path.name, record["dwc"])
        if gold is not None:
            run.emit(EventType.QUALITY_GOLD, specimen_id=item.specimen_id, data=gold)
            run.fold_gold(ctx.validation, item.specimen_id, gold)
        error = outcome.error
        if error is not None and error.fatal:
            run.halt(HaltReason.FATAL_ERROR, f"{error.kind}: {error.message}")
        # acknowledged only once judged: a worker killed before this line leaves the entry
        # pending, and whoever claims it settles the record, event and judgement
        run.r.xack(run.keys.specimens, GROUP, entry_id)
        self.processed += 1
        run.maybe_complete()

    def _judge(
        self, ctx: _RunContext, specimen_id: str, event_type: str, data: dict[str, Any]
    ) -> None:
        """The run's rules (monitor/rules.py, the same as a local run's) over this specimen."""
        ok = event_type == EventType.SPECIMEN_COMPLETED
        q = data.get("quality")
        err = data.get("error")
        finished = Finished(
            ok=ok,
            quality=q if isinstance(q, dict) else {},
            error=f"{err.get('kind', '?')}: {err.get('message', '')}"
            if isinstance(err, dict)
            else "",
        )
        ctx.run.fold_finished(ctx.validation, specimen_id, finished)

    def _settle_recorded(self, ctx: _RunContext, item: SpecimenInput, entry_id: bytes) -> None:
        """A specimen that already has a record: make sure its event exists, then ack."""
        run = ctx.run
        rec = run.stored_record(item.specimen_id) or {}
        ok = bool(rec.get("success"))
        data = {
            "image": rec.get("image", item.path.name),
            "success": ok,
            "fields_extracted": len(rec.get("dwc") or {}),
            "processing_time_ms": rec.get("processing_time_ms"),
            "attempts": rec.get("attempts"),
            "cost_usd": rec.get("cost_usd"),
            "tokens": int((rec.get("usage") or {}).get("total_tokens") or 0),
        }
        if rec.get("error"):
            data["error"] = rec["error"]
        if ok and isinstance(rec.get("quality"), dict):
            data["quality"] = rec["quality"]
        if ok and isinstance(rec.get("dwc"), dict):
            data["dwc"] = {t: value_text(v) for t, v in rec["dwc"].items()}
        _, snap = run.snapshot()
        etype = EventType.SPECIMEN_COMPLETED if ok else EventType.SPECIMEN_FAILED
        run.emit_finished(item.specimen_id, etype, int(rec.get("sequence") or 0), data, snap)
        self._judge(ctx, item.specimen_id, etype, data)
        run.r.xack(run.keys.specimens, GROUP, entry_id)
        run.maybe_complete()
