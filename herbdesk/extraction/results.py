"""Results as they come: raw.jsonl (every specimen) and occurrences.csv (successes).

Both are appended and flushed per specimen, before the specimen's completed/failed event is
emitted, so an event never claims what the disk does not hold. raw.jsonl is the record;
occurrences.csv is derived from it: `reconcile_csv` rebuilds it whenever the writer opens
and when it closes, so a kill or a full disk between the two (or mid-row) never leaves the
CSV short or with two rows merged into one.
"""

from __future__ import annotations

import contextlib
import csv
import filecmp
import io
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from herbdesk.common.dwc import DWC_TERMS
from herbdesk.common.fsnames import fs_text, json_safe
from herbdesk.events.writer import JsonlAppender
from herbdesk.extraction.engines.base import plausible_cost

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


def csv_row(record: dict[str, Any]) -> list[str] | None:
    """The CSV row of a raw record (spreadsheet-safe), or None if it gets none (a failure)."""
    dwc = record.get("dwc") or {}
    if not (record.get("success") and isinstance(dwc, dict) and dwc):
        return None
    row = [str(record.get("specimen_id", "")), str(record.get("image", ""))]
    row += [str(v.get("value", "") if isinstance(v := dwc.get(t), dict) else "") for t in DWC_TERMS]
    return [spreadsheet_safe(fs_text(cell)) for cell in row]


