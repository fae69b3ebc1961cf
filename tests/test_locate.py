"""Locate images…: the sheets of an opened log found again in a folder, by file name or by
content hash (herbdesk/extraction/locate.py, MainWindow.locate_images)."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PySide6.QtCore import QSettings, Qt

from herbdesk.extraction import locate
from herbdesk.extraction.locate import LocateCancelled, locate_images


def _sheet(path: Path, shade: int) -> str:
    """A small distinct JPEG at `path`; its sha256 (a herbdesk specimen id)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (40, 60), (shade, 200 - shade, 90))
    img.putpixel((shade % 40, 3), (255, 255, 255))
    img.save(path, quality=92)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sheets_are_found_by_name_then_by_content(tmp_path: Path) -> None:
    folder = tmp_path / "moved"
    by_name = _sheet(folder / "a" / "DAO000124.jpg", 10)
    renamed = _sheet(folder / "b" / "scan_0001.jpg", 20)  # recorded as its hash name
    twin_one = _sheet(folder / "c" / "sheet.jpg", 30)
    _sheet(folder / "d" / "sheet.jpg", 40)  # the same name in another folder
    found = locate_images(
        folder,
        [
            ("DAO000124", "old/drive/DAO000124.JPG"),  # a path, another case: the name counts
            (renamed, f"{renamed}.jpg"),
            (twin_one, "sheet.jpg"),  # ambiguous by name: the hash picks the file
            ("DAO999999", "gone.jpg"),  # neither name nor hash: not found
        ],
    )
    assert found.paths["DAO000124"] == str(folder / "a" / "DAO000124.jpg")
    assert found.paths[renamed] == str(folder / "b" / "scan_0001.jpg")
    assert found.paths[twin_one] == str(folder / "c" / "sheet.jpg")
    assert "DAO999999" not in found.paths
    assert (found.by_name, found.by_content, found.wanted) == (1, 2, 4)
    assert found.message(folder).startswith("Found 3 of 4 sheet(s)")
    assert by_name  # a non-hash id is matched by name only


def test_a_search_is_cancelled_between_files_and_reports_its_progress(tmp_path: Path) -> None:
    folder = tmp_path / "sheets"
    ids = [_sheet(folder / f"s{i}.jpg", 10 + 20 * i) for i in range(4)]
    seen: list[tuple[int, int]] = []
    found = locate_images(folder, [(sid, "") for sid in ids], progress=lambda *a: seen.append(a))
    assert len(found.paths) == 4 and found.by_content == 4
    assert seen[-1][1] == 4 and [d for d, _ in seen] == list(range(1, len(seen) + 1))
    with pytest.raises(LocateCancelled):  # asked to stop after the second file
        locate_images(folder, [(sid, "") for sid in ids], lambda: len(seen) >= 2, seen.clear)


