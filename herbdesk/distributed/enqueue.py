"""Putting a run on the broker: manifest, consumer group, one stream entry per specimen."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import orjson

from herbdesk import __version__
from herbdesk.common.apikeys import DEFAULT_KEY_ENV
from herbdesk.distributed.broker import RedisRun
from herbdesk.distributed.keys import GROUP, RUNS_KEY, redact_url
from herbdesk.events.types import EventType, HaltReason, utc_now_iso
from herbdesk.extraction import runfiles
from herbdesk.extraction.config import RunConfig
from herbdesk.extraction.identify import Found, Identifier, gold_first
from herbdesk.extraction.images import scan_images
from herbdesk.monitor.rules import RunRules
from herbdesk.quality.judge import RecordJudge


@dataclass(frozen=True)
class EnqueuedRun:
    run_id: str
    total: int
    manifest: dict[str, Any]


def build_manifest(
    config: RunConfig, run_id: str, total: int, broker_url: str, api_key_env: str
) -> dict[str, Any]:
    """What workers need to run the specimens, without secrets: each worker reads its own key
    from `api_key_env` in its environment."""
    e = config.engine
    return {
        "run_id": run_id,
        "total": total,
        "started_at": utc_now_iso(),
        "started_epoch": time.time(),
        "herbdesk_version": __version__,
        "broker": redact_url(broker_url),
        "config": config.public_dict(),
        "engine": {
            "engine": e.engine,
            "model": e.model,
            "base_url": e.base_url,
            "prompt_text": e.prompt_text,
            "max_side": e.max_side,
            "timeout_s": e.timeout_s,
        },
        "api_key_env": api_key_env,
        "requests_per_minute": config.pace(),  # None: unpaced; each worker keeps it
        # workers admit specimens by it (budget.admits over the run's counters on the broker);
        # reopening the run at its budget raises it here
        "budget_usd": config.budget_usd,
        "max_attempts": config.max_attempts,
        "backoff_base_s": config.backoff_base_s,
        "backoff_max_s": config.backoff_max_s,
        "validation": vars(config.validation).copy(),
        "quality": config.quality.public_dict(),
    }


# Entries go to the broker in batches (one round trip each) of up to BATCH entries, sent
# sooner once the batch's first entry has waited FLUSH_S.
BATCH = 64
FLUSH_S = 0.25


class Enqueuer:
    """A run put on the broker in two steps: `start` (manifest, consumer group, known-answer
    sheets, `extraction.started`: workers may begin), then `stream` (every other image
    identified and added while workers already process the first ones). Identification is
    the local run's (herbdesk/extraction/identify.py): same order, duplicates and unreadable
    rows; the enqueuer reads each image to hash it, the worker reads it again to send it and
    checks the hash (the two may be on different machines)."""

    def __init__(
        self,
        client: Any,
        config: RunConfig,
        broker_url: str,
        api_key_env: str = DEFAULT_KEY_ENV,
    ) -> None:
        config.validation.validate()
        # loaded here too, so a bad gold file or checklist is a usage error before anything is
        # enqueued; workers read them at these absolute paths
        q = config.quality
        quality = replace(
            q,
            gold_path=q.gold_path.absolute() if q.gold_path else None,
            checklist_path=q.checklist_path.absolute() if q.checklist_path else None,
        )
        self.config = replace(config, quality=quality)
        self.judge = RecordJudge.from_settings(quality, config.engine.prompt_text)
        self.client = client
        self.broker_url, self.api_key_env = broker_url, api_key_env
        self.run_id = config.run_id or runfiles.new_run_id()
        self.images = scan_images(config.inputs, limit=config.limit)
        self.identifier = Identifier()
        self.queued = 0
        self._order = gold_first(self.images, self.judge.is_gold_image)
        self._gold: list[Found] = []
        self._run: RedisRun | None = None

    def start(self) -> EnqueuedRun:
        """Raises FileExistsError if the run id is taken on the broker."""
        config, client = self.config, self.client
        manifest = build_manifest(
            config, self.run_id, len(self.images), self.broker_url, self.api_key_env
        )
        manifest["streamed"] = True  # "total" is the scan's; `enqueued` says how many were
        run = self._run = RedisRun(client, self.run_id, manifest)
        if not client.set(run.keys.manifest, orjson.dumps(manifest), nx=True):
            raise FileExistsError(f"run {self.run_id} already exists on the broker")
        client.xgroup_create(run.keys.specimens, GROUP, id="0", mkstream=True)
        # known-answer sheets are identified first: the gold judgement waits for all of them
        rules = RunRules(config.validation)
        if self.judge.gold is not None:
            for path, gold in self._order:
                found = self.identifier.identify(path.absolute(), gold)
                self._gold.append(found)
                rules.quality.gold_expected += found.skip is None and gold
                if not gold:
                    break  # the first other image: it goes out first in `stream`
        client.set(run.keys.rules, orjson.dumps(rules.to_state()))
        run.emit(
            EventType.EXTRACTION_STARTED,
            data={
                "total": len(self.images),
                "resumed": False,
                "herbdesk_version": __version__,
                "config": config.public_dict(),
                "broker": manifest["broker"],
            },
        )
        client.sadd(RUNS_KEY, self.run_id)
        return EnqueuedRun(self.run_id, len(self.images), manifest)

    def rebind(self, client: Any) -> None:
        """Use another connection (a forked child must not share its parent's)."""
        assert self._run is not None
        manifest = self._run.manifest
        self.client = client
        self._run = RedisRun(client, self.run_id, manifest)

    def _found(self) -> Iterator[Found]:
        yield from self._gold
        for path, gold in self._order:
            yield self.identifier.identify(path.absolute(), gold)

    def stream(self) -> int:
        """Identify and add the rest; returns how many specimens were enqueued. Stops early
        if the run is halted or cancelled meanwhile, but not at a budget pause: a run that
        goes on with a higher budget needs every specimen on its stream."""
        run = self._run
        assert run is not None, "start() first"
        batch: list[Found] = []
        first_at = 0.0
        for found in self._found():
            if found.skip is not None:
                run.emit(
                    EventType.SPECIMEN_SKIPPED,
                    specimen_id=found.specimen_id,
                    data=found.skipped_data(),
                )
                continue
            run.emit(
                EventType.SPECIMEN_QUEUED,
                specimen_id=found.specimen_id,
                data={"image": found.path.name, "path": str(found.path)},
            )
            if not batch:
                first_at = time.monotonic()
            batch.append(found)
            # batches double from one entry up to BATCH: the first go out at once, so workers
            # have work even while a slow read holds the next entries back
            limit = min(BATCH, max(1, self.queued))
            if len(batch) >= limit or time.monotonic() - first_at >= FLUSH_S:
                self._add(batch)
                batch = []
                stop = run.stop_decision()
                if stop is not None and stop.get("reason") != HaltReason.BUDGET:
                    break
        self._add(batch)
        # from now on the run can complete: every specimen it will have is on the stream
        self.client.set(run.keys.enqueued, self.queued)
        if not self.queued:
            run.end("completed", None, "run completed")
        else:
            run.maybe_complete()  # the workers may have finished before the count was set
        return self.queued

    def _add(self, batch: list[Found]) -> None:
        if not batch:
            return
        assert self._run is not None
        pipe = self.client.pipeline(transaction=False)
        for f in batch:
            # the path as the file system's bytes: a name that is not UTF-8 reaches the worker
            path = os.fsencode(f.path)
            pipe.xadd(self._run.keys.specimens, {"specimen_id": f.specimen_id, "path": path})
        pipe.execute()
        self.queued += len(batch)


def enqueue_run(
    client: Any, config: RunConfig, broker_url: str, api_key_env: str = DEFAULT_KEY_ENV
) -> EnqueuedRun:
    """Enqueue every readable, distinct image of the config, to the end; raises
    FileExistsError if the run id is taken. Image paths are made absolute: workers must reach
    them at the same path (one machine, or a shared mount)."""
    enq = Enqueuer(client, config, broker_url, api_key_env)
    started = enq.start()
    enq.stream()
    return started
