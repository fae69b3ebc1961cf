"""File → Export… in the window writes the archive the export package writes."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from dwca.darwincore.utils import qualname as qn
from dwca.read import DwCAReader
from fakeapi import FakeApi
from helpers import api_config, run
from PySide6.QtCore import QSettings

from herbdesk.export.columns import HERBDESK_NS
from herbdesk.ui.mainwindow import MainWindow

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture()
def window(qtbot, tmp_path: Path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    yield win
    win.shutdown(30000)


def _export_via_menu(qtbot, win: MainWindow, out: Path, fmt: str, only_usable: bool) -> None:
    (action,) = [a for a in win.menuBar().actions()[0].menu().actions() if a.text() == "&Export…"]
    action.trigger()
    box = win.export_box
    assert box is not None and box.isVisible()
    box.format_box.setCurrentIndex(box.format_box.findData(fmt))
    box.only_usable.setChecked(only_usable)
    box.path_edit.setText(str(out))
    with qtbot.waitSignal(box.accepted, timeout=5000):
        box.accept()
    qtbot.waitUntil(lambda: win.exporter is not None and win.exporter.isFinished(), timeout=30000)
    qtbot.waitUntil(lambda: "Exported" in win.statusBar().currentMessage(), timeout=5000)


def test_file_export_writes_an_archive_of_the_opened_run(
    qtbot, window: MainWindow, tmp_path: Path, many_images
) -> None:
    with FakeApi(script=["good", "placeholders", "good", "good"]) as api:
        outcome, _ = run(api_config(many_images(4), tmp_path / "runs", api.base_url))
    assert window.open_path(outcome.run_dir)
    qtbot.waitUntil(lambda: not window.is_loading(), timeout=20000)
    out = tmp_path / "from-window.zip"
    _export_via_menu(qtbot, window, out, "dwca", only_usable=True)
    assert "3 record(s)" in window.statusBar().currentMessage()
    with DwCAReader(str(out)) as dwca:
        rows = dwca.rows
        assert len(rows) == 3
        assert all(r.data[HERBDESK_NS + "usable"] == "true" for r in rows)
        assert all(r.data[qn("scientificName")] for r in rows)
        assert all(r.data[HERBDESK_NS + "run_id"] == outcome.run_dir.name for r in rows)
    # again without "replace": refused in the status bar, the archive kept
    before = out.read_bytes()
    window.export_dialog()
    box = window.export_box
    box.path_edit.setText(str(out))
    box.accept()
    qtbot.waitUntil(lambda: "Export failed" in window.statusBar().currentMessage(), timeout=30000)
    assert "exists" in window.statusBar().currentMessage() and out.read_bytes() == before


def test_file_export_of_an_opened_legacy_raw_file(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    assert window.open_path(FIXTURES / "legacy_raw_flat.jsonl")
    qtbot.waitUntil(lambda: not window.is_loading(), timeout=20000)
    assert window.export_source() == FIXTURES / "legacy_raw_flat.jsonl"
    out = tmp_path / "legacy.csv"
    _export_via_menu(qtbot, window, out, "csv", only_usable=False)
    text = out.read_text(encoding="utf-8")
    assert "DAO000200" in text and "Carex aquatilis" in text
