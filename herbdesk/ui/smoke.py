"""The Qt half of `herbdesk --smoke-test`: drive the real window through one offline run.

Everything goes through the paths a user's click takes (the setup form, MainWindow.start_run,
the worker thread, the document timer, open_path), so a bundle missing a plugin, a model or
a hidden import fails here rather than on a user's desk. The checks: herbdesk.ui.smoke_checks.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEventLoop, QSettings, QSize
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from herbdesk.common.assets import sample_specimens_dir
from herbdesk.extraction.images import scan_images
from herbdesk.ui.icons import app_icon
from herbdesk.ui.mainwindow import MainWindow
from herbdesk.ui.qtnoise import quiet_library_noise
from herbdesk.ui.smoke_checks import SmokeFailure, SmokeRun

SCREENSHOT_SIZE = QSize(1440, 900)


def _wait_until(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Process Qt events (worker signals, the refresh timer) until cond() or the deadline."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise SmokeFailure(f"timed out after {timeout_s:.0f}s waiting for {what}")
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)


def _colours(img: QImage, grid: int = 64) -> int:
    """Distinct colours on a grid of samples: a blank or black grab has one or two."""
    seen: set[int] = set()
    for gy in range(grid):
        for gx in range(grid):
            seen.add(img.pixel(gx * img.width() // grid, gy * img.height() // grid))
    return len(seen)


def _loading(win: MainWindow) -> bool:
    is_loading = getattr(win, "is_loading", None)  # logs may load in a background thread
    return bool(is_loading()) if callable(is_loading) else False


def run_in_window(workdir: Path, timeout_s: float) -> SmokeRun:
    """Run the bundled sample sheets with the OCR engine in a MainWindow, then reopen the log."""
    quiet_library_noise()  # as the app does: Qt's hints about the platform are not findings
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0]])
    app.setApplicationName("herbdesk")
    app.setWindowIcon(app_icon())
    samples = sample_specimens_dir()
    images = len(scan_images([samples]))
    if not images:
        raise SmokeFailure(f"no sample images in {samples}")
    # A throwaway settings file: the smoke test must not read or change the user's layout.
    settings = QSettings(str(workdir / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    try:
        win.resize(SCREENSHOT_SIZE)
        win.show()
        form = win.setup
        form.images.setText(str(samples))
        form.engine.setCurrentIndex(form.engine.findData("ocr"))
        form.out_dir.setText(str(workdir / "runs"))
        if not win.start_run():
            raise SmokeFailure(f"the run did not start: {form.message.text()}")
        worker = win.worker
        run_dir = Path(worker.run_dir) if worker is not None else None
        if run_dir is None:
            raise SmokeFailure("start_run() returned True but no worker exists")
        _wait_until(lambda: win.worker is None, timeout_s, "the run to finish")
        win.document.flush()
        live = win.document.state
        live_summary, live_counts = live.summary(), dict(live.type_counts)
        table_rows = win.table_model.rowCount()
        banners = list(win.banners.texts())

        shot = workdir / "dashboard.png"
        if not win.save_screenshot(shot, SCREENSHOT_SIZE):
            raise SmokeFailure(f"cannot write the dashboard screenshot {shot}")
        img = QImage(str(shot))
        if img.isNull():
            raise SmokeFailure(f"the dashboard screenshot {shot} does not load")

        if not win.open_path(run_dir):
            raise SmokeFailure(f"cannot open the run's log back from {run_dir}")
        _wait_until(lambda: not _loading(win), timeout_s, "the log to load")
        win.document.flush()
        reopened = win.document.state
        return SmokeRun(
            run_dir=run_dir,
            images=images,
            live_summary=live_summary,
            live_type_counts=live_counts,
            reopened_summary=reopened.summary(),
            reopened_type_counts=dict(reopened.type_counts),
            table_rows=table_rows,
            screenshot=shot,
            screenshot_size=(img.width(), img.height()),
            screenshot_colours=_colours(img),
            banners=banners,
        )
    finally:
        win.shutdown(30000)
        win.close()
        win.deleteLater()
        QApplication.processEvents()
