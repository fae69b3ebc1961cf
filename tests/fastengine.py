"""A fast fake extraction engine for crash, soak and disk tests: no model, no network.

It reads the image bytes (so an unreadable file still fails like a real engine), waits a
little, and returns a real-looking record that differs per sheet (fakeapi.record_for); a
share of attempts can fail with transient (retried) or recorded (failed specimen) errors.
Settings come from `EngineSettings.extra` or, for `herbdesk run` subprocesses, from
environment variables:
  HERBDESK_FAST_DELAY   seconds per extraction (default 0)
  HERBDESK_FAST_FAULTS  share of attempts that fail (default 0)
  HERBDESK_FAST_SEED    seed of the fault dice (default 0)
  HERBDESK_FAST_RECORDED  share of faults that fail the specimen outright (default 0.5);
                          the rest are transient and retried
Register it in-process with `register_fast_engine(monkeypatch)`, or run
`tests/herbdesk_runner.py`, which registers it before calling `herbdesk.cli.main`.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from typing import Any

from fakeapi import record_for

from herbdesk.extraction.engines.base import (
    Check,
    EngineError,
    EngineSettings,
    ErrorKind,
    Extraction,
    FieldValue,
    SpecimenInput,
)

ENGINE_NAME = "fast"
ENGINE_SPEC = "fastengine:FastEngine"
TRANSIENT = (ErrorKind.SERVER, ErrorKind.RATE_LIMITED, ErrorKind.TIMEOUT, ErrorKind.NETWORK)
RECORDED = (ErrorKind.BAD_REPLY, ErrorKind.NO_FIELDS)


def _setting(settings: EngineSettings, key: str, env: str, default: float) -> float:
    if key in settings.extra:
        return float(settings.extra[key])
    return float(os.environ.get(env, default))


class FastEngine:
    """Deterministic per seed up to thread scheduling; faults are transient or recorded."""

    name = ENGINE_NAME

    def __init__(self, settings: EngineSettings) -> None:
        self.model = settings.model or "fast-fake"
        self.delay_s = _setting(settings, "delay_s", "HERBDESK_FAST_DELAY", 0.0)
        self.fault_rate = _setting(settings, "fault_rate", "HERBDESK_FAST_FAULTS", 0.0)
        self.recorded_share = _setting(settings, "recorded_share", "HERBDESK_FAST_RECORDED", 0.5)
        self._rng = random.Random(int(_setting(settings, "seed", "HERBDESK_FAST_SEED", 0)))
        self._lock = threading.Lock()
        self.calls = 0
        self.faults: dict[str, int] = {}

    def preflight(self) -> list[Check]:
        return [Check("fast engine", True, f"delay {self.delay_s}s, faults {self.fault_rate:.0%}")]

    def extract(self, specimen: SpecimenInput) -> Extraction:
        data = specimen.data if specimen.data is not None else specimen.path.read_bytes()
        size = len(data)  # OSError -> the pipeline's internal_error path
        if size == 0:
            raise EngineError(ErrorKind.IMAGE, f"cannot decode image {specimen.path.name}: empty")
        with self._lock:
            self.calls += 1
            roll = self._rng.random()
            recorded = self._rng.random() < self.recorded_share
            kind = self._rng.choice(RECORDED if recorded else TRANSIENT)
        if self.delay_s:
            time.sleep(self.delay_s)
        if roll < self.fault_rate:
            with self._lock:
                self.faults[kind] = self.faults.get(kind, 0) + 1
            raise EngineError(kind, f"injected {kind}", raw_text="(fake reply)")
        record = record_for(specimen.specimen_id)  # a different record for each sheet
        fields = {t: FieldValue(v["value"], v["confidence"]) for t, v in record.items()}
        return Extraction(
            fields=fields,
            raw_text=json.dumps({t: v["value"] for t, v in record.items()}),
            usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            cost_usd=0.0001,
            model=self.model,
        )

    def close(self) -> None:
        pass


def register_fast_engine(monkeypatch: Any) -> None:
    """Make `engine="fast"` resolvable through herbdesk's built-in engine table."""
    from herbdesk.extraction import engines

    monkeypatch.setitem(engines._BUILTIN, ENGINE_NAME, ENGINE_SPEC)
