"""Render docs/images/review-1440x900.png: the review mode over a real offline-OCR run of the
five sample sheets, part-way through a review done by keys, each verdict the one the
transcription of the sheets (truth.json, kept outside the repository) calls for: accept a value
it agrees with, correct one it does not (typing its value); terms it leaves out (stamps such as
the catalogue number, constants such as basisOfRecord) get no verdict.

    HOME=$(mktemp -d) XDG_CONFIG_HOME=$HOME/.config QT_QPA_PLATFORM=offscreen \
        PYTHONPATH=$PWD python tests/review_screenshot.py docs/images/review-1440x900.png \
        ../shared/data/specimens/truth.json [WIDTHxHEIGHT]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from herbdesk.extraction.config import RunConfig
from herbdesk.extraction.engines import EngineSettings
from herbdesk.extraction.pipeline import Pipeline
from herbdesk.monitor.validation import ValidationConfig
from herbdesk.quality.gold import same_value

SPECIMENS = Path(__file__).parents[1] / "resources" / "specimens"


def make_run(tmp: Path) -> Path:
    """The five sample sheets through the offline engine (about a minute on two cores)."""
    config = RunConfig(
        inputs=[SPECIMENS],
        out_dir=tmp / "runs",
        engine=EngineSettings(engine="ocr"),
        concurrency=1,
        validation=ValidationConfig(),
    )
    return Pipeline(config).run().run_dir


def main(out: Path, truth_path: Path, size: tuple[int, int] = (1440, 900)) -> None:
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from herbdesk.ui.mainwindow import MainWindow

    tmp = Path(tempfile.mkdtemp(prefix="herbdesk-shot-"))
    run_dir = make_run(tmp)
    app = QApplication.instance() or QApplication([])
    win = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    win.resize(*size)
    win.show()
    win.open_path(run_dir)
    while win.is_loading():
        app.processEvents()
    win.open_review()
    while win.is_preparing_review():  # the queue is prepared off the GUI thread
        app.processEvents()
    review = win.review_window
    review.resize(*size)
    truth = json.loads(truth_path.read_text())
    # four records reviewed whole, the fifth part-way (three terms): the keys a curator
    # with the transcription beside them would press
    for n in range(5):
        rec = review.record()
        assert rec is not None
        want = truth.get(Path(rec.image).stem, {})
        terms = rec.terms() if n < 4 else rec.terms()[:3]
        for row, term in enumerate(terms):
            review.select_term(row)
            expected = want.get(term)
            if expected is None:
                continue  # the transcription does not say: no verdict
            if same_value(term, str(expected), rec.values.get(term, "")):
                QTest.keyClick(review, Qt.Key.Key_A)
            else:
                QTest.keyClick(review, Qt.Key.Key_C)
                review.edit.setText(str(expected))
                QTest.keyClick(review.edit, Qt.Key.Key_Return)
        if n < 4:
            QTest.keyClick(review, Qt.Key.Key_N)
    for _ in range(20):
        app.processEvents()
    review.grab().save(str(out))
    review.close()
    win.shutdown(10000)
    print(f"wrote {out} ({run_dir})")


if __name__ == "__main__":
    width, height = (sys.argv[3] if len(sys.argv) > 3 else "1440x900").split("x")
    main(Path(sys.argv[1]), Path(sys.argv[2]), (int(width), int(height)))
