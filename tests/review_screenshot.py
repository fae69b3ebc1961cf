"""Render docs/images/review-1440x900.png: the review mode over a real run of the sample
sheets against the fake API, part-way through a review done by keys.

    HOME=$(mktemp -d) XDG_CONFIG_HOME=$HOME/.config QT_QPA_PLATFORM=offscreen \
        PYTHONPATH=$PWD python tests/review_screenshot.py docs/images/review-1440x900.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fakeapi import FakeApi
from helpers import api_config, run
from PIL import Image

from herbdesk.monitor.validation import ValidationConfig

SPECIMENS = Path(__file__).parents[1] / "resources" / "specimens"
LENIENT = ValidationConfig(
    checkpoint_threshold=0.0,
    warning_threshold=0.0,
    quality_threshold=0.0,
    degraded_halt=False,
    max_consecutive_failures=0,
)


def make_run(tmp: Path) -> Path:
    """60 sheets: the 5 samples, each saved at 12 JPEG qualities (distinct bytes, so
    distinct specimens and distinct records from the fake model); every 7th reply junk."""
    images = tmp / "images"
    images.mkdir()
    for i, q in enumerate(range(95, 71, -2)):
        for p in sorted(SPECIMENS.glob("*.jpg")):
            Image.open(p).save(images / f"{p.stem}_{i:02d}.jpg", quality=q)
    script = [("placeholders" if i % 14 == 3 else "term_names") if i % 7 == 3 else "good"
              for i in range(60)]  # fmt: skip
    with FakeApi(script=script) as api:
        outcome, _ = run(
            api_config(images, tmp / "runs", api.base_url, concurrency=1, validation=LENIENT)
        )
    return outcome.run_dir


def main(out: Path) -> None:
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from herbdesk.ui.mainwindow import MainWindow

    tmp = Path(tempfile.mkdtemp(prefix="herbdesk-shot-"))
    run_dir = make_run(tmp)
    app = QApplication.instance() or QApplication([])
    win = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    win.resize(1440, 900)
    win.show()
    win.open_path(run_dir)
    while win.is_loading():
        app.processEvents()
    win.open_review()
    review = win.review_window
    review.resize(1440, 900)
    # a review by keys: 13 records (one date corrected, one habitat rejected), then the
    # 14th part-way. Terms: scientificName, catalogNumber, recordedBy, recordNumber,
    # eventDate, country, stateProvince, locality, then the record's others (habitat).
    for i in range(13):
        keys = {4: "AAAACAAAA", 9: "AAAAAAAAR"}.get(i, "AAAAAAAAA")
        for k in keys:
            if k == "C":
                QTest.keyClick(review, Qt.Key.Key_C)
                review.edit.setText("1952-07-14")
                QTest.keyClick(review.edit, Qt.Key.Key_Return)
            else:
                QTest.keyClick(review, getattr(Qt.Key, f"Key_{k}"))
        QTest.keyClick(review, Qt.Key.Key_N)
    for k in "AAR":
        QTest.keyClick(review, getattr(Qt.Key, f"Key_{k}"))
    for _ in range(20):
        app.processEvents()
    review.grab().save(str(out))
    review.close()
    win.shutdown(10000)
    print(f"wrote {out} ({run_dir})")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
