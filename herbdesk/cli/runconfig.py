"""The one builder of a RunConfig from flags, the config file and a resumed run."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from herbdesk.cli.exitcodes import usage_error


def load_config_or_exit(path: Path | None) -> dict[str, Any]:
    from herbdesk.cli.configfile import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        raise SystemExit(usage_error(str(exc))) from exc


def build_run_config(args: argparse.Namespace) -> Any:
    """Merge flags over the config file over a resumed run's settings over defaults."""
    from herbdesk.common.apikeys import get_api_key
    from herbdesk.common.assets import default_prompt_path, sample_specimens_dir
    from herbdesk.extraction import runfiles
    from herbdesk.extraction.config import (
        DEFAULT_MAX_ATTEMPTS,
        DEFAULT_OUT_DIR,
        RunConfig,
        default_concurrency,
    )
    from herbdesk.extraction.engines import EngineSettings
    from herbdesk.extraction.engines.base import (
        DEFAULT_BASE_URL,
        DEFAULT_MAX_SIDE,
        DEFAULT_TIMEOUT_S,
    )
    from herbdesk.monitor.validation import ValidationConfig
    from herbdesk.quality.judge import QualitySettings

    conf = load_config_or_exit(args.config)
    run_conf: dict[str, Any] = dict(conf.get("run", {}))
    val_conf: dict[str, Any] = dict(conf.get("validation", {}))
    prev: dict[str, Any] = {}
    if args.resume is not None:
        if not (args.resume / runfiles.EVENTS).exists():
            raise SystemExit(usage_error(f"{args.resume} is not a run directory (no events.jsonl)"))
        prev = runfiles.read_run_json(args.resume).get("config", {})
        val_conf = {**prev.get("validation", {}), **val_conf}

    def pick(flag: Any, key: str, default: Any) -> Any:
        if flag is not None:
            return flag
        if key in run_conf:
            return run_conf[key]
        if prev.get(key) is not None:
            return prev[key]
        return default

    inputs: list[Path] = list(args.images)
    if args.sample:
        inputs.append(sample_specimens_dir())
    if not inputs:
        inputs = [_written_path(p) for p in (run_conf.get("inputs") or prev.get("inputs") or [])]
    if not inputs:
        raise SystemExit(usage_error("no images given: pass files or folders, or --sample"))
    missing = [p for p in inputs if not p.exists()]
    if missing:
        hint = ""
        if args.resume is not None and any(not p.is_absolute() for p in missing):
            # run.json of an older version: its paths are relative to where that run started
            hint = " (relative to where the run was started: resume from there, or name them)"
        raise SystemExit(usage_error(f"not found: {', '.join(map(str, missing))}{hint}"))

    engine = str(pick(args.engine, "engine", "ocr"))
    base_url = str(pick(args.base_url, "base_url", DEFAULT_BASE_URL) or "") or DEFAULT_BASE_URL
    prompt_arg = pick(args.prompt, "prompt_path", None)
    prompt_path = Path(prompt_arg) if prompt_arg else default_prompt_path()
    try:
        prompt_text = prompt_path.read_text(encoding="utf-8") if prompt_path.is_file() else ""
    except UnicodeDecodeError as exc:
        raise SystemExit(
            usage_error(f"prompt file {prompt_path}: not UTF-8 text (byte {exc.start})")
        ) from exc
    except OSError as exc:
        raise SystemExit(usage_error(f"cannot read prompt file {prompt_path}: {exc}")) from exc
    settings = EngineSettings(
        engine=engine,
        model=str(pick(args.model, "model", "") or ""),
        base_url=base_url,
        api_key=get_api_key(base_url, args.api_key_env) if engine != "ocr" else None,
        prompt_text=prompt_text,
        max_side=int(pick(args.max_side, "max_side", DEFAULT_MAX_SIDE)),
        timeout_s=float(pick(args.timeout, "timeout_s", DEFAULT_TIMEOUT_S)),
    )
    validation = ValidationConfig(
        **{k: val_conf[k] for k in vars(ValidationConfig()) if k in val_conf}
    )
    for flag, key in (
        ("checkpoint_after", "checkpoint_after"),
        ("checkpoint_threshold", "checkpoint_threshold"),
        ("warning_every", "warning_every"),
        ("warning_threshold", "warning_threshold"),
        ("max_consecutive_failures", "max_consecutive_failures"),
        ("quality_threshold", "quality_threshold"),
        ("degraded_halt", "degraded_halt"),
        ("gold_threshold", "gold_threshold"),
    ):
        val = getattr(args, flag)
        if val is not None:
            setattr(validation, key, val)
    try:
        validation.validate()
    except ValueError as exc:
        raise SystemExit(usage_error(str(exc))) from exc
    concurrency = int(pick(args.concurrency, "concurrency", default_concurrency(engine)))
    if concurrency < 1:
        raise SystemExit(usage_error("--concurrency must be >= 1"))
    limit = pick(args.limit, "limit", None)
    q_conf: dict[str, Any] = {**prev.get("quality", {}), **conf.get("quality", {})}

    def qpick(flag: Any, key: str) -> Any:
        return flag if flag is not None else q_conf.get(key)

    gold, checklist = qpick(args.gold, "gold"), qpick(args.checklist, "checklist")
    quality = QualitySettings(
        require=qpick(args.require, "require"),
        catalog_pattern=qpick(args.catalog_pattern, "catalog_pattern"),
        gold_path=Path(gold).absolute() if gold else None,
        checklist_path=Path(checklist).absolute() if checklist else None,
    )
    for path in (quality.gold_path, quality.checklist_path):
        if path is not None and not path.is_file():
            raise SystemExit(usage_error(f"not found: {path}"))
    if quality.checklist_path and engine == "ocr":  # the offline parser corrects names by it
        settings.extra["checklist"] = str(quality.checklist_path)
    return RunConfig(
        inputs=inputs,
        out_dir=Path(pick(args.out, "out_dir", DEFAULT_OUT_DIR)),
        run_id=args.run_id,
        engine=settings,
        prompt_path=prompt_path
        if (args.prompt or run_conf.get("prompt_path") or prev.get("prompt_path"))
        else None,
        concurrency=concurrency,
        limit=int(limit) if limit is not None else None,
        resume_dir=args.resume,
        validation=validation,
        quality=quality,
        max_attempts=int(pick(args.max_attempts, "max_attempts", DEFAULT_MAX_ATTEMPTS)),
        requests_per_minute=_pace(pick(args.requests_per_minute, "requests_per_minute", None)),
        budget_usd=parse_budget(pick(args.budget, "budget_usd", None)),
    )


def _written_path(text: Any) -> Path:
    """A path as run.json holds it: a folder whose name is not UTF-8 is stored as `\\xNN`."""
    from herbdesk.common.fsnames import fs_unescape

    path = Path(str(text))
    raw = Path(fs_unescape(str(text)))
    return raw if not path.exists() and raw.exists() else path


def _number(value: Any, what: str, ok: Callable[[float], bool], rule: str) -> float | None:
    """A number from a flag or the config file (None: not given); a usage error otherwise."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise SystemExit(usage_error(f"{what}: not a number: {value!r}")) from exc
    if not ok(number):  # NaN fails every comparison, so it fails here
        raise SystemExit(usage_error(rule))
    return number


def _pace(value: Any) -> float | None:
    return _number(
        value, "requests per minute", lambda v: v >= 0, "--requests-per-minute must be >= 0"
    )


def parse_budget(value: Any) -> float | None:
    """A `--budget` (None: none given); a usage error (SystemExit) unless a positive number."""
    return _number(
        value,
        "budget",
        lambda v: 0 < v < float("inf"),
        "--budget must be a positive number of USD",
    )
