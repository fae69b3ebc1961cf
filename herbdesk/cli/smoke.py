"""`herbdesk --smoke-test`: one real run through the desktop app, checked against its files.

It exists for the frozen bundle: a PyInstaller build can start and still miss an ONNX model, a
Qt plugin or package metadata, and only a real run through the window shows that. The same
command runs from a source install, so the bundle and the checkout are held to one standard.

This module stays Qt-free (the core rule); the window is driven by `herbdesk.ui.smoke`.
It prints one marker line, `HERBDESK-SMOKE-OK …` on stdout or `HERBDESK-SMOKE-FAIL …` on
stderr, which scripts grep for.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herbdesk.events.types import EventType

MARKER_OK = "HERBDESK-SMOKE-OK"
MARKER_FAIL = "HERBDESK-SMOKE-FAIL"
TIMEOUT_ENV = "HERBDESK_SMOKE_TIMEOUT"
# Five sheets take ~50 s on two cores; a loaded CI box or a cold one-file unpack can take
# several times that, and a hang must still end.
DEFAULT_TIMEOUT_S = 900.0


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


def run_smoke_test() -> int:
    """Run the bundled samples through the window offscreen; 0 and the OK marker if all agree."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists
    started = time.monotonic()
    timeout = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
    workdir = Path(tempfile.mkdtemp(prefix="herbdesk-smoke-"))
    try:
        from herbdesk.ui.smoke import run_in_window

        run = run_in_window(workdir, timeout)
        check_run(run)
    except SmokeFailure as exc:
        print(f"{MARKER_FAIL} {exc} (files kept in {workdir})", file=sys.stderr)
        return 1
    except Exception as exc:  # an import or Qt failure in a bundle is exactly what we look for
        traceback.print_exc()
        print(
            f"{MARKER_FAIL} {type(exc).__name__}: {exc} (files kept in {workdir})",
            file=sys.stderr,
        )
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - started
    from herbdesk.events import fastscan

    scan = "compiled log scanner" if fastscan.AVAILABLE else "log scanner not built (Python path)"
    print(
        f"{MARKER_OK} {run.live_summary['total']} specimens, {run.live_summary['events']} events, "
        f"{seconds:.1f}s, {scan}",
        flush=True,
    )
    return 0
