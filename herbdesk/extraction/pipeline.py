"""The extraction pipeline: one implementation for `herbdesk run` and the desktop worker.

Threads, not asyncio: OCR is CPU-bound in onnxruntime (which releases the GIL) and the HTTP
engine is latency-bound, so N worker threads pulling from one queue serve both, and the desktop
app can run the whole pipeline inside a QThread without an event loop of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from herbdesk import __version__
from herbdesk.common.gcpause import gc_paused
from herbdesk.events.bus import Emitter, EventBus, Handler
from herbdesk.events.reader import iter_events
from herbdesk.events.types import EventType, HaltReason, utc_now_iso
from herbdesk.events.writer import EventLogWriter, last_seq
from herbdesk.extraction import runfiles
from herbdesk.extraction.budget import BudgetGate
from herbdesk.extraction.config import RunConfig, RunOutcome
from herbdesk.extraction.control import USER_STOP, RunControl
from herbdesk.extraction.engines import Engine, create_engine
from herbdesk.extraction.engines.base import (
    EngineError,
    ErrorKind,
    Extraction,
    SpecimenInput,
    clean_usage,
    plausible_cost,
    total_tokens,
)
from herbdesk.extraction.identify import Found, Identifier, SpecimenFeed, gold_first
from herbdesk.extraction.imageindex import ImageIndex
from herbdesk.extraction.images import FileStamp, ImageList, read_specimen, scan_images, stamp_of
from herbdesk.extraction.limits import RequestLimits
from herbdesk.extraction.preflight import run_preflight
from herbdesk.extraction.results import ResultsWriter, ResumePoint, resume_point
from herbdesk.extraction.runlock import RunLock
from herbdesk.monitor.ending import end_event
from herbdesk.monitor.metrics import MetricsAccumulator, MetricsFileConsumer
from herbdesk.monitor.rules import Halt, RulesConsumer, RunRules, apply, replay_earlier
from herbdesk.quality.judge import RecordJudge
from herbdesk.quality.tally import QualityTally


class Pipeline:
    """Prepares the run directory and bus at construction; `run()` does the work (blocking).

    Subscribe front-end consumers to `pipeline.bus` between the two.
    """

    def __init__(
        self,
        config: RunConfig,
        control: RunControl | None = None,
        engine: Engine | None = None,
    ) -> None:
        config.validation.validate()
        if config.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.config = config
        # loaded before anything is written: a bad gold file or checklist is a usage error
        self.judge = RecordJudge.from_settings(config.quality, config.engine.prompt_text)
        self.control = control or RunControl()
        self._engine = engine
        spent_before = 0.0
        if config.resume_dir is not None:
            self.run_dir = Path(config.resume_dir)
            prev = runfiles.read_run_json(self.run_dir)
            self.run_id = str(prev.get("run_id") or self.run_dir.name)
            spent_before = _spent(prev)
        else:
            self.run_id = config.run_id or runfiles.new_run_id()
            self.run_dir = Path(config.out_dir) / self.run_id
            if (self.run_dir / runfiles.EVENTS).exists():
                raise FileExistsError(
                    f"{self.run_dir} already holds a run; "
                    f"use --resume {self.run_dir} to continue it"
                )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # before any file of the run is opened: a second writer would duplicate work and seq
        # (a constructor failing after this lets go when the half-built object is dropped)
        self._runlock = RunLock.acquire(self.run_dir)
        events_path = self.run_dir / runfiles.EVENTS
        self._log = EventLogWriter(events_path)
        self.bus = EventBus(self.run_id, self._log, start_seq=last_seq(events_path))
        self.log_closed = False  # set when the log is closed: the review appends elsewhere
        self._metrics_file = MetricsFileConsumer(self.run_dir / runfiles.METRICS)
        self.rules = RunRules(config.validation)
        self.bus.subscribe(RulesConsumer(self.rules, self.bus, self.control), "rules")
        self.tally = QualityTally()  # the terminal event's `quality` object
        self.bus.subscribe(self._metrics_file, "metrics_file")
        self.metrics = MetricsAccumulator()
        self._results: ResultsWriter | None = None
        self._resume: ResumePoint | None = None  # an earlier invocation's records, read in run()
        self._finish_lock = threading.Lock()
        self._sequence = 0
        self._started_mono = 0.0
        self._started_at = ""
        self.identifier: Identifier | None = None  # set once identifying starts
        self.started_count = 0  # specimens whose processing began (bounded by halting)
        self._limits = RequestLimits(
            config.pace(),
            self.control.sleep,
            self.bus,
            give_up=lambda msg: self.control.halt(HaltReason.FATAL_ERROR, msg),
        )
        # the window sets it: a budget pause waits there for a raise; a headless run ends
        self.hold_at_budget = False
        if config.budget_usd is not None and not config.budget_usd > 0:
            raise ValueError("the budget must be a positive number of USD")
        self.budget = BudgetGate(
            config.budget_usd,
            self.bus,
            spent_before,
            lambda: self.control.should_stop,
            on_pause=self._budget_paused,
        )

    def subscribe(self, handler: Handler, name: str | None = None) -> None:
        self.bus.subscribe(handler, name)

    def pause(self) -> None:
        """No new specimen starts until resume(); in-flight ones finish."""
        if not self.control.paused and not self.control.should_stop:
            self.control.pause()
            self.bus.emit(EventType.EXTRACTION_PAUSED)

    def resume(self) -> None:
        if self.control.paused:
            self.control.resume()
            self.bus.emit(EventType.EXTRACTION_RESUMED)

    def raise_budget(self, budget_usd: float | None) -> bool:
        """A new budget for the running run; True if that ended its budget pause."""
        if budget_usd is not None and not budget_usd > 0:
            raise ValueError("the budget must be a positive number of USD")
        self.config.budget_usd = budget_usd
        return self.budget.raise_to(budget_usd)

    def _budget_paused(self, message: str) -> None:
        if not self.hold_at_budget:  # nobody can raise it in-process: end, resumable
            self.control.halt(HaltReason.BUDGET, message)

    def cancel(self, message: str = USER_STOP) -> None:
        """Graceful stop: in-flight specimens finish and are recorded; nothing new starts.
        `message` is the end event's account of who stopped it."""
        self.control.cancel(message)

    # ------------------------------------------------------------------ run
    def run(self) -> RunOutcome:
        """Run to the end, a halt or a cancel. Never raises for run-level failures."""
        self._started_mono = time.monotonic()
        self._started_at = utc_now_iso()
        cfg = self.config
        try:
            images = scan_images(cfg.inputs, limit=cfg.limit)
            # the scan's count: skipped images are taken off as they are identified
            self.metrics.total = len(images)
            if cfg.resume_dir is not None:
                # read once, here (not on the window's thread, where the pipeline is built),
                # before run.json and the start event say what the earlier invocations spent
                rp = self._resume = resume_point(self.run_dir / runfiles.RAW)
                # the mean goes on from the earlier invocations' records (the same pass)
                self.budget.resume_from(
                    resumed_spent(self.budget.spent, rp.spent), rp.finished, rp.costed, rp.spent
                )
                earlier_halts = self._replay_earlier(rp.done)
            else:
                earlier_halts = []
            self._write_run_json("running")
            self.bus.emit(
                EventType.EXTRACTION_STARTED,
                data={
                    "total": len(images),
                    "resumed": cfg.resume_dir is not None,
                    "cost_before_usd": round(self.budget.spent, 6),
                    "herbdesk_version": __version__,
                    "config": cfg.public_dict(),
                },
            )
            if earlier_halts:  # a gate the run's records already failed: nothing is spent
                apply(earlier_halts, lambda t, d: None, self.control.halt)
                return self._finish()
            engine = self._engine
            if engine is None:
                engine = create_engine(cfg.engine)
                self._engine = engine
            checks = run_preflight(images, cfg, self.run_dir, engine)
            failed = [c for c in checks if not c.ok]
            self.bus.emit(
                EventType.PREFLIGHT_COMPLETED,
                data={
                    "ok": not failed,
                    "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
                },
            )
            if failed:
                msg = "; ".join(f"{c.name}: {c.detail}" for c in failed)
                self.control.halt(HaltReason.PREFLIGHT_FAILED, f"preflight failed: {msg}")
                return self._finish()
            self._results = ResultsWriter(self.run_dir)
            feed = SpecimenFeed(lambda: self.control.should_stop)
            identifying = threading.Thread(
                target=self._identify_all,
                args=(images, feed),
                name="herbdesk-identify",
                daemon=True,
            )
            identifying.start()
            try:
                feed.wait_ready()
                self._run_workers(engine, feed, min(cfg.concurrency, max(1, len(images))))
            finally:
                identifying.join()
        except OSError as exc:
            self.control.halt(HaltReason.FATAL_ERROR, f"output not writable: {exc}")
        except Exception as exc:  # a bug must still end the run with a reason on record
            self.control.halt(HaltReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        try:
            return self._finish()
        except Exception as exc:  # the ending itself failed (a bug): end it plainly
            return self.finish_after_crash(exc)

    def finish_after_crash(self, exc: BaseException) -> RunOutcome:
        """Record a run whose ending raised: `extraction.failed` (internal_error) without
        the metrics that may be what failed, and run.json's final status. Never raises: a
        run's thread must not die leaving a log that says "running"."""
        message = f"{type(exc).__name__}: {exc}"
        halt = self.control.halted
        if halt is not None:
            message = f"{halt.reason}: {halt.message}; then {message}"
        reason = HaltReason.INTERNAL_ERROR
        data = {"status": "failed", "reason": reason, "message": message}
        with contextlib.suppress(Exception):
            self.bus.emit(EventType.EXTRACTION_FAILED, data=data)
        with contextlib.suppress(Exception):
            self._write_run_json("failed", reason=reason, message=message)
        with contextlib.suppress(Exception):
            self._close()
        return RunOutcome(self.run_id, self.run_dir, "failed", reason, message)

    def _identify_all(self, images: ImageList, feed: SpecimenFeed) -> None:
        """The identifier thread: each image's verdict (queued or skipped) in order, while the
        workers already process the first ones. Known-answer sheets are all queued before the
        workers start (the gold judgement waits for every one of them)."""
        try:
            done: set[str] = set()
            if self._resume is not None:
                # finishes are numbered on from the earlier invocations' (the table's "#")
                done, self._sequence = self._resume.done, self._resume.last
            with contextlib.closing(ImageIndex(self.run_dir)) as index:
                self.identifier = Identifier(done, index)
                gold_queued = False
                for path, gold in gold_first(images, self.judge.is_gold_image):
                    if self.control.should_stop:
                        return
                    if not gold and not gold_queued:
                        gold_queued = True
                        self._gold_queued()
                    found = self.identifier.identify(path, gold)
                    if not self._announce(found, feed):
                        return
                if not gold_queued:
                    self._gold_queued()
        except OSError as exc:
            self.control.halt(HaltReason.FATAL_ERROR, f"output not writable: {exc}")
        except Exception as exc:
            self.control.halt(HaltReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        finally:
            feed.close()

    def _replay_earlier(self, done: set[str]) -> list[Halt]:
        """A resume's rules see the earlier invocations' records first (rules.replay_earlier);
        the halts those records reach."""
        events = self.run_dir / runfiles.EVENTS
        if not events.exists():
            return []
        with gc_paused():  # a big log: ~1 s less per 100,000 records
            halts = replay_earlier(self.rules, iter_events(events), done, self.judge.is_gold_image)
        return [_on_earlier_records(h) for h in halts]

    def _gold_queued(self) -> None:
        """Every known-answer sheet of this invocation is queued: the gold judgement can be
        made if they are all in already (a resume whose gold sheets were all done before)."""
        with self.bus.lock:  # ordered with the rules' reactions to finished specimens
            decisions = [
                _on_earlier_records(d) if isinstance(d, Halt) else d
                for d in self.rules.quality.judge_gold()
            ]
            apply(decisions, self._emit_rule_event, self.control.halt)

    def _emit_rule_event(self, event_type: str, data: dict[str, Any]) -> None:
        self.bus.emit(event_type, data=data)

    def _announce(self, found: Found, feed: SpecimenFeed) -> bool:
        """The image's event, and the feed for a queued one; False once the run stopped."""
        if found.skip is not None:
            with self._finish_lock:  # the snapshot's total is read under it
                if self.metrics.total:
                    self.metrics.total -= 1
            self.bus.emit(
                EventType.SPECIMEN_SKIPPED,
                specimen_id=found.specimen_id,
                data=found.skipped_data(),
            )
            return True
        self.rules.quality.gold_expected += found.gold
        self.bus.emit(
            EventType.SPECIMEN_QUEUED,
            specimen_id=found.specimen_id,
            data={"image": found.path.name, "path": str(found.path)},
        )
        if found.gold:  # all of them in before the first start, without holding their bytes
            return feed.put(dataclasses.replace(found, data=None), unbounded=True)
        return feed.put(found)

    def _run_workers(self, engine: Engine, feed: SpecimenFeed, n: int) -> None:
        threads = [
            threading.Thread(
                target=self._worker, args=(engine, feed), name=f"herbdesk-worker-{i}", daemon=True
            )
            for i in range(n)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _worker(self, engine: Engine, feed: SpecimenFeed) -> None:
        ctl = self.control
        while True:
            ctl.wait_if_paused()
            if ctl.should_stop:
                return
            if not self.budget.acquire():  # waits while the run is paused at its budget
                return
            outcome: SpecimenOutcome | None = None
            try:
                found = feed.get()
                if found is None:
                    return
                outcome = self._process(engine, found)
            except OSError as exc:
                ctl.halt(HaltReason.FATAL_ERROR, f"output not writable: {exc}")
            except Exception as exc:
                ctl.halt(HaltReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            finally:  # only a recorded specimen counts towards the budget's mean
                if outcome is None:
                    self.budget.release(None, finished=False)
                else:
                    self.budget.release(outcome.cost_usd)

    def _backoff(self, attempt: int, err: EngineError) -> float:
        return backoff_delay(attempt, err, self.config.backoff_base_s, self.config.backoff_max_s)

    def _process(self, engine: Engine, found: Found) -> SpecimenOutcome | None:
        """Extract one specimen and record it; its outcome (None: stopped, not recorded)."""
        item = SpecimenInput(path=found.path, specimen_id=found.specimen_id, data=found.data)

        def begin() -> bool:
            # Called once the paced slot (and any quota reset) has come: a specimen whose
            # worker still waits is not "processing", and one stopped meanwhile never starts.
            # Under the bus's lock: a checkpoint halts the run from inside the dispatch of a
            # finish event, so either this start comes first, or it sees the halt (checking
            # outside the lock let a start slip in after the failed checkpoint's event).
            # (Not _finish_lock here: a finish takes it, then the bus's lock.)
            with self.bus.lock:
                if self.control.should_stop:
                    return False
                self.started_count += 1  # counted under the bus's lock, read at the end
                self.bus.emit(
                    EventType.SPECIMEN_PROCESSING,
                    specimen_id=item.specimen_id,
                    data={"image": item.path.name, "path": str(item.path)},
                )
            return True

        checked = with_same_bytes(item, found.stamp)
        if checked is None:
            if not begin():
                return None
            changed = changed_outcome(item)
            self._finish_specimen(item, changed)
            return changed
        item = checked
        outcome = extract_with_retries(
            engine,
            item,
            self.config.max_attempts,
            self._backoff,
            self.control.sleep,
            self.bus,
            self._limits,
            on_start=begin,
        )
        if outcome.stopped:
            return None
        self._finish_specimen(item, outcome)
        return outcome

    def _finish_specimen(self, item: SpecimenInput, outcome: SpecimenOutcome) -> None:
        with self._finish_lock:
            self._sequence += 1
            seq_no = self._sequence
            record = specimen_record(self.run_id, seq_no, item, self._engine, outcome)
            assert self._results is not None
            self._results.write(record)  # durable before the event claims it
            quality = self.judge.quality(record["dwc"]) if outcome.success else None
            self.tally.set(seq_no, quality)
            self.metrics.add(*outcome.metrics_args(), usable=bool(quality and quality["usable"]))
            self.bus.emit(
                outcome.event_type,
                specimen_id=item.specimen_id,
                sequence=seq_no,
                data=finished_event_data(item, outcome, quality),
                metrics=self.metrics.snapshot(time.monotonic() - self._started_mono),
            )
            gold = self.judge.gold_result(item.path.name, record["dwc"])
            if gold is not None:
                self.bus.emit(EventType.QUALITY_GOLD, specimen_id=item.specimen_id, data=gold)
        error = outcome.error
        if error is not None and error.fatal:
            self.control.halt(HaltReason.FATAL_ERROR, f"{error.kind}: {error.message}")

    # ------------------------------------------------------------------ end
    def _finish(self) -> RunOutcome:
        ctl = self.control
        snap = self.metrics.snapshot(time.monotonic() - self._started_mono)
        halt = ctl.halted
        if halt is not None:
            status, reason, message = "failed", halt.reason, halt.message
        elif ctl.cancelled:
            status, reason, message = "cancelled", "cancelled", ctl.cancel_message
        else:
            status, reason, message = "completed", None, "run completed"
        verdict, verdict_message = self.rules.verdict()
        etype, data = end_event(
            status,
            reason,
            message,
            snap,
            self.started_count,
            self.tally.summary(snap["total_processed"]),  # this invocation's, as the tally
            (verdict, verdict_message),
        )
        with contextlib.suppress(OSError):  # a full disk must not hide the outcome
            self.bus.emit(etype, data=data, metrics=snap)
        with contextlib.suppress(OSError):
            self._write_run_json(
                status,
                reason=reason,
                message=message,
                metrics=snap,
                verdict=data.get("verdict"),
                quality=data["quality"],
            )
        self._close()
        outcome = RunOutcome(self.run_id, self.run_dir, status, reason, message, snap)
        outcome.verdict = data.get("verdict")
        outcome.verdict_message = verdict_message
        outcome.quality = data["quality"]
        return outcome

    def _write_run_json(self, status: str, **extra: Any) -> None:
        prev = runfiles.read_run_json(self.run_dir)
        first = None
        if prev.get("started_at") and self.config.resume_dir is not None:
            first = prev.get("first_started_at") or prev["started_at"]
        runfiles.record_run(
            self.run_dir,
            self.run_id,
            status,
            self._started_at,
            self.config.public_dict(),
            ended_at=utc_now_iso() if status != "running" else None,
            writer=self._runlock.holder,  # who writes it: `tail`/`summary` tell a dead run
            # the run's cost over all its invocations: a resume's budget counts from it
            spent_usd=round(self.budget.spent, 6),
            first_started_at=first,
            **extra,
        )

    def _close(self) -> None:
        # On a full disk each close fails to flush its last bytes: that must neither hide the
        # outcome (run() never raises) nor leave the other files open.
        if self._engine is not None:
            with contextlib.suppress(Exception):
                self._engine.close()
        if self._results is not None:
            with contextlib.suppress(OSError):
                self._results.close()
        with contextlib.suppress(OSError):
            self._metrics_file.close()
        with self.bus.lock, contextlib.suppress(OSError):  # no review verdict is mid-write
            self.log_closed = True
            self._log.close()
        self._runlock.release()  # last: every file of the run is closed


def _on_earlier_records(h: Halt) -> Halt:
    """A halt a resume stops with before doing anything: the message says whose records."""
    return Halt(h.reason, f"{h.message} (the run's records so far, earlier invocations included)")


def resumed_spent(from_run_json: float, from_records: float) -> float:
    """What the earlier invocations of a run spent: the larger of run.json's figure and the
    sum of raw.jsonl's `cost_usd`.

    run.json is written at an invocation's start and end only, so a process killed with
    SIGKILL leaves there what was spent before it, and a resume trusting it alone would
    spend the killed invocation's share again. raw.jsonl gets each finished specimen's
    record, its cost with it, before anything claims the specimen done, so its sum holds
    every recorded cost of every invocation (run.json counts exactly those too, when the
    invocation ended). The larger of the two: the log cannot be read alone, since a record
    written by an older herbdesk without `cost_usd`, or a raw.jsonl edited by hand, would
    count less than run.json does. Neither knows what the specimens in flight at a kill
    cost (no record was written): those are redone, and their first attempt is not counted.
    """
    return max(from_run_json, from_records)


def _spent(prev: dict[str, Any]) -> float:
    """What the earlier invocations of a run spent, from its run.json (older ones: the last
    invocation's metrics); `resumed_spent` adds what their records say."""
    for value in (prev.get("spent_usd"), (prev.get("metrics") or {}).get("cost_usd")):
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
    return 0.0


# ------------------------------------------------------------- one specimen (shared)
# Module-level so the distributed worker (herbdesk.distributed.worker) runs exactly the same
# retry policy, record and event shapes as a local run.


@dataclass(frozen=True)
class SpecimenOutcome:
    """One specimen's extraction after retries; `stopped` means cut short, record nothing."""

    result: Extraction | None
    error: EngineError | None
    attempts: int
    elapsed_ms: float
    stopped: bool = False

    @property
    def success(self) -> bool:
        return self.result is not None

    @property
    def event_type(self) -> str:
        return EventType.SPECIMEN_COMPLETED if self.success else EventType.SPECIMEN_FAILED

    # Usage and cost come from the server through any engine: cleaned here once more, so no
    # odd number (a string, Infinity, 2**64) reaches the counters or a log writer.
    @property
    def usage(self) -> dict[str, Any]:
        r, e = self.result, self.error
        return clean_usage(r.usage if r else (e.usage if e else {}))

    @property
    def cost_usd(self) -> float | None:
        r, e = self.result, self.error
        return plausible_cost(r.cost_usd if r else (e.cost_usd if e else None))

    @property
    def tokens(self) -> int:
        return total_tokens(self.usage)

    @property
    def confidence(self) -> float | None:
        return self.result.mean_confidence if self.result else None

    def metrics_args(self) -> tuple[bool, float, float | None, int, float | None]:
        """Arguments of MetricsAccumulator.add for this specimen."""
        return self.success, self.elapsed_ms, self.confidence, self.tokens, self.cost_usd


def with_same_bytes(item: SpecimenInput, stamp: FileStamp | None = None) -> SpecimenInput | None:
    """The specimen carrying its bytes, read once: the bytes hashed are the bytes the engine
    sends, every attempt. None when the file no longer holds the bytes it was queued under
    (fail it with changed_outcome). Unreadable now: without bytes (the engine fails it with
    its own reason).

    An item that already carries its bytes (read when it was identified, `stamp` their file's
    size and mtime then) is checked with one stat: unchanged, it goes as it is; changed, the
    file is read again to compare. An item without bytes is read here and compared.
    """
    if item.data is not None and stamp is not None:
        try:
            if stamp_of(os.stat(item.path)) == stamp:
                return item
        except OSError:
            return dataclasses.replace(item, data=None)
    elif item.data is not None:
        return item
    try:
        data, sid = read_specimen(item.path)
    except OSError:
        return dataclasses.replace(item, data=None)
    if sid != item.specimen_id:
        return None
    return dataclasses.replace(item, data=data)


def changed_outcome(item: SpecimenInput) -> SpecimenOutcome:
    msg = (
        f"{item.path.name} changed on disk after it was queued (its bytes no longer match "
        "its id); nothing was sent. --resume extracts the new content under its own id"
    )
    return SpecimenOutcome(None, EngineError(ErrorKind.CHANGED, msg), 0, 0.0)


def backoff_delay(attempt: int, err: EngineError, base_s: float, max_s: float) -> float:
    if err.retry_after is not None:
        return min(err.retry_after, max_s * 5)
    return min(max_s, base_s * (2 ** (attempt - 1))) * random.uniform(0.5, 1.0)


def extract_with_retries(
    engine: Engine,
    item: SpecimenInput,
    max_attempts: int,
    backoff: Callable[[int, EngineError], float],
    sleep: Callable[[float], bool],
    emitter: Emitter,
    limits: RequestLimits | None = None,
    on_start: Callable[[], bool] | None = None,
) -> SpecimenOutcome:
    """engine.extract with retries on transient errors; `sleep` returns False when stopped.

    With `limits`, each request waits for its paced slot, and a used-up quota pauses until the
    reset without costing the specimen an attempt. `on_start` is called once, just before the
    first request is sent (after those waits): where the caller says the specimen is being
    processed, or returns False if the run was stopped meanwhile. A specimen stopped before
    then is skipped without ever having started.
    """
    t0 = time.monotonic()
    waited = 0.0  # pacing and quota waits: not the specimen's processing time
    attempts = 0
    result: Extraction | None = None
    error: EngineError | None = None
    while True:
        if limits is not None:
            w0 = time.monotonic()
            go_on = limits.before_request()
            waited += time.monotonic() - w0
            if not go_on:
                return _stopped(item, error, attempts, emitter)
        if on_start is not None:
            if not on_start():
                return _stopped(item, error, attempts, emitter)
            on_start = None
        attempts += 1
        sent_in = limits.epoch if limits is not None else 0
        try:
            result = engine.extract(item)
            error = None
            if limits is not None:
                limits.answered(sent_in)
            break
        except EngineError as exc:
            error = exc
        except Exception as exc:  # an engine bug fails this specimen, not the run
            error = EngineError(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")
        if limits is not None and limits.quota_exhausted(error):
            attempts -= 1  # not the specimen's fault: it is tried again after the reset
            if limits.gave_up:  # the run stops for the quota: this one is redone on resume
                return _stopped(item, error, attempts, emitter)
            # it waits with the run: shown as waiting for the reset, not as still processing
            emitter.emit(
                EventType.SPECIMEN_RETRYING,
                specimen_id=item.specimen_id,
                data={
                    "attempt": attempts,
                    "delay_s": round(limits.quota_wait_s(), 2),
                    "reason": "quota",
                    "error": {"kind": error.kind, "message": error.message},
                },
            )
            continue
        if not error.retryable or attempts >= max_attempts:
            break
        delay = backoff(attempts, error)
        emitter.emit(
            EventType.SPECIMEN_RETRYING,
            specimen_id=item.specimen_id,
            data={
                "attempt": attempts,
                "delay_s": round(delay, 2),
                "error": {"kind": error.kind, "message": error.message},
            },
        )
        if not sleep(delay):
            return _stopped(item, error, attempts, emitter)
    elapsed_ms = (time.monotonic() - t0 - waited) * 1000.0
    return SpecimenOutcome(result, error, attempts, elapsed_ms)


def _stopped(
    item: SpecimenInput, error: EngineError | None, attempts: int, emitter: Emitter
) -> SpecimenOutcome:
    """Stopped while waiting: not finished, so nothing is recorded; a resume redoes it."""
    emitter.emit(
        EventType.SPECIMEN_SKIPPED,
        specimen_id=item.specimen_id,
        data={"image": item.path.name, "path": str(item.path), "reason": "stopped"},
    )
    return SpecimenOutcome(None, error, attempts, 0.0, stopped=True)


def specimen_record(
    run_id: str, sequence: int, item: SpecimenInput, engine: Engine | None, o: SpecimenOutcome
) -> dict[str, Any]:
    """The raw.jsonl record of one finished specimen."""
    result, error = o.result, o.error
    return {
        "run_id": run_id,
        "specimen_id": item.specimen_id,
        "sequence": sequence,
        "image": item.path.name,
        "image_path": str(item.path),
        "timestamp": utc_now_iso(),
        "engine": engine.name if engine else "",
        "model": (result.model if result and result.model else None)
        or (engine.model if engine else ""),
        "success": o.success,
        "dwc": {
            t: {"value": f.value, "confidence": f.confidence}
            for t, f in (result.fields.items() if result else [])
        },
        "raw_text": result.raw_text if result else (error.raw_text if error else None),
        "usage": o.usage,
        "cost_usd": o.cost_usd,
        "attempts": o.attempts,
        "processing_time_ms": round(o.elapsed_ms, 1),
        "error": {"kind": error.kind, "message": error.message} if error else None,
    }


def finished_event_data(
    item: SpecimenInput, o: SpecimenOutcome, quality: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`data` of the specimen.completed/failed event (`quality`: RecordJudge.quality)."""
    conf = o.confidence
    data: dict[str, Any] = {
        "image": item.path.name,
        "success": o.success,
        "fields_extracted": len(o.result.fields) if o.result else 0,
        "confidence": round(conf, 4) if conf is not None else None,
        "processing_time_ms": round(o.elapsed_ms, 1),
        "attempts": o.attempts,
        "tokens": o.tokens,
        "cost_usd": o.cost_usd,
    }
    if o.error:
        data["error"] = {"kind": o.error.kind, "message": o.error.message}
    if quality is not None:
        data["quality"] = quality
    if o.success and o.result:  # the values, for the table's term columns and its search
        data["dwc"] = {t: f.value for t, f in o.result.fields.items()}
    return data
