"""Results as they come: raw.jsonl (every specimen) and occurrences.csv (successes).

Both are appended and flushed per specimen, before the specimen's completed/failed event is
emitted, so an event never claims what the disk does not hold.
"""

from __future__ import annotations

import csv
import io
import re
import threading
from pathlib import Path
from typing import Any

import orjson

from herbdesk.events.writer import JsonlAppender
from herbdesk.extraction.dwc import DWC_TERMS

CSV_COLUMNS: tuple[str, ...] = ("specimen_id", "image", *DWC_TERMS)
# What a spreadsheet reads as the start of a formula (OWASP's CSV injection list)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_safe(value: str) -> str:
    """`value` with a `'` in front if a spreadsheet would run it as a formula.

    Model text and file names reach the CSV unchecked; `=HYPERLINK(...)` or `+cmd|...` would
    run when a curator opens the file. A plain number ("-45.2", a southern latitude) is no
    formula and is kept as it is. raw.jsonl always keeps the value unchanged.
    """
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class ResultsWriter:
    """Appends one raw record per finished specimen and one CSV row per success."""

    def __init__(self, run_dir: Path) -> None:
        self.raw_path = run_dir / "raw.jsonl"
        self.csv_path = run_dir / "occurrences.csv"
        self._raw = JsonlAppender(self.raw_path)
        self._lock = threading.Lock()
        new_csv = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        # utf-8-sig would put a BOM mid-file on resume; spreadsheet users get plain UTF-8.
        self._csv = open(self.csv_path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        if new_csv:
            self._write_row(list(CSV_COLUMNS))

    def _write_row(self, row: list[str]) -> None:
        buf = io.StringIO()
        csv.writer(buf).writerow(row)
        self._csv.write(buf.getvalue())
        self._csv.flush()

    def write(self, record: dict[str, Any]) -> None:
        """Append the record (and its CSV row on success); raises OSError if the disk refuses."""
        with self._lock:
            self._raw.write_bytes(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
            dwc = record.get("dwc") or {}
            if record.get("success") and dwc:
                row = [str(record.get("specimen_id", "")), str(record.get("image", ""))]
                row += [str((dwc.get(t) or {}).get("value", "")) for t in DWC_TERMS]
                self._write_row([spreadsheet_safe(cell) for cell in row])

    def close(self) -> None:
        with self._lock:
            try:
                self._raw.close()
            finally:  # a failed flush of raw.jsonl must not leave the CSV open
                if not self._csv.closed:
                    self._csv.close()


def completed_specimen_ids(raw_path: Path) -> set[str]:
    """Specimen ids with a successful record in an existing raw.jsonl (for --resume)."""
    return resume_point(raw_path)[0]


def resume_point(raw_path: Path) -> tuple[set[str], int]:
    """What a resumed run continues from: the specimen ids with a successful record in an
    existing raw.jsonl, and the highest finish ordinal (`sequence`) recorded there."""
    done: set[str] = set()
    last = 0
    if not raw_path.exists():
        return done, last
    with open(raw_path, "rb") as fh:
        for line in fh:
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a torn last line from a crash: that specimen is simply redone
            if not isinstance(rec, dict):
                continue
            if rec.get("success") and rec.get("specimen_id"):
                done.add(str(rec["specimen_id"]))
            seq = rec.get("sequence")
            if type(seq) is int and seq > last:
                last = seq
    return done, last
