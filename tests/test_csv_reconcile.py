"""occurrences.csv is always derivable from raw.jsonl: a run killed (or a disk filled) between
a specimen's raw record and its CSV row, or in the middle of a row, leaves a CSV that the next
`--resume` and the end of every run rebuild from raw.jsonl: one row per successful record,
never a row lost, never two rows merged into one.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from fastengine import register_fast_engine
from reliability import assert_csv_matches_raw, make_fake_jpegs

from herbdesk.extraction.config import RunConfig
from herbdesk.extraction.engines import EngineSettings
from herbdesk.extraction.pipeline import Pipeline
from herbdesk.extraction.results import CSV_COLUMNS, spreadsheet_safe


def _config(images: Path, out: Path, **kw: object) -> RunConfig:
    return RunConfig(
        inputs=[images], out_dir=out, engine=EngineSettings(engine="fast"), concurrency=2, **kw
    )  # type: ignore[arg-type]


def _csv_rows(run_dir: Path) -> list[list[str]]:
    with open(run_dir / "occurrences.csv", encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_resume_repairs_a_csv_missing_rows_and_torn_mid_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_fast_engine(monkeypatch)
    images = make_fake_jpegs(tmp_path / "images", 10)
    first = Pipeline(_config(images, tmp_path / "out", run_id="r", limit=6))
    assert first.run().status == "completed"
    run_dir = first.run_dir
    # what a kill between the raw record and its row, then one mid-row, leaves behind
    data = (run_dir / "occurrences.csv").read_bytes()
    lines = data.splitlines(keepends=True)
    assert len(lines) == 7
    damaged = b"".join(lines[:3] + lines[4:6]) + lines[6][:40]  # one row gone, one torn
    (run_dir / "occurrences.csv").write_bytes(damaged)

    again = Pipeline(_config(images, tmp_path / "out", resume_dir=run_dir))
    assert again.run().status == "completed"
    assert_csv_matches_raw(run_dir)
    assert len(_csv_rows(run_dir)) == 11


def test_reconcile_keeps_column_order_and_neutralises_formulas(tmp_path: Path) -> None:
    raw = tmp_path / "raw.jsonl"
    import orjson

    recs = [
        {"specimen_id": "a", "image": "=cmd.jpg", "success": True,
         "dwc": {"scientificName": {"value": "=HYPERLINK(1)"},
                 "decimalLatitude": {"value": "-45.2"}}},
        {"specimen_id": "b", "image": "b.jpg", "success": False, "dwc": {}},
        {"specimen_id": "a", "image": "=cmd.jpg", "success": True,
         "dwc": {"scientificName": {"value": "dup"}}},
    ]  # fmt: skip
    raw.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs) + b'{"specimen_id": "c"')
    (tmp_path / "occurrences.csv").write_text("specimen_id,ima")  # torn header
    from herbdesk.extraction.results import reconcile_csv

    reconcile_csv(tmp_path)
    rows = _csv_rows(tmp_path)
    assert rows[0] == list(CSV_COLUMNS)
    assert len(rows) == 2 and rows[1][:2] == ["a", "'=cmd.jpg"]
    name = rows[1][CSV_COLUMNS.index("scientificName")]
    assert name == spreadsheet_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert rows[1][CSV_COLUMNS.index("decimalLatitude")] == "-45.2"
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file is gone