def _legacy_log(tmp_path: Path, ids: list[str]) -> Path:
    """The original scripts' raw.jsonl: each sheet named by its hash, no path recorded."""
    log_dir = tmp_path / "published"
    log_dir.mkdir()
    lines = [
        {"image": f"{sid}.jpg", "timestamp": f"2025-03-14T09:0{i}:00",
         "dwc": {"scientificName": {"value": f"Poa annua {i}", "confidence": 0.9}}}
        for i, sid in enumerate(ids)
    ]  # fmt: skip
    (log_dir / "raw.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return log_dir


class _Gate:
    """Holds the search inside its first hash until `release()`: what a folder of huge
    sheets or a slow drive does to it; records the thread each hash ran on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.go = threading.Event()
        self.calls: list[int] = []  # the thread of each hash
        real = locate.specimen_id_of

        def held(path: Path) -> Any:
            self.calls.append(threading.get_ident())
            self.entered.set()
            assert self.go.wait(30)
            return real(path)

        monkeypatch.setattr(locate, "specimen_id_of", held)

    def release(self) -> None:
        self.go.set()


def _opened(qtbot: Any, tmp_path: Path, log_dir: Path) -> Any:
    from herbdesk.ui.mainwindow import MainWindow

    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    assert win.open_path(log_dir)
    qtbot.waitUntil(lambda: not win.is_loading(), timeout=20000)
    return win


def test_the_window_stays_responsive_while_a_search_hashes_and_then_shows_the_result(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtCore import QTimer

    folder = tmp_path / "sheets"
    ids = [_sheet(folder / f"s{i}.jpg", 50 + 30 * i) for i in range(3)]
    win = _opened(qtbot, tmp_path, _legacy_log(tmp_path, ids))
    gate = _Gate(monkeypatch)
    ticks: list[int] = []
    timer = QTimer(win)
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    assert win.locate_images(folder)  # returns at once: the search runs on its thread
    assert win.is_locating() and win.locate_cancel.isVisibleTo(win)
    assert gate.entered.wait(10)
    before = len(ticks)
    qtbot.wait(300)  # the search is held inside a hash meanwhile
    assert len(ticks) - before >= 10, "the GUI thread did not process its events"
    assert win.is_locating() and not win.document.located
    assert "Locating sheets in" in win.statusBar().currentMessage()
    assert threading.get_ident() not in gate.calls
    with qtbot.waitSignal(win.located, timeout=20000) as applied:
        gate.release()
    timer.stop()
    assert applied.args[0].by_content == 3
    assert win.document.located == {sid: str(folder / f"s{i}.jpg") for i, sid in enumerate(ids)}
    assert win.statusBar().currentMessage().startswith("Found 3 of 3 sheet(s)")
    assert not win.is_locating() and not win.locate_cancel.isVisibleTo(win)
    win.shutdown(10000)


def test_cancelling_a_search_leaves_the_sheets_as_they_were(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, other = tmp_path / "first", tmp_path / "other"
    ids = [_sheet(first / f"s{i}.jpg", 50 + 30 * i) for i in range(2)]
    for i in range(2):  # the same sheets in another folder: a search there would move them
        (other / f"copy{i}.jpg").parent.mkdir(exist_ok=True)
        (other / f"copy{i}.jpg").write_bytes((first / f"s{i}.jpg").read_bytes())
    log_dir = _legacy_log(tmp_path, ids)
    win = _opened(qtbot, tmp_path, log_dir)
    with qtbot.waitSignal(win.located, timeout=20000):
        assert win.locate_images(first)
    located = dict(win.document.located)
    assert len(located) == 2
    remembered = win.settings.value(f"locate/{(log_dir / 'raw.jsonl').resolve()}")
    gate = _Gate(monkeypatch)
    applied: list[object] = []
    win.located.connect(applied.append)
    assert win.locate_images(other)
    locator = win.locator
    assert locator is not None and gate.entered.wait(10)
    qtbot.mouseClick(win.locate_cancel, Qt.MouseButton.LeftButton)  # the status bar's button
    assert not win.is_locating() and "cancelled" in win.statusBar().currentMessage()
    with qtbot.waitSignal(locator.finished, timeout=10000):
        gate.release()  # the hash under way ends; the search stops before the next file
    qtbot.wait(100)  # its `done`, queued to the GUI thread, is ignored (and it is deleted)
    assert len(gate.calls) == 1  # no second file was hashed
    assert applied == [] and win.document.located == located
    assert win.settings.value(f"locate/{(log_dir / 'raw.jsonl').resolve()}") == remembered
    win.shutdown(10000)


@pytest.mark.slow
def test_window_locates_a_legacy_logs_sheets_and_remembers_the_folder(
    qtbot, tmp_path: Path
) -> None:
    """The original scripts' raw.jsonl names each sheet by its hash and records no path:
    the window said "No image path is recorded". Located, the sheet shows; reopened, the
    log finds its sheets in the remembered folder."""
    from herbdesk.ui.mainwindow import MainWindow

    folder = tmp_path / "sheets"
    ids = [_sheet(folder / f"s{i}.jpg", 50 + 30 * i) for i in range(2)]
    log_dir = tmp_path / "published"
    log_dir.mkdir()
    lines = [
        {
            "image": f"{sid}.jpg",
            "model": "qwen/qwen2.5-vl-72b-instruct:free",
            "timestamp": f"2025-03-14T09:0{i}:00",
            "dwc": {"scientificName": {"value": name, "confidence": 0.9}},
        }
        for i, (sid, name) in enumerate(
            zip(ids, ["Malva neglecta Wallr.", "Poa annua L."], strict=True)
        )
    ]
    (log_dir / "raw.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    ini = tmp_path / "settings.ini"

    win = MainWindow(QSettings(str(ini), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    assert win.open_path(log_dir)
    qtbot.waitUntil(lambda: not win.is_loading(), timeout=20000)
    win._show_detail(0)
    assert "No image path" in win.detail.placeholder.text()
    with qtbot.waitSignal(win.located, timeout=20000) as applied:
        assert win.locate_images(folder)
    found = applied.args[0]
    assert len(found.paths) == 2 and found.by_content == 2
    assert not win.is_locating()
    assert win.detail.wait_for_image(10000)
    assert win.detail.image_view.has_image()
    win.shutdown(10000)

    again = MainWindow(QSettings(str(ini), QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    assert again.open_path(log_dir)
    qtbot.waitUntil(lambda: not again.is_loading(), timeout=20000)
    qtbot.waitUntil(lambda: set(again.document.located) == set(ids), timeout=20000)
    again._show_detail(1)
    assert again.detail.wait_for_image(10000) and again.detail.image_view.has_image()
    again.shutdown(10000)