def _encode_row(row: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(row)
    return buf.getvalue()


def reconcile_csv(run_dir: Path) -> bool:
    """Rebuild occurrences.csv from raw.jsonl: one row per specimen with a successful record.

    Streamed to a temporary file and swapped in atomically (os.replace), and only if it
    differs, so a reader never sees a half-written CSV. A torn last line of raw.jsonl is
    skipped (that specimen is redone on resume). Returns whether the CSV was replaced.
    """
    raw_path, csv_path = run_dir / "raw.jsonl", run_dir / "occurrences.csv"
    tmp = run_dir / "occurrences.csv.tmp"
    seen: set[str] = set()
    try:
        # utf-8-sig would put a BOM mid-file on resume; spreadsheet users get plain UTF-8.
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            out.write(_encode_row(list(CSV_COLUMNS)))
            for rec in _raw_records(raw_path):
                row = csv_row(rec)
                if row is None or row[0] in seen:
                    continue  # a specimen has one row, whatever resumes recorded twice
                seen.add(row[0])
                out.write(_encode_row(row))
        if csv_path.exists() and filecmp.cmp(tmp, csv_path, shallow=False):
            tmp.unlink()
            return False
        os.replace(tmp, csv_path)
        return True
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _raw_records(raw_path: Path) -> Iterator[dict[str, Any]]:
    if not raw_path.exists():
        return
    with open(raw_path, "rb") as fh:
        for line in fh:
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                yield rec


class ResultsWriter:
    """Appends one raw record per finished specimen and one CSV row per success."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.raw_path = run_dir / "raw.jsonl"
        self.csv_path = run_dir / "occurrences.csv"
        self._raw = JsonlAppender(self.raw_path)
        self._lock = threading.Lock()
        # rows a killed run recorded in raw.jsonl but not here (or tore) are put back first
        reconcile_csv(run_dir)
        self._csv = open(self.csv_path, "a", encoding="utf-8", newline="")  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        """Append the record (and its CSV row on success); raises OSError if the disk refuses."""
        with self._lock:
            line = orjson.dumps(json_safe(record), option=orjson.OPT_APPEND_NEWLINE)
            self._raw.write_bytes(line)
            row = csv_row(record)
            if row is not None:
                self._csv.write(_encode_row(row))
                self._csv.flush()

    def close(self) -> None:
        """Close both files, then make the CSV match raw.jsonl (a refused row is put back)."""
        with self._lock:
            try:
                self._raw.close()
            finally:  # a failed flush of raw.jsonl must not leave the CSV open
                try:
                    if not self._csv.closed:
                        self._csv.close()
                finally:
                    reconcile_csv(self.run_dir)


def completed_specimen_ids(raw_path: Path) -> set[str]:
    """Specimen ids with a successful record in an existing raw.jsonl (for --resume)."""
    return resume_point(raw_path).done


# The head and tail of a raw record exactly as specimen_record + orjson write it (keys in that
# order, no spaces). Strings are matched whole, escapes included, so a file name or model text
# cannot fake a key: inside a JSON string every '"' is escaped.
_STR = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
_HEAD = re.compile(
    rb'\{"run_id":(?:<S>|null),"specimen_id":"([^"\\]+)","sequence":(\d+|null),"image":<S>,'
    rb'"image_path":<S>,"timestamp":<S>,"engine":<S>,"model":(?:<S>|null),"success":(true|false),"dwc":'.replace(
        b"<S>", _STR
    )
)
# A successful record's last keys, its cost among them: a line torn mid-write (a crash) does
# not end so
_BLOCK = 8 << 20
_OK_TAIL = re.compile(
    rb',"cost_usd":(null|[-+.\deE]+),"attempts":\d+,"processing_time_ms":[-+.\deE]+,'
    rb'"error":null\}\r?\n?$'
)


class ResumePoint(NamedTuple):
    """What a resumed run continues from (see resume_point)."""

    done: set[str]
    """Specimen ids with a successful record."""
    last: int
    """The highest finish ordinal (`sequence`) recorded."""
    spent: float
    """The sum of every record's `cost_usd`, failures and repeats included: each was paid."""
    finished: int = 0
    """Records (finished specimens, failures and repeats included): the budget's mean."""
    costed: int = 0
    """Of them, those with a cost (`spent` is their sum)."""


def _cost(text: bytes) -> float | None:
    if text == b"null":
        return None
    try:
        return plausible_cost(float(text))
    except ValueError:
        return None


def resume_point(raw_path: Path) -> ResumePoint:
    """What a resumed run continues from: the specimen ids with a successful record in an
    existing raw.jsonl, the highest finish ordinal (`sequence`) recorded there, and what the
    recorded specimens cost (appended with each record, so a kill loses none of it), with how
    many records there are and how many of them have a cost (the budget's mean, over every
    invocation).

    raw.jsonl holds the model's text (gigabytes for a big run): a record in herbdesk's own
    layout is read from its head and tail only (`_HEAD`, `_OK_TAIL`); any other line (a
    failure, an older layout, a hand edit) is parsed whole, as before. A torn line is skipped
    either way (that specimen is simply redone).
    """
    done: set[str] = set()
    last = 0
    spent = 0.0
    finished = costed = 0
    if not raw_path.exists():
        return ResumePoint(done, last, spent)
    head, ok_tail = _HEAD.match, _OK_TAIL.search
    carry = b""
    with open(raw_path, "rb") as fh:
        while True:
            chunk = fh.read(_BLOCK)
            block = carry + chunk if carry else chunk
            if not block:
                break
            # whole lines only, located in the block (no copy of each line): the next read
            # continues the last, partial one; at the end of the file it is a line too
            stop = len(block) if not chunk else block.rfind(b"\n") + 1
            pos = 0
            while pos < stop:
                nl = block.find(b"\n", pos, stop)
                end = stop if nl < 0 else nl + 1
                m = head(block, pos, end)
                tail = None
                if m is not None and m[3] == b"true":
                    tail = ok_tail(block, max(pos, end - 160), end)
                if m is not None and tail is not None:
                    done.add(m[1].decode())
                    finished += 1
                    if (cost := _cost(tail[1])) is not None:
                        spent += cost
                        costed += 1
                    if m[2] != b"null" and (number := int(m[2])) > last:
                        last = number
                else:
                    rec = parse_whole_record(block[pos:end])
                    if rec is not None:
                        finished += bool(rec.get("specimen_id"))
                        if (cost := plausible_cost(rec.get("cost_usd"))) is not None:
                            spent += cost
                            costed += 1
                        if rec.get("success") and rec.get("specimen_id"):
                            done.add(str(rec["specimen_id"]))
                        seq = rec.get("sequence")
                        if type(seq) is int and seq > last:
                            last = seq
                pos = end
            carry = block[stop:]
            if not chunk:
                break
    return ResumePoint(done, last, spent, finished, costed)


def parse_whole_record(line: bytes) -> dict[str, Any] | None:
    """One raw.jsonl line parsed in full (None for a torn or foreign line)."""
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None  # a torn last line from a crash
    return rec if isinstance(rec, dict) else None
