"""Helpers to build runs in tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from herbdesk.events.reader import read_events
from herbdesk.extraction.config import RunConfig, RunOutcome
from herbdesk.extraction.engines import EngineSettings
from herbdesk.extraction.pipeline import Pipeline
from herbdesk.monitor.validation import ValidationConfig


def api_config(
    images: Path,
    out: Path,
    base_url: str,
    *,
    key: str | None = "sk-test-good",
    concurrency: int = 2,
    model: str = "test/vision-model",
    **kw: Any,
) -> RunConfig:
    validation = kw.pop("validation", ValidationConfig())
    return RunConfig(
        inputs=[images],
        out_dir=out,
        engine=EngineSettings(
            engine="openrouter",
            model=model,
            base_url=base_url,
            api_key=key,
            prompt_text="Return Darwin Core JSON.",
            timeout_s=kw.pop("timeout_s", 10.0),
        ),
        concurrency=concurrency,
        validation=validation,
        backoff_base_s=kw.pop("backoff_base_s", 0.05),
        backoff_max_s=kw.pop("backoff_max_s", 0.2),
        **kw,
    )


def run(config: RunConfig) -> tuple[RunOutcome, Pipeline]:
    p = Pipeline(config)
    return p.run(), p


def events_of(run_dir: Path) -> list[Any]:
    evs, stats = read_events(run_dir / "events.jsonl")
    assert stats.bad_lines == 0
    return evs


def types_of(run_dir: Path) -> list[str]:
    return [e.event_type for e in events_of(run_dir)]


def raw_records(run_dir: Path) -> list[dict[str, Any]]:
    return [
        orjson.loads(line) for line in (run_dir / "raw.jsonl").read_bytes().splitlines() if line
    ]


def herbdesk_cli(
    *args: str, columns: int = 120, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m herbdesk ARGS` as a user runs it: no API key from the caller's environment
    (HOME and the rest are the test's, see conftest.py), a terminal `columns` wide."""
    env = {**os.environ, "COLUMNS": str(columns)}
    env.pop("OPENROUTER_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "herbdesk", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
