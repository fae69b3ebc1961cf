"""Locate images…: the sheets of an opened log found again in a folder, by file name or by
content hash (herbdesk/extraction/locate.py, MainWindow.locate_images)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QSettings

from herbdesk.extraction.locate import locate_images


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
    found = win.locate_images(folder)
    assert found is not None and len(found.paths) == 2 and found.by_content == 2
    assert win.detail.wait_for_image(10000)
    assert win.detail.image_view.has_image()
    win.shutdown(10000)

    again = MainWindow(QSettings(str(ini), QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    assert again.open_path(log_dir)
    qtbot.waitUntil(lambda: not again.is_loading(), timeout=20000)
    assert set(again.document.located) == set(ids)
    again._show_detail(1)
    assert again.detail.wait_for_image(10000) and again.detail.image_view.has_image()
    again.shutdown(10000)
