"""Logs of the original extraction scripts open and summarize (fixtures written from the
format description; each has malformed lines)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from herbdesk.events.reader import ReadStats, iter_events
from herbdesk.runstate.load import load_state
from herbdesk.runstate.state import RunState

FIX = Path(__file__).parent / "fixtures"


def test_legacy_events_fold_like_herbdesk_events() -> None:
    state, stats = load_state(FIX / "legacy_events.jsonl")
    s = state.summary()
    assert stats.bad_lines == 2 and s["bad_lines"] == 2
    assert s["run_id"] == "run_20250314_090000"
    assert s["status"] == "completed" and s["total"] == 6
    assert (s["processed"], s["succeeded"], s["failed"]) == (4, 2, 2)
    row = state.row_of["DAO000124"]
    assert state.error[row] == "error: Prompt file not found: prompts/v2.txt"
    # a "completed" event whose result says success=false counts as a failure
    assert state.row_status[state.row_of["DAO000126"]] == "failed"
    assert state.first_ts == "2025-03-14T09:00:00"  # zone-less timestamps are accepted
    assert state.elapsed_s() == 130.0


def test_result_records_nested_dwc() -> None:
    state, stats = load_state(FIX / "legacy_raw.jsonl")
    s = state.summary()
    assert stats.bad_lines == 1  # the torn last record
    assert (s["processed"], s["succeeded"], s["failed"]) == (3, 1, 2)
    assert s["status"] == "unknown" and s["tokens"] == 2600
    first = state.row_of["5f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a10"]
    assert state.fields_extracted[first] == 2  # the empty country does not count
    assert state.confidence[first] == 0.8
    assert "401" in state.error[1]
    assert state.error[2].endswith("no Darwin Core fields")


def test_result_records_flat_dwc_with_separate_confidence() -> None:
    state, stats = load_state(FIX / "legacy_raw_flat.jsonl")
    assert stats.bad_lines == 1
    assert (state.succeeded, state.failed) == (2, 1)
    r0 = state.row_of["DAO000200"]
    assert state.image[r0] == "DAO000200.jpg"
    assert abs((state.confidence[r0] or 0) - (0.8 + 0.6 + 0.95) / 3) < 1e-3
    assert state.error[state.row_of["DAO000201"]] == "error: no text found; label not detected"


def test_mixed_file_detects_each_line() -> None:
    stats = ReadStats()
    lines = (FIX / "legacy_events.jsonl").read_bytes() + (
        FIX / "legacy_raw_flat.jsonl"
    ).read_bytes()
    mixed = FIX.parent / "_mixed.tmp.jsonl"
    try:
        mixed.write_bytes(lines)
        st = RunState()
        st.apply_batch(iter_events(mixed, stats))
    finally:
        mixed.unlink()
    assert st.processed == 7 and stats.bad_lines == 3


def test_summary_cli_reads_legacy_files() -> None:
    for name, processed in (
        ("legacy_events.jsonl", 4),
        ("legacy_raw.jsonl", 3),
        ("legacy_raw_flat.jsonl", 3),
    ):
        r = subprocess.run(
            [sys.executable, "-m", "herbdesk", "summary", str(FIX / name), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["processed"] == processed
