"""A run's settings and how it ended, and the defaults every front end starts from.

Here, not in pipeline.py, so preflight and the distributed worker read a RunConfig without
importing the pipeline; the CLI, the window's setup form and the worker take their defaults from
these constants (and the engine's from engines/base.py), so the copies cannot drift apart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herbdesk.extraction.engines.base import EngineSettings
from herbdesk.extraction.limits import default_requests_per_minute
from herbdesk.monitor.validation import ValidationConfig
from herbdesk.quality.judge import QualitySettings

DEFAULT_OUT_DIR = Path("runs")
DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_BACKOFF_BASE_S = 2.0
DEFAULT_BACKOFF_MAX_S = 120.0
# The offline engine is CPU-bound (one sheet at a time uses both cores); an API is
# latency-bound, so a few requests in flight keep it busy.
OCR_CONCURRENCY = 1
API_CONCURRENCY = 4


def default_concurrency(engine: str) -> int:
    """Specimens in flight by default for this engine."""
    return OCR_CONCURRENCY if engine == "ocr" else API_CONCURRENCY


@dataclass
class RunConfig:
    """A run's settings. Secrets live only in `engine.api_key` and are never persisted."""

    inputs: list[Path]
    out_dir: Path = DEFAULT_OUT_DIR
    run_id: str | None = None
    engine: EngineSettings = field(default_factory=EngineSettings)
    prompt_path: Path | None = None
    concurrency: int = API_CONCURRENCY
    limit: int | None = None
    resume_dir: Path | None = None
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    quality: QualitySettings = field(default_factory=QualitySettings)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_base_s: float = DEFAULT_BACKOFF_BASE_S
    backoff_max_s: float = DEFAULT_BACKOFF_MAX_S
    # request starts per minute across all workers; None: the API's known cap (free models),
    # 0: unpaced
    requests_per_minute: float | None = None
    # the run's cost limit over all its invocations (extraction/budget.py); None: no limit
    budget_usd: float | None = None

    def pace(self) -> float | None:
        """The requests-per-minute pace this run keeps, or None for unpaced."""
        if self.requests_per_minute is not None:
            return self.requests_per_minute or None
        return default_requests_per_minute(self.engine)

    def public_dict(self) -> dict[str, Any]:
        """The config as written to run.json and extraction.started: no secrets.

        Paths are absolute: `--resume` reads them back, perhaps from another directory.
        """
        e = self.engine
        return {
            "inputs": [str(Path(p).absolute()) for p in self.inputs],
            "out_dir": str(Path(self.out_dir).absolute()),
            "engine": e.engine,
            "model": e.model,
            "base_url": e.base_url if e.engine != "ocr" else None,
            "max_side": e.max_side,
            "timeout_s": e.timeout_s,
            "prompt_path": str(Path(self.prompt_path).absolute()) if self.prompt_path else None,
            "prompt_sha256": hashlib.sha256(e.prompt_text.encode()).hexdigest()
            if e.prompt_text
            else None,
            "concurrency": self.concurrency,
            "limit": self.limit,
            "max_attempts": self.max_attempts,
            "requests_per_minute": self.pace(),
            "budget_usd": self.budget_usd,
            "validation": vars(self.validation).copy(),
            "quality": self.quality.public_dict(),
        }


@dataclass
class RunOutcome:
    """How a run ended, for exit codes and the app's final banner."""

    run_id: str
    run_dir: Path
    status: str  # completed | failed | cancelled
    reason: str | None = None
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    verdict: str | None = None  # completed runs: "passed" | "below_threshold"
    verdict_message: str = ""
    quality: dict[str, Any] = field(default_factory=dict)
