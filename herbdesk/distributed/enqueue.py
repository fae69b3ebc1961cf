"""Putting a run on the broker: manifest, consumer group, one stream entry per specimen."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from herbdesk import __version__
from herbdesk.distributed.broker import RedisRun
from herbdesk.distributed.keys import GROUP, RUNS_KEY, redact_url
from herbdesk.events.types import EventType, utc_now_iso
from herbdesk.extraction import runfiles
from herbdesk.extraction.images import scan_images, specimen_id_of
from herbdesk.extraction.pipeline import RunConfig
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
        "max_attempts": config.max_attempts,
        "backoff_base_s": config.backoff_base_s,
        "backoff_max_s": config.backoff_max_s,
        "validation": vars(config.validation).copy(),
        "quality": config.quality.public_dict(),
    }


def enqueue_run(
    client: Any, config: RunConfig, broker_url: str, api_key_env: str = "OPENROUTER_API_KEY"
) -> EnqueuedRun:
    """Enqueue every readable, distinct image of the config; raises FileExistsError if the run
    id is taken. Image paths are made absolute: workers must reach them at the same path (one
    machine, or a shared mount)."""
    config.validation.validate()
    # loaded here too, so a bad gold file or checklist is a usage error before anything is
    # enqueued; workers read them at these absolute paths
    q = config.quality
    quality = replace(
        q,
        gold_path=q.gold_path.absolute() if q.gold_path else None,
        checklist_path=q.checklist_path.absolute() if q.checklist_path else None,
    )
    config = replace(config, quality=quality)
    judge = RecordJudge.from_settings(quality, config.engine.prompt_text)
    run_id = config.run_id or runfiles.new_run_id()
    images = scan_images(config.inputs)
    if config.limit is not None:
        images = images[: config.limit]
    if judge.gold is not None:  # known-answer sheets first, as in a local run
        images = sorted(images, key=lambda p: not judge.is_gold_image(p.name))
    todo: list[tuple[str, Path]] = []
    skipped: list[tuple[str, Path, str]] = []
    seen: set[str] = set()
    for path in images:
        path = path.absolute()
        try:
            sid = specimen_id_of(path)
        except OSError as exc:
            skipped.append(
                (hashlib.sha256(os.fsencode(path)).hexdigest(), path, f"unreadable: {exc}")
            )
            continue
        if sid in seen:
            skipped.append((sid, path, "duplicate of an earlier image"))
            continue
        seen.add(sid)
        todo.append((sid, path))
    manifest = build_manifest(config, run_id, len(todo), broker_url, api_key_env)
    run = RedisRun(client, run_id)
    if not client.set(run.keys.manifest, orjson.dumps(manifest), nx=True):
        raise FileExistsError(f"run {run_id} already exists on the broker")
    run._manifest = manifest
    client.xgroup_create(run.keys.specimens, GROUP, id="0", mkstream=True)
    rules = RunRules(config.validation)
    rules.quality.gold_expected = sum(judge.is_gold_image(p.name) for _, p in todo)
    client.set(run.keys.rules, orjson.dumps(rules.to_state()))
    run.emit(
        EventType.EXTRACTION_STARTED,
        data={
            "total": len(todo),
            "resumed": False,
            "herbdesk_version": __version__,
            "config": config.public_dict(),
            "broker": manifest["broker"],
        },
    )
    for sid, path, reason in skipped:
        run.emit(
            EventType.SPECIMEN_SKIPPED,
            specimen_id=sid,
            data={"image": path.name, "path": str(path), "reason": reason},
        )
    for sid, path in todo:
        run.emit(
            EventType.SPECIMEN_QUEUED, specimen_id=sid, data={"image": path.name, "path": str(path)}
        )
    pipe = client.pipeline(transaction=False)
    for sid, path in todo:
        # the path as the file system's bytes: a name that is not UTF-8 reaches the worker intact
        pipe.xadd(run.keys.specimens, {"specimen_id": sid, "path": os.fsencode(path)})
    pipe.sadd(RUNS_KEY, run_id)
    pipe.execute()
    if not todo:
        run.end("completed", None, "run completed")
    return EnqueuedRun(run_id, len(todo), manifest)
