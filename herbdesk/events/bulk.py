"""Typed decoding of a log's most frequent lines, for bulk folds (opening a log, `summary`).

Nine lines in ten of a run's log are specimen queued/processing/completed/failed events, and
the fold reads a dozen of their fields. msgspec decodes such a line straight into a small
struct, skipping every other field (the metrics snapshot, anything added later) without
building a dict: half the cost of `orjson.loads`, and none of the per-field type checks the
dict path needs, because the struct only accepts the exact types the fold expects.

A line that does not fit exactly (another event type, a field of an unexpected type, a
number out of range, text beyond ASCII, broken JSON) is not an error here: `decode_bulk`
returns None and the caller folds that line through the general path, which converts or
rejects it as for any event. Both paths give the same state (tests/test_bulk_fold.py), with one
known exception: a number too large for a double (`1e400`) inside a field the fold never reads
makes orjson reject the whole line, while msgspec skips over it and folds the fields it reads.
"""

from __future__ import annotations

import msgspec
import orjson

from herbdesk.events.types import EventType

BULK_TYPES = frozenset(
    {
        EventType.SPECIMEN_QUEUED,
        EventType.SPECIMEN_PROCESSING,
        EventType.SPECIMEN_COMPLETED,
        EventType.SPECIMEN_FAILED,
    }
)
_NO_RAW = msgspec.Raw(b"")


class BulkData(msgspec.Struct, gc=False):
    """The `data` fields the fold reads; absent ones are None (as `dict.get` gives)."""

    image: str | None = None
    path: str | None = None
    success: bool | None = None
    fields_extracted: int | None = None
    confidence: float | None = None
    processing_time_ms: float | None = None
    attempts: int | None = None
    tokens: int | None = None
    cost_usd: float | None = None
    error: msgspec.Raw = _NO_RAW  # any JSON (an object or a string); decoded only if present
    quality: msgspec.Raw = _NO_RAW  # the record's quality object; decoded by the fold
    dwc: msgspec.Raw = _NO_RAW  # the record's {term: value}; decoded by the fold


class BulkLine(msgspec.Struct, gc=False):
    """One herbdesk event line; `schema_version` and `event_type` mark it as one of ours."""

    schema_version: int
    event_type: str
    seq: int = 0
    timestamp: str = ""
    run_id: str = ""
    specimen_id: str | None = None
    sequence: int | None = None
    data: BulkData = msgspec.field(default_factory=BulkData)
    metrics: msgspec.Raw = _NO_RAW  # kept raw: only the newest snapshot is ever decoded


_decode = msgspec.json.Decoder(BulkLine).decode
_MAX_SEQ = 2**63


def decode_bulk(line: bytes) -> BulkLine | None:
    """The line as a BulkLine if the fast fold may take it, else None."""
    if not line.isascii():
        # msgspec does not check the UTF-8 of the fields it skips; orjson rejects a line with
        # invalid bytes or a lone surrogate anywhere. Such lines, and every line with text
        # beyond ASCII, take the general path (herbdesk's own lines are ASCII)
        return None
    try:
        ev = _decode(line)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, ValueError):
        return None  # the general path converts the line, or counts it as bad
    if ev.event_type not in BULK_TYPES or not 0 <= ev.seq < _MAX_SEQ:
        return None
    m = ev.metrics
    if m and memoryview(m)[0] != _BRACE and bytes(m) != b"null":
        return None  # the general path rejects metrics that are not an object
    q = ev.data.quality
    if q and memoryview(q)[0] != _BRACE and bytes(q) != b"null":
        return None  # not an object: the general path ignores it the same way
    if ev.data.error:
        try:  # decoded again by the fold; checked here so a bad one never half-folds a line
            orjson.loads(memoryview(ev.data.error))
        except orjson.JSONDecodeError:
            return None
    return ev


_BRACE = ord("{")


def metrics_object(raw: msgspec.Raw) -> bytes | None:
    """A raw `metrics` value if it is a non-empty object (it replaces latest_metrics)."""
    if not raw or memoryview(raw)[0] != _BRACE:
        return None
    b = bytes(raw)
    return b if b[1:-1].strip() else None
