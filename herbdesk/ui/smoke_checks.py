"""What `herbdesk --smoke-test` checks once the window has run the samples (Qt-free).

The live view, the same run reopened from its log and the files on disk must agree. It prints
one marker line, `HERBDESK-SMOKE-OK …` on stdout or `HERBDESK-SMOKE-FAIL …` on stderr, which
scripts grep for.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herbdesk.events.types import EventType

MARKER_OK = "HERBDESK-SMOKE-OK"
MARKER_FAIL = "HERBDESK-SMOKE-FAIL"


class SmokeFailure(Exception):
    """A check failed; the message is the reason printed after the FAIL marker."""


@dataclass
class SmokeRun:
    """What the window saw: the live run and the same run opened back from its log."""

    run_dir: Path
    images: int
    live_summary: dict[str, Any]
    live_type_counts: dict[str, int]
    reopened_summary: dict[str, Any]
    reopened_type_counts: dict[str, int]
    table_rows: int
    screenshot: Path
    screenshot_size: tuple[int, int]
    screenshot_colours: int
    banners: list[tuple[str, str]] = field(default_factory=list)


def _non_empty_lines(path: Path) -> int:
    if not path.is_file():
        raise SmokeFailure(f"{path.name} was not written in {path.parent}")
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def _csv_rows(path: Path) -> int:
    if not path.is_file():
        raise SmokeFailure(f"{path.name} was not written in {path.parent}")
    with open(path, encoding="utf-8", newline="") as fh:
        return max(0, sum(1 for row in csv.reader(fh) if row) - 1)  # minus the header


def check_run(run: SmokeRun) -> None:
    """Raise SmokeFailure unless the live view, the reopened log and the files agree."""
    live, counts = run.live_summary, run.live_type_counts
    if live.get("status") != "completed":
        raise SmokeFailure(
            f"run ended {live.get('status')} ({live.get('reason')}): {live.get('message')}"
        )
    if live.get("total") != run.images or live.get("processed") != run.images:
        raise SmokeFailure(
            f"{run.images} sample images, but total={live.get('total')} "
            f"processed={live.get('processed')}"
        )
    if not live.get("succeeded"):
        raise SmokeFailure("no specimen succeeded: the OCR engine read nothing")
    if run.reopened_summary != live:
        diff = {
            k: (live.get(k), run.reopened_summary.get(k))
            for k in sorted(set(live) | set(run.reopened_summary))
            if live.get(k) != run.reopened_summary.get(k)
        }
        raise SmokeFailure(f"reopened log disagrees with the live view (live, reopened): {diff}")
    if run.reopened_type_counts != counts:
        raise SmokeFailure(f"event types differ: live {counts} reopened {run.reopened_type_counts}")
    events = _non_empty_lines(run.run_dir / "events.jsonl")
    if events != live["events"]:
        raise SmokeFailure(f"events.jsonl holds {events} lines, the window saw {live['events']}")
    finished = counts.get(EventType.SPECIMEN_COMPLETED, 0) + counts.get(
        EventType.SPECIMEN_FAILED, 0
    )
    raw = _non_empty_lines(run.run_dir / "raw.jsonl")
    if raw != finished:
        raise SmokeFailure(f"raw.jsonl holds {raw} records for {finished} finished specimens")
    rows = _csv_rows(run.run_dir / "occurrences.csv")
    if rows != live["succeeded"]:
        raise SmokeFailure(f"occurrences.csv holds {rows} rows for {live['succeeded']} successes")
    if run.table_rows != run.images:
        raise SmokeFailure(f"the specimen table shows {run.table_rows} rows, not {run.images}")
    if not run.screenshot.is_file() or run.screenshot.stat().st_size == 0:
        raise SmokeFailure(f"dashboard screenshot {run.screenshot} is missing or empty")
    w, h = run.screenshot_size
    if w < 100 or h < 100 or run.screenshot_colours < 8:
        raise SmokeFailure(
            f"dashboard screenshot looks blank ({w}x{h}, {run.screenshot_colours} colours)"
        )
