"""Turning a model's reply text into Darwin Core fields, or saying why it cannot."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from herbdesk.common.dwc import canonical_term
from herbdesk.extraction.engines.base import EngineError, ErrorKind, FieldValue

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


def well_formed(text: str) -> str:
    """`text` with each lone UTF-16 surrogate replaced by U+FFFD.

    JSON may escape one (`"\\ud800"`) and Python's json then yields a str no UTF-8 writer
    (orjson, the log and CSV files) accepts: one such reply would stop the run when written.
    """
    return _SURROGATE.sub("\ufffd", text)


def _json_candidates(text: str) -> list[str]:
    out = [m.group(1).strip() for m in _FENCE.finditer(text)]
    stripped = text.strip()
    out.append(stripped)
    first, last = stripped.find("{"), stripped.rfind("}")
    if 0 <= first < last:
        out.append(stripped[first : last + 1])
    return out


def _loads(cand: str) -> Any:
    """The JSON value of `cand`, or None. orjson refuses a lone surrogate (`\\ud800`) that
    is still valid JSON: the standard parser reads it, and the values are cleaned after."""
    try:
        return orjson.loads(cand)
    except orjson.JSONDecodeError:
        if "\\ud" not in cand.lower():
            return None
    try:
        return json.loads(cand)
    except (ValueError, RecursionError):
        return None


def _confidence(raw: Any) -> float | None:
    try:
        c = float(raw)
    except (TypeError, ValueError):
        return None
    if c > 1.0 and c <= 100.0:  # some models answer in percent
        c /= 100.0
    return c if 0.0 <= c <= 1.0 else None


def parse_reply(text: str) -> dict[str, FieldValue]:
    """Fields from `{term: {value, confidence}}` or `{term: value}`, bare or code-fenced.

    Raises EngineError(bad_reply) when no JSON object is found and (no_fields) when the
    object holds no known Darwin Core term with a value.
    """
    obj: Any = None
    for cand in _json_candidates(well_formed(text or "")):
        obj = _loads(cand)
        if isinstance(obj, dict):
            break
        obj = None
    if obj is None:
        raise EngineError(ErrorKind.BAD_REPLY, "reply is not a JSON object", raw_text=text)
    for wrapper in ("dwc", "darwin_core", "fields", "record"):
        if isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    fields: dict[str, FieldValue] = {}
    for key, raw in obj.items():
        term = canonical_term(str(key))
        if term is None:
            continue
        conf: float | None = None
        if isinstance(raw, dict):
            conf = _confidence(raw.get("confidence"))
            raw = raw.get("value")
        if raw is None or isinstance(raw, (dict, list)):
            continue
        value = well_formed(str(raw)).strip()
        if value and value.lower() not in {"null", "none", "n/a", "unknown"}:
            fields[term] = FieldValue(value=value, confidence=conf)
    if not fields:
        raise EngineError(
            ErrorKind.NO_FIELDS, "reply holds no Darwin Core term with a value", raw_text=text
        )
    return fields
