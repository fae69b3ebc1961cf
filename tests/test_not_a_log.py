"""A file that is no run (a gold CSV, an image, a names list) is refused alike by `summary`,
`export`, `review`, `open` and the window's File → Open: exit 2 and one wording, never an
empty run shown as if it were one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import herbdesk_cli

from herbdesk.runstate.load import HEAD_LINES, log_refusal


def _files(tmp_path: Path) -> dict[str, Path]:
    gold = tmp_path / "gold.csv"
    gold.write_text("image,scientificName\na.jpg,Carex aurea\nb.jpg,Poa pratensis\n", "utf-8")
    names = tmp_path / "names.txt"
    names.write_text("Carex aurea Nutt.\nPoa pratensis L.\n", "utf-8")
    jpg = tmp_path / "fake.jpg"
    jpg.write_bytes(b"\xff\xd8\xff\xe0" + b"\n".join(bytes([i]) * 30 for i in range(250)))
    return {"gold": gold, "names": names, "jpg": jpg}


@pytest.mark.parametrize("kind", ["gold", "names", "jpg"])
def test_review_refuses_a_file_that_holds_no_records_as_export_does(
    tmp_path: Path, kind: str
) -> None:
    path = _files(tmp_path)[kind]
    review = herbdesk_cli("review", str(path))
    export = herbdesk_cli("export", str(path), "--format", "csv", "--out", str(tmp_path / "o.csv"))
    assert review.returncode == export.returncode == 2, review.stdout
    assert "holds no result records" in review.stderr
    assert review.stderr.splitlines()[-1] == export.stderr.splitlines()[-1]
    assert "record(s)" not in review.stdout and not (tmp_path / "o.csv").exists()


def test_open_refuses_a_csv_before_any_window_with_the_summary_message(tmp_path: Path) -> None:
    gold = _files(tmp_path)["gold"]
    shot = tmp_path / "x.png"
    opened = herbdesk_cli("open", str(gold), "--screenshot", str(shot))
    summary = herbdesk_cli("summary", str(gold))
    assert opened.returncode == summary.returncode == 2, opened.stderr
    assert "is not a herbdesk event log or raw.jsonl" in opened.stderr
    assert opened.stderr.strip().splitlines()[-1] == summary.stderr.strip().splitlines()[-1]
    assert not shot.exists()


def test_the_glance_reads_only_the_head_of_a_long_file(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("not a log line\n" * (HEAD_LINES * 50), "utf-8")
    why = log_refusal(big)
    assert why is not None and f"none of its first {HEAD_LINES} lines" in why
    log = tmp_path / "events.jsonl"
    event = {
        "event_type": "extraction.started",
        "run_id": "r",
        "seq": 1,
        "timestamp": "2026-12-03T00:00:00Z",
        "schema_version": 1,
        "data": {},
    }
    log.write_text("junk\n" * 5 + json.dumps(event) + "\n", "utf-8")
    assert log_refusal(log) is None  # one event among bad lines: a damaged log, opened
    assert log_refusal(tmp_path) is None  # a run directory with its events.jsonl
    empty = tmp_path / "empty" / "events.jsonl"
    empty.parent.mkdir()
    empty.write_text("", "utf-8")
    assert log_refusal(empty) is None  # a run that has not written yet
    assert log_refusal(tmp_path / "nowhere") == f"no event log at {tmp_path / 'nowhere'}"


def test_file_open_in_the_window_refuses_a_csv_in_the_status_bar(qtbot, tmp_path: Path) -> None:
    pytest.importorskip("PySide6")
    from PySide6.QtCore import QSettings

    from herbdesk.ui.mainwindow import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    try:
        gold = _files(tmp_path)["gold"]
        assert not win.open_path(gold)
        shown = win.statusBar().currentMessage()
        assert shown == log_refusal(gold)
        assert "is not a herbdesk event log or raw.jsonl" in shown
        assert win.opened_log is None and not win.is_loading()
    finally:
        win.shutdown(30000)
