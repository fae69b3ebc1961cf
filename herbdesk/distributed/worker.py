"""`herbdesk worker`: takes specimens from the broker's runs and extracts them.

Delivery is at-least-once: an entry is acknowledged (XACK) only after its record is stored
and its finished event added, and entries idle past `claim_idle_s` on a dead worker are
claimed (XAUTOCLAIM) by live ones. The result hash makes the effect exactly-once: a specimen
done twice is recorded, counted and announced once.

A claimed entry Redis has delivered more than `max_deliveries` times (every worker that took it
died on it: a decoder crash, an OOM kill on a gigantic sheet) is not tried again: it is recorded
as a failed specimen (`worker_crashed`) through the same path as any failure, and acknowledged,
so the run still completes.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from herbdesk.apikeys import get_api_key
from herbdesk.distributed.broker import RedisRun
from herbdesk.distributed.keys import GROUP, MAX_DELIVERIES, RUNS_KEY, redact_url
from herbdesk.events.types import EventType, HaltReason
from herbdesk.extraction.engines import Engine, EngineSettings, create_engine
from herbdesk.extraction.engines.base import EngineError, ErrorKind, SpecimenInput
from herbdesk.extraction.limits import RequestLimits, default_requests_per_minute
from herbdesk.extraction.pipeline import (
    SpecimenOutcome,
    backoff_delay,
    extract_with_retries,
    finished_event_data,
    specimen_record,
)
from herbdesk.monitor.validation import ValidationConfig
from herbdesk.quality.judge import QualitySettings, RecordJudge

log = logging.getLogger(__name__)
STOP_POLL_S = 0.2  # how often a backoff sleep looks at the control key


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
            api_key=get_api_key(base_url, str(m.get("api_key_env") or "OPENROUTER_API_KEY"))
            if engine_name != "ocr"
            else None,
            prompt_text=str(e.get("prompt_text") or ""),
            max_side=int(e.get("max_side") or 2048),
            timeout_s=float(e.get("timeout_s") or 120.0),
        )
        # the run's pace (requests a minute, kept by each worker process), as enqueued; a
        # run enqueued before it was recorded keeps the engine's known cap
        self.pace: float | None = default_requests_per_minute(self.settings)
        if "requests_per_minute" in m:  # None there: unpaced
            self.pace = float(m["requests_per_minute"] or 0) or None
        self.limits: RequestLimits | None = None  # made by the Worker, with its stop-aware sleep
        self.max_attempts = int(m.get("max_attempts") or 4)
        self.backoff_base_s = float(m.get("backoff_base_s") or 2.0)
        self.backoff_max_s = float(m.get("backoff_max_s") or 120.0)
        self.validation = ValidationConfig(**(m.get("validation") or {}))
        # records are judged by the same checks as a local run's (gold sheets and checklists
        # are files on the enqueuing machine: not applied by workers yet)
        q = m.get("quality") or {}
        self.judge = RecordJudge.from_settings(
            QualitySettings(require=q.get("require"), catalog_pattern=q.get("catalog_pattern")),
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
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.processed = 0
        self._stop = threading.Event()
        self._contexts: dict[str, _RunContext] = {}
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
        try:
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(0.2)
        finally:
            self._stop.set()
            for ctx in self._contexts.values():
                ctx.close()
        return 0

    def _context(self, run_id: str) -> _RunContext | None:
        with self._lock:
            ctx = self._contexts.get(run_id)
            if ctx is None:
                run = RedisRun(self.r, run_id)
                if not run.manifest:
                    return None
                ctx = self._contexts[run_id] = _RunContext(run)
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
            if self.run_id and (state["seen_run"] or self._context(self.run_id) is not None):
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
            if self._stop.is_set() or run.r.exists(run.keys.control):
                return False
            time.sleep(min(STOP_POLL_S, left))

    def _take(
        self, ctx: _RunContext, entry_id: bytes, fields: dict[bytes, bytes]
    ) -> SpecimenInput | None:
        """The entry's specimen, or None when there is nothing to do with it: already recorded
        (settled here), or the run halted while the read blocked (left pending)."""
        run = ctx.run
        sid = fields[b"specimen_id"].decode()
        item = SpecimenInput(path=Path(fields[b"path"].decode()), specimen_id=sid)
        if run.r.hexists(run.keys.results, sid):
            self._settle_recorded(ctx, item, entry_id)
            return None
        if run.r.exists(run.keys.control):
            return None  # halted: leave it pending, start nothing new
        return item

    def _handle(
        self, ctx: _RunContext, consumer: str, entry_id: bytes, fields: dict[bytes, bytes]
    ) -> None:
        run = ctx.run
        item = self._take(ctx, entry_id, fields)
        if item is None:
            return
        sid = item.specimen_id

        def started() -> bool:  # after the paced slot and any quota wait, as in a local run
            if run.r.exists(run.keys.control):
                return False  # halted meanwhile: leave it pending, start nothing new
            run.r.hincrby(run.keys.stats, "started", 1)
            run.emit(
                EventType.SPECIMEN_PROCESSING,
                specimen_id=sid,
                data={"image": item.path.name, "path": str(item.path), "worker": consumer},
            )
            return True

        engine = ctx.engine()
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
        self._finish(ctx, item, entry_id, engine, outcome)

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
    ) -> None:
        """Record a finished specimen once, announce it, ack its entry, run validation."""
        run = ctx.run
        record = specimen_record(run.run_id, 0, item, engine, outcome)
        counts = run.record(record, *outcome.metrics_args())
        if counts is None:  # another worker recorded it meanwhile (a claimed duplicate)
            self._settle_recorded(ctx, item, entry_id)
            return
        sequence, processed, succeeded, consecutive = counts
        _, snap = run.snapshot()
        quality = ctx.judge.quality(record["dwc"]) if outcome.success else None
        run.emit_finished(
            item.specimen_id,
            outcome.event_type,
            sequence,
            finished_event_data(item, outcome, quality),
            snap,
        )
        run.r.xack(run.keys.specimens, GROUP, entry_id)
        self.processed += 1
        self._validate(ctx, processed, succeeded, consecutive, outcome.error)
        run.maybe_complete()

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
        _, snap = run.snapshot()
        run.emit_finished(
            item.specimen_id,
            EventType.SPECIMEN_COMPLETED if ok else EventType.SPECIMEN_FAILED,
            int(rec.get("sequence") or 0),
            data,
            snap,
        )
        run.r.xack(run.keys.specimens, GROUP, entry_id)
        run.maybe_complete()

    def _validate(
        self, ctx: _RunContext, finished: int, succeeded: int, consecutive: int, error: Any
    ) -> None:
        """The local ValidationConsumer's rules over the whole run's counters (see
        monitor/validation.py); each count is seen by exactly one worker."""
        cfg, run = ctx.validation, ctx.run
        rate = succeeded / finished if finished else 0.0
        if finished == cfg.checkpoint_after:
            passed = rate >= cfg.checkpoint_threshold
            run.emit(
                EventType.VALIDATION_CHECKPOINT,
                data={
                    "checkpoint": finished,
                    "status": "passed" if passed else "failed",
                    "success_rate": round(rate, 4),
                    "threshold": cfg.checkpoint_threshold,
                    "succeeded": succeeded,
                    "failed": finished - succeeded,
                },
            )
            if not passed:
                run.halt(
                    HaltReason.EARLY_VALIDATION_FAILED,
                    f"checkpoint {finished} failed: success rate {rate:.0%} is below "
                    f"{cfg.checkpoint_threshold:.0%} ({succeeded}/{finished} succeeded)",
                )
                return
        if finished % cfg.warning_every == 0 and rate < cfg.warning_threshold:
            run.emit(
                EventType.VALIDATION_WARNING,
                data={
                    "at": finished,
                    "success_rate": round(rate, 4),
                    "threshold": cfg.warning_threshold,
                    "message": f"success rate {rate:.0%} after {finished} specimens is "
                    f"below {cfg.warning_threshold:.0%}",
                },
            )
        n = cfg.max_consecutive_failures
        if n and consecutive >= n:
            last = f"{error.kind}: {error.message}" if error is not None else "unknown"
            run.halt(
                HaltReason.CONSECUTIVE_FAILURES,
                f"{consecutive} specimens failed in a row (last error: {last})",
            )
        if error is not None and error.fatal:
            run.halt(HaltReason.FATAL_ERROR, f"{error.kind}: {error.message}")
