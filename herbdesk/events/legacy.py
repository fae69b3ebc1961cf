"""Reading the logs of the team's original extraction scripts, detected per line.

Two shapes exist besides herbdesk's own events:
1. legacy events: `{"event_type", "timestamp", "data": {...}}` where `data` carries `run_id`,
   totals, and for specimens `specimen_id`, `sequence`, `result` {success, fields_extracted,
   confidence}, `metrics` {...}; a failed specimen has `error` (a string). Ids may be plain
   names; timestamps may lack a zone (taken as UTC).
2. result records (`raw.jsonl`): one per image with `image`, `model`, `provider`, `timestamp`,
   `usage`, and either `dwc` ({term: {value, confidence}} or flat values plus a separate
   `dwc_confidence`) or `error`/`errors`; some carry `specimen_id`, `engine`.
Each is turned into herbdesk Events so one RunState fold serves every source.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

import orjson

from herbdesk.events.codec import BadLine, from_dict
from herbdesk.events.types import Event, EventType

_TOTAL_KEYS = ("total", "total_images", "total_specimens", "specimen_count", "image_count")


class AutoDecoder:
    """Decodes herbdesk events, legacy events and result records; stateful per file.

    State: the run id seen so far (legacy lines may omit it) and a counter that gives result
    records a sequence number in file order.
    """

    def __init__(self) -> None:
        self.run_id = ""
        self.records = 0
        self.kinds: dict[str, int] = {"herbdesk": 0, "legacy": 0, "result": 0}

    def __call__(self, line: bytes) -> Event:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BadLine(f"invalid JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise BadLine("line is not a JSON object")
        if "schema_version" in obj and "event_type" in obj:
            self.kinds["herbdesk"] += 1
            return from_dict(obj)
        try:  # files of unknown provenance: a field of the wrong type makes a bad line
            if "event_type" in obj:
                self.kinds["legacy"] += 1
                return self._legacy_event(obj)
            has_outcome = "dwc" in obj or "error" in obj or "errors" in obj
            if has_outcome and ("image" in obj or "specimen_id" in obj):
                self.kinds["result"] += 1
                return self._result_record(obj)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, BadLine):
                raise
            raise BadLine(f"malformed record: {exc}") from exc
        raise BadLine("neither an event nor a result record")

    # ------------------------------------------------------------------ legacy events
    def _legacy_event(self, obj: dict[str, Any]) -> Event:
        et = obj.get("event_type")
        if not isinstance(et, str):
            raise BadLine("event_type is not a string")
        d = obj.get("data") or {}
        if not isinstance(d, dict):
            raise BadLine("data is not an object")
        run_id = str(d.get("run_id") or obj.get("run_id") or self.run_id)
        if run_id:
            self.run_id = run_id
        data: dict[str, Any] = {}
        for k in _TOTAL_KEYS:
            if d.get(k) is not None:
                data["total"] = d[k]
                break
        result = _obj(d.get("result"))
        metrics = _obj(d.get("metrics")) or None
        sid = d.get("specimen_id")
        if et in (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED):
            success = bool(result.get("success", et == EventType.SPECIMEN_COMPLETED))
            if d.get("error"):
                success = False
            data.update(
                image=str(d.get("image") or sid or ""),
                success=success,
                fields_extracted=int(result.get("fields_extracted") or 0),
                confidence=result.get("confidence"),
                processing_time_ms=d.get("processing_time_ms"),
            )
            if not success:
                err = d.get("error") or result.get("error") or "failed"
                data["error"] = {"kind": "error", "message": str(err)}
                et = EventType.SPECIMEN_FAILED
        elif et == EventType.EXTRACTION_FAILED:
            data["reason"] = d.get("reason") or "error"
            data["message"] = str(d.get("error") or d.get("message") or "")
        else:
            for k, v in d.items():
                if k not in ("run_id", "metrics", "result") and k not in data:
                    data[k] = v
        seq = d.get("sequence")
        return Event(
            event_type=et,
            run_id=run_id,
            seq=0,
            timestamp=str(obj.get("timestamp") or ""),
            specimen_id=str(sid) if sid is not None else None,
            sequence=int(seq) if isinstance(seq, int) else None,
            data=data,
            metrics=metrics,
        )

    # ------------------------------------------------------------------ result records
    def _result_record(self, rec: dict[str, Any]) -> Event:
        self.records += 1
        image = str(rec.get("image") or rec.get("image_path") or "")
        sid = rec.get("specimen_id") or (PurePath(image).stem if image else f"#{self.records}")
        dwc = _obj(rec.get("dwc"))
        conf_map = _obj(rec.get("dwc_confidence"))
        values: dict[str, Any] = {}
        confs: list[float] = []
        for term, raw in dwc.items():
            conf = conf_map.get(term)
            if isinstance(raw, dict):
                conf = raw.get("confidence", conf)
                raw = raw.get("value")
            if raw is None or str(raw).strip() == "":
                continue
            values[term] = raw
            if isinstance(conf, (int, float)):
                confs.append(float(conf))
        error = rec.get("error") or rec.get("errors")
        success = rec.get("success")
        if success is None:
            success = bool(values) and not error
        usage = _obj(rec.get("usage"))
        tokens = usage.get("total_tokens")
        if tokens is None:
            tokens = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
        cost = rec.get("cost_usd", usage.get("cost"))
        data: dict[str, Any] = {
            "image": PurePath(image).name if image else str(sid),
            "success": bool(success),
            "fields_extracted": len(values),
            "confidence": round(sum(confs) / len(confs), 4) if confs else None,
            "processing_time_ms": rec.get("processing_time_ms"),
            "attempts": rec.get("attempts") or 1,
            "tokens": int(tokens or 0),
            "cost_usd": cost if isinstance(cost, (int, float)) else None,
        }
        if success:  # the fold judges the values (the original scripts counted any term a success)
            data["dwc"] = values
        if not success:
            data["error"] = _error_obj(
                error or ("no Darwin Core fields" if not values else "failed")
            )
        run_id = str(rec.get("run_id") or self.run_id)
        return Event(
            event_type=EventType.SPECIMEN_COMPLETED if success else EventType.SPECIMEN_FAILED,
            run_id=run_id,
            seq=0,
            timestamp=str(rec.get("timestamp") or ""),
            specimen_id=str(sid),
            sequence=int(rec["sequence"]) if isinstance(rec.get("sequence"), int) else self.records,
            data=data,
        )


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _error_obj(err: Any) -> dict[str, str]:
    if isinstance(err, dict):
        return {"kind": str(err.get("kind") or "error"), "message": str(err.get("message") or err)}
    if isinstance(err, list):
        return {"kind": "error", "message": "; ".join(str(e) for e in err)}
    return {"kind": "error", "message": str(err)}
