"""The records an export holds: per specimen, its newest successful record in raw.jsonl.

A later failure does not undo an earlier success (a rerun that hit a quota keeps the good
record); a specimen with no successful record is not exported. Records are read with the
same decoder the window and `summary` use (AutoDecoder), so herbdesk's raw.jsonl and the
original scripts' give the same specimen ids, values and success. Two passes keep memory
to one offset per specimen: the first finds each specimen's newest success, the second
reads only those lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from herbdesk.common.dwc import canonical_term
from herbdesk.events.codec import BadLine
from herbdesk.events.legacy import AutoDecoder
from herbdesk.events.types import EventType
from herbdesk.export.source import ExportError

# engines whose raw text is the label as read (OCR output); an API engine's raw text is the
# model's reply (JSON), not label text, and is not exported as verbatimLabel
OCR_ENGINES = frozenset({"ocr", "tesseract", "rapidocr", "paddleocr", "easyocr"})


@dataclass
class Record:
    specimen_id: str
    image: str
    values: dict[str, str]  # Darwin Core term -> value, as extracted (non-empty only)
    confidence: float | None
    raw_text: str
    engine: str
    model: str
    run_id: str
    timestamp: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label_text(self) -> str:
        """The verbatim label text, where the engine's raw text is one (OCR engines)."""
        return self.raw_text if self.engine.lower() in OCR_ENGINES else ""


@dataclass
class ScanCounts:
    lines: int = 0
    records: int = 0  # lines that are result records
    bad_lines: int = 0
    specimens: int = 0
    without_success: int = 0  # specimens whose records are all failures


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        with open(path, "rb") as fh:
            for number, line in enumerate(fh):
                if line.strip():
                    yield number, line
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc}") from exc


def require_records(raw_path: Path, counts: ScanCounts) -> None:
    """ExportError for a file none of whose lines is a result record (a CSV, an image, a
    names list): `export` and `review` refuse it alike, rather than show an empty run."""
    if counts.records == 0 and counts.lines > 0:
        raise ExportError(
            f"{raw_path} holds no result records (none of its {counts.lines:,} lines is "
            "a herbdesk or original-scripts raw.jsonl record)"
        )


def newest_successes(raw_path: Path, counts: ScanCounts) -> dict[str, int]:
    """Specimen id -> line number of its newest successful record (in first-seen order)."""
    decoder = AutoDecoder()
    chosen: dict[str, int] = {}
    seen: set[str] = set()
    for number, line in _lines(raw_path):
        counts.lines += 1
        before = decoder.kinds["result"]
        try:
            ev = decoder(line)
        except BadLine:
            counts.bad_lines += 1
            continue
        if decoder.kinds["result"] == before:  # an event line, not a result record
            continue
        counts.records += 1
        sid = ev.specimen_id or ""
        seen.add(sid)
        if ev.event_type == EventType.SPECIMEN_COMPLETED and ev.data.get("dwc"):
            chosen.pop(sid, None)  # re-inserted: the order is that of the newest success
            chosen[sid] = number
    counts.specimens = len(seen)
    counts.without_success = len(seen - chosen.keys())
    return chosen


def read_records(raw_path: Path, chosen: dict[str, int]) -> Iterator[Record]:
    """The chosen lines as Records, in file order."""
    wanted = set(chosen.values())
    decoder = AutoDecoder()
    for number, line in _lines(raw_path):
        try:
            ev = decoder(line)  # every line, so its state (run id, ordinal ids) matches pass 1
        except BadLine:
            continue
        if number not in wanted:
            continue
        obj = orjson.loads(line)
        values: dict[str, str] = {}
        for key, value in (ev.data.get("dwc") or {}).items():
            term = canonical_term(str(key))
            if term is not None and value is not None and str(value).strip():
                values[term] = str(value)
        yield Record(
            specimen_id=ev.specimen_id or "",
            image=str(ev.data.get("image") or ""),
            values=values,
            confidence=ev.data.get("confidence"),
            raw_text=_text(obj.get("raw_text")),
            engine=_text(obj.get("engine") or obj.get("provider")),
            model=_text(obj.get("model")),
            run_id=ev.run_id,
            timestamp=ev.timestamp,
            extra={"image_path": _text(obj.get("image_path") or ev.data.get("path"))},
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)
