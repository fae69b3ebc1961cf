"""What an extraction engine is: an object that turns one image into Darwin Core fields."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

# Usage numbers come from the server: untrusted. Past 2**53 no token count is real (and JSON
# writers take 64-bit integers at most); no single request costs a million dollars.
MAX_COUNT = 2**53
MAX_COST_USD = 1e6


def plausible_count(value: Any) -> int | None:
    """A token count the server may really mean (a non-negative whole number), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value) if 0 <= value <= MAX_COUNT else None


def plausible_cost(value: Any) -> float | None:
    """A request's cost in USD the server may really mean, else None (`"free"`, NaN, -1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value) if abs(value) <= MAX_COST_USD else math.inf
    return f if 0.0 <= f <= MAX_COST_USD else None


def clean_usage(usage: Any) -> dict[str, Any]:
    """`usage` safe to count and to write: each number plausible or None, nested values
    dropped to None (any engine may hand back anything; one odd value must not stop a run)."""
    if not isinstance(usage, dict):
        return {}
    out: dict[str, Any] = {}
    for k, v in usage.items():
        if v is None or isinstance(v, (str, bool)):
            out[str(k)] = v
        elif isinstance(v, (int, float)):  # a whole count, else a fraction such as a price
            n = plausible_count(v)
            out[str(k)] = n if n is not None and k != "cost" else plausible_cost(v)
        else:
            out[str(k)] = None
    return out


def total_tokens(usage: dict[str, Any]) -> int:
    """`total_tokens`, else prompt + completion; 0 where the server gave nothing usable."""
    total = plausible_count(usage.get("total_tokens"))
    if total is None:
        parts = (plausible_count(usage.get(k)) for k in ("prompt_tokens", "completion_tokens"))
        total = min(MAX_COUNT, sum(p or 0 for p in parts))
    return total


class ErrorKind:
    """Kinds of failure; the pipeline decides retry/record/halt from these."""

    IMAGE = "image_error"  # unreadable or corrupt image: a failed specimen
    BAD_REPLY = "bad_reply"  # the model answered something that is not Darwin Core
    NO_FIELDS = "no_fields"  # a valid reply with no usable term
    RATE_LIMITED = "rate_limited"  # 429: retry after a pause
    SERVER = "server_error"  # 5xx: retry
    TIMEOUT = "timeout"  # retry
    NETWORK = "network_error"  # connection refused/reset: retry
    AUTH = "auth_error"  # 401/403: fatal, no retry helps
    PAYMENT = "payment_required"  # 402: fatal
    MODEL_NOT_FOUND = "model_not_found"  # 404 model: fatal
    CONFIG = "config_error"  # prompt missing, bad settings: fatal
    OUTPUT = "output_error"  # cannot write results: fatal
    CANCELLED = "cancelled"
    INTERNAL = "internal_error"
    # distributed runs: taken by workers too many times, none of them finished it (each one
    # crashed or was killed on it); failed without another try
    WORKER_CRASHED = "worker_crashed"
    # the file's bytes no longer hash to the id it was queued under (rewritten mid-run):
    # failed without a request; a resume queues the new content under its own id
    CHANGED = "image_changed"


FATAL_KINDS = frozenset(
    {
        ErrorKind.AUTH,
        ErrorKind.PAYMENT,
        ErrorKind.MODEL_NOT_FOUND,
        ErrorKind.CONFIG,
        ErrorKind.OUTPUT,
    }
)
RETRYABLE_KINDS = frozenset(
    {ErrorKind.RATE_LIMITED, ErrorKind.SERVER, ErrorKind.TIMEOUT, ErrorKind.NETWORK}
)


class EngineError(Exception):
    """A failure of one extraction attempt, classified for the pipeline."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        retry_after: float | None = None,
        raw_text: str | None = None,
        usage: dict[str, Any] | None = None,
        cost_usd: float | None = None,
        quota: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.raw_text = raw_text
        self.usage = usage or {}
        self.cost_usd = cost_usd
        # a rate limit the provider says is a used-up quota (wait for `retry_after`'s reset),
        # not a burst to retry through; only the engine sees the reply that can tell
        self.quota = quota

    @property
    def fatal(self) -> bool:
        return self.kind in FATAL_KINDS

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS


@dataclass(frozen=True)
class FieldValue:
    """One extracted Darwin Core term."""

    value: str
    confidence: float | None = None


@dataclass
class Extraction:
    """What an engine read from one image."""

    fields: dict[str, FieldValue]
    raw_text: str = ""
    usage: dict[str, Any] = field(default_factory=dict)  # prompt/completion/total tokens
    cost_usd: float | None = None
    model: str = ""

    @property
    def mean_confidence(self) -> float | None:
        vals = [f.confidence for f in self.fields.values() if f.confidence is not None]
        return sum(vals) / len(vals) if vals else None

    @property
    def total_tokens(self) -> int:
        return total_tokens(self.usage)


@dataclass(frozen=True)
class Check:
    """One preflight check: what was checked, whether it passed, and what was seen."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class SpecimenInput:
    """One image to extract."""

    path: Path
    specimen_id: str
    # the bytes `specimen_id` is the hash of, read once by the pipeline: engines decode these
    # rather than reopen `path`, so what is sent is what is recorded (None: read `path`)
    data: bytes | None = field(default=None, repr=False, compare=False)


@runtime_checkable
class Engine(Protocol):
    """An extraction engine. `extract` is called from several worker threads at once."""

    name: str
    model: str

    def preflight(self) -> list[Check]:
        """Cheap checks before the first specimen (endpoint, key, model); never raises."""
        ...

    def extract(self, specimen: SpecimenInput) -> Extraction:
        """Read one image; raise EngineError for any failure."""
        ...

    def close(self) -> None: ...


# The engines' defaults, the only copy (the CLI, the setup form and the worker read them here).
DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_MAX_SIDE = 2048  # long side of the image sent to a vision model, in pixels
DEFAULT_TIMEOUT_S = 120.0  # one request, however it trickles


@dataclass
class EngineSettings:
    """Everything an engine is built from. `api_key` is a secret: never logged or written."""

    engine: str = "ocr"
    model: str = ""
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    prompt_text: str = ""
    max_side: int = DEFAULT_MAX_SIDE
    timeout_s: float = DEFAULT_TIMEOUT_S
    extra: dict[str, Any] = field(default_factory=dict)
