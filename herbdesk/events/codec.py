"""Encoding events to JSONL lines and decoding lines back, tolerating damage."""

from __future__ import annotations

from typing import Any

import orjson

from herbdesk.events.types import SCHEMA_VERSION, Event


class BadLine(ValueError):
    """A line that is not a decodable event (torn, malformed, or of an unknown shape)."""


def encode(event: Event) -> bytes:
    """One event as one JSON line, newline included."""
    return orjson.dumps(event.to_dict(), option=orjson.OPT_APPEND_NEWLINE)


def from_dict(obj: dict[str, Any]) -> Event:
    """Build an Event from a decoded herbdesk event object; raises BadLine if it is not one."""
    try:
        event_type = obj["event_type"]
        if not isinstance(event_type, str):
            raise BadLine("event_type is not a string")
        data = obj.get("data") or {}
        if not isinstance(data, dict):
            raise BadLine("data is not an object")
        metrics = obj.get("metrics")
        if metrics is not None and not isinstance(metrics, dict):
            raise BadLine("metrics is not an object")
        seq = obj.get("seq", 0)
        sequence = obj.get("sequence")
        specimen_id = obj.get("specimen_id")
        if specimen_id is not None and not isinstance(specimen_id, str):
            raise BadLine("specimen_id is not a string")
        seq = int(seq) if seq is not None else 0
        if not 0 <= seq < 2**63:
            raise BadLine("seq out of range")
        return Event(
            event_type=event_type,
            run_id=str(obj.get("run_id") or ""),
            seq=seq,
            timestamp=str(obj.get("timestamp") or ""),
            specimen_id=specimen_id,
            sequence=int(sequence) if sequence is not None else None,
            data=data,
            metrics=metrics,
            schema_version=int(obj.get("schema_version", SCHEMA_VERSION)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BadLine):
            raise
        raise BadLine(f"not an event: {exc}") from exc


def decode(line: bytes | str) -> Event:
    """Decode one JSONL line into an Event; raises BadLine on anything else."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadLine(f"invalid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise BadLine("line is not a JSON object")
    return from_dict(obj)
