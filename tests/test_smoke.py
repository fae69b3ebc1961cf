"""`herbdesk --smoke-test`: the check the frozen bundle runs, run here from the source install."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from herbdesk.ui.smoke_checks import MARKER_OK, SmokeFailure, SmokeRun, check_run


def test_smoke_test_command_passes_offscreen(tmp_path: Path) -> None:
    pytest.importorskip("PySide6")
    pytest.importorskip("rapidocr")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TMPDIR": str(tmp_path)}
    r = subprocess.run(
        [sys.executable, "-m", "herbdesk", "--smoke-test"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith(MARKER_OK)]
    assert len(lines) == 1, r.stdout
    assert lines[0].startswith(f"{MARKER_OK} 5 specimens, ")
    assert re.search(r", \d+\.\ds, (compiled log scanner|log scanner not built)", lines[0])
    assert not list(tmp_path.glob("herbdesk-smoke-*")), "a passing smoke test cleans up"
    # Qt's platform hints are the app's known noise, filtered as `herbdesk app` filters them
    # (they were printed six times)
    assert "propagateSizeHints" not in r.stderr, r.stderr[-3000:]


def _run_dir(tmp_path: Path, raw: int = 2, csv_rows: int = 2, events: int = 9) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    (d / "events.jsonl").write_text("{}\n" * events)
    (d / "raw.jsonl").write_text("{}\n" * raw)
    (d / "occurrences.csv").write_text("specimen_id,image\n" + "a,b.jpg\n" * csv_rows)
    return d


def _smoke_run(run_dir: Path, shot: Path, **over: object) -> SmokeRun:
    summary = {"status": "completed", "total": 2, "processed": 2, "succeeded": 2, "events": 9}
    counts = {"specimen.completed": 2, "extraction.completed": 1}
    fields: dict[str, object] = {
        "run_dir": run_dir,
        "images": 2,
        "live_summary": summary,
        "live_type_counts": counts,
        "reopened_summary": dict(summary),
        "reopened_type_counts": dict(counts),
        "table_rows": 2,
        "screenshot": shot,
        "screenshot_size": (1440, 900),
        "screenshot_colours": 200,
    }
    fields.update(over)
    return SmokeRun(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("files", "over", "reason"),
    [
        ({}, {}, None),
        ({"raw": 1}, {}, "raw.jsonl holds 1 records for 2 finished"),
        ({"csv_rows": 3}, {}, "occurrences.csv holds 3 rows"),
        ({"events": 8}, {}, "events.jsonl holds 8 lines"),
        ({}, {"reopened_summary": {"status": "running"}}, "reopened log disagrees"),
        ({}, {"table_rows": 1}, "specimen table shows 1 rows"),
        ({}, {"screenshot_colours": 1}, "looks blank"),
        ({}, {"images": 3}, "3 sample images"),
    ],
)
def test_check_run_catches_each_disagreement(
    tmp_path: Path, files: dict[str, int], over: dict[str, object], reason: str | None
) -> None:
    shot = tmp_path / "shot.png"
    shot.write_bytes(b"\x89PNG")
    run = _smoke_run(_run_dir(tmp_path, **files), shot, **over)
    if reason is None:
        check_run(run)
        return
    with pytest.raises(SmokeFailure, match=reason):
        check_run(run)
