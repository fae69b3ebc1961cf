"""Shared checks for the reliability tests (faults, crash, disk, soak, security).

The central one, `assert_counts_agree`, is the promise every fault test ends on: whatever
happened, events.jsonl, raw.jsonl, metrics.jsonl, occurrences.csv and `herbdesk summary`
tell the same story, exactly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from herbdesk.events.reader import read_events
from herbdesk.events.types import TERMINAL_EVENT_TYPES, EventType
from herbdesk.runstate.load import load_state

FINISHED = (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED)


@dataclass
class RunCounts:
    """What one run directory holds, counted per file."""

    queued: int
    skipped: int
    completed: int
    failed: int
    raw_ok: int
    raw_failed: int
    summary: dict[str, Any]


def raw_lines(run_dir: Path) -> list[dict[str, Any]]:
    """Decodable records of raw.jsonl (a torn line is skipped, as every reader does)."""
    path = run_dir / "raw.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def assert_counts_agree(run_dir: Path, *, torn_ok: bool = False) -> RunCounts:
    """Events, raw records, metrics lines, CSV rows and the summary agree exactly.

    `torn_ok` allows one undecodable last line per file (a crash or a full disk mid-write).
    """
    evs, stats = read_events(run_dir / "events.jsonl")
    assert stats.bad_lines <= (1 if torn_ok else 0), stats.bad_samples
    types = Counter(e.event_type for e in evs)
    done = [e for e in evs if e.event_type == EventType.SPECIMEN_COMPLETED]
    failed = [e for e in evs if e.event_type == EventType.SPECIMEN_FAILED]
    raw = raw_lines(run_dir)
    raw_ok = [r for r in raw if r.get("success")]
    raw_bad = [r for r in raw if not r.get("success")]
    if torn_ok:  # an event never claims what raw.jsonl does not hold; raw may hold one more
        assert {e.specimen_id for e in done} <= {r["specimen_id"] for r in raw_ok}
        assert {e.specimen_id for e in failed} <= {r["specimen_id"] for r in raw_bad}
        assert len(raw) >= len(done) + len(failed)
    else:
        assert len(raw) == len(done) + len(failed)
        assert sorted(r["specimen_id"] for r in raw_ok) == sorted(e.specimen_id for e in done)
        assert sorted(r["specimen_id"] for r in raw_bad) == sorted(e.specimen_id for e in failed)
        metrics = [
            orjson.loads(x) for x in (run_dir / "metrics.jsonl").read_bytes().splitlines() if x
        ]
        assert len(metrics) == len(done) + len(failed)
        assert sorted(m["seq"] for m in metrics) == sorted(e.seq for e in done + failed)
        assert [e.seq for e in evs] == list(range(1, len(evs) + 1))
        with open(run_dir / "occurrences.csv", encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert sorted(r["specimen_id"] for r in rows) == sorted(r["specimen_id"] for r in raw_ok)
    for e in failed:
        assert e.data["error"]["kind"] and e.data["error"]["message"]
    state, _ = load_state(run_dir)
    summary = state.summary()
    if not torn_ok:
        assert (summary["succeeded"], summary["failed"]) == (len(done), len(failed))
        assert summary["bad_lines"] == 0
        starts = [i for i, e in enumerate(evs) if e.event_type == EventType.EXTRACTION_STARTED]
        last_run = evs[starts[-1] :] if starts else evs  # terminal counts cover one invocation
        if last_run and last_run[-1].event_type in TERMINAL_EVENT_TYPES:
            n = Counter(e.event_type for e in last_run)
            end = last_run[-1].data
            assert (end["succeeded"], end["failed"]) == (
                n[EventType.SPECIMEN_COMPLETED],
                n[EventType.SPECIMEN_FAILED],
            )
    return RunCounts(
        queued=types[EventType.SPECIMEN_QUEUED],
        skipped=types[EventType.SPECIMEN_SKIPPED],
        completed=len(done),
        failed=len(failed),
        raw_ok=len(raw_ok),
        raw_failed=len(raw_bad),
        summary=summary,
    )


def assert_csv_matches_raw(run_dir: Path) -> None:
    """occurrences.csv is raw.jsonl's successes: the header, then one well-formed row per
    specimen with a successful record (none missing, none twice, no two rows merged)."""
    from herbdesk.extraction.results import CSV_COLUMNS

    with open(run_dir / "occurrences.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows and rows[0] == list(CSV_COLUMNS)
    assert all(len(r) == len(CSV_COLUMNS) for r in rows), "a torn or merged row"
    ids = [r[0] for r in rows[1:]]
    assert len(ids) == len(set(ids)), "a specimen with two rows"
    ok = {r["specimen_id"] for r in raw_lines(run_dir) if r.get("success") and r.get("dwc")}
    assert set(ids) == ok


def make_fake_jpegs(folder: Path, n: int) -> Path:
    """n distinct tiny JPEGs (distinct pixels and a distinct tail after EOI).

    Fast enough for 10,000.
    """
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        # distinct pixels too: an engine that re-encodes sends distinct images, and a fake
        # model answers each with its own record (as a real one would)
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (i % 256, (i >> 8) % 256, (i >> 16) % 256)).save(buf, "JPEG")
        (folder / f"sheet_{i:05d}.jpg").write_bytes(buf.getvalue() + i.to_bytes(4, "big"))
    return folder


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def snapshot_tree(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Every entry under folder: relative path -> (sha256, size, mtime_ns); dirs get 'dir'."""
    out: dict[str, tuple[str, int, int]] = {}
    for p in sorted(folder.rglob("*")):
        st = p.stat()
        rel = str(p.relative_to(folder))
        if p.is_dir():
            out[rel] = ("dir", 0, st.st_mtime_ns)
        else:
            out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns)
    out["."] = ("dir", 0, folder.stat().st_mtime_ns)
    return out
