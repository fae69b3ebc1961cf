"""The window's review mode (View → Review…): verdicts by keys appended to events.jsonl, the
estimate shown and updated, a reopened log's verdicts shown again, a log another process
writes left alone, a live run's verdicts through its own bus (pytest-qt, offscreen)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pytestqt")

from fakeapi import FakeApi
from helpers import api_config, events_of, run
from PySide6.QtCore import QSettings, Qt

from herbdesk.events.types import EventType
from herbdesk.monitor.validation import ValidationConfig
from herbdesk.quality import review as rv
from herbdesk.ui.mainwindow import MainWindow
from herbdesk.ui.review import ReviewWindow

LENIENT = ValidationConfig(
    checkpoint_threshold=0.0,
    warning_threshold=0.0,
    quality_threshold=0.0,
    degraded_halt=False,
    max_consecutive_failures=0,
)


@pytest.fixture()
def window(qtbot, tmp_path: Path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.setup.out_dir.setText(str(tmp_path / "runs"))
    yield win
    if win.review_window is not None:
        win.review_window.close()
    win.shutdown(30000)


@pytest.fixture()
def sheets_run(tmp_path: Path, sample_dir: Path) -> Path:
    """The five real sample sheets, five different records (one junk) from the fake API."""
    script = ["good", "good", "placeholders", "good", "good"]
    with FakeApi(script=script) as api:
        outcome, _ = run(
            api_config(sample_dir, tmp_path / "runs", api.base_url, concurrency=1,
                       validation=LENIENT)
        )  # fmt: skip
    assert outcome.status == "completed", outcome.message
    return outcome.run_dir


def _open_review(qtbot, win: MainWindow, path: Path) -> ReviewWindow:
    assert win.open_path(path)
    qtbot.waitUntil(lambda: not win.is_loading(), timeout=20000)
    (view,) = [m for m in win.menuBar().actions() if m.text() == "&View"]
    (action,) = [a for a in view.menu().actions() if a.text() == "&Review…"]
    assert action.shortcut().toString() == "Ctrl+Shift+R"
    action.trigger()
    return _ready(qtbot, win)


def _ready(qtbot, win: MainWindow) -> ReviewWindow:
    """The review window, once its queue was prepared off the GUI thread."""
    qtbot.waitUntil(lambda: win.review_window is not None, timeout=20000)
    review = win.review_window
    assert isinstance(review, ReviewWindow) and review.isVisible()
    assert not win.is_preparing_review()
    return review


def _review_events(run_dir: Path) -> list:
    return [e for e in events_of(run_dir) if e.event_type.startswith("review.")]


def _cell(review: ReviewWindow, row: int, col: int) -> str:
    item = review.table.item(row, col)
    return item.text() if item is not None else ""


def _estimate_line(run_dir: Path, population: int, term: str) -> str:
    """The estimate table's row of a term as it must read, from the log alone (not from the
    window)."""
    ledger = rv.read_verdicts(run_dir / "events.jsonl")
    (est,) = [e for e in rv.estimate(ledger, population) if e.term == term]
    return " | ".join(est.cells())


def test_accept_correct_reject_by_keys_append_events_and_update_the_estimate(
    qtbot, window: MainWindow, sheets_run: Path
) -> None:
    review = _open_review(qtbot, window, sheets_run)
    session = review.session
    assert session.population == 5 and len(session.records) == 5
    assert session.read_only_reason == ""
    assert "No verdict on the random sample yet" in review.estimate_label.text()
    assert review.image_view.has_image()  # the real sheet, turned upright, label zoomed
    rec = review.record()
    assert rec is not None and rec.sample == rv.SAMPLE_RANDOM  # 5 records, sample 40: all
    terms = rec.terms()
    assert terms[:2] == ["scientificName", "catalogNumber"] and review.term() == terms[0]
    assert _cell(review, 0, 1) == rec.values.get("scientificName", "")
    before = events_of(sheets_run)

    qtbot.keyClick(review, Qt.Key.Key_A)  # accept scientificName
    qtbot.keyClick(review, Qt.Key.Key_C)  # correct catalogNumber
    assert review.edit.hasFocus() or review.edit.isEnabled()
    review.edit.setText("")
    qtbot.keyClicks(review.edit, "CAN 10442")
    qtbot.keyClick(review.edit, Qt.Key.Key_Return)
    qtbot.keyClick(review, Qt.Key.Key_R)  # reject recordedBy

    got = _review_events(sheets_run)
    assert [e.event_type for e in got] == [
        EventType.REVIEW_ACCEPTED, EventType.REVIEW_CORRECTED, EventType.REVIEW_REJECTED,
    ]  # fmt: skip
    assert [e.seq for e in got] == [before[-1].seq + 1, before[-1].seq + 2, before[-1].seq + 3]
    assert {e.specimen_id for e in got} == {rec.specimen_id}
    assert [e.data["term"] for e in got] == ["scientificName", "catalogNumber", "recordedBy"]
    assert got[0].data["value"] == got[0].data["extracted"] == rec.values["scientificName"]
    assert got[1].data["value"] == "CAN 10442"
    assert got[1].data["extracted"] == rec.values.get("catalogNumber", "")
    assert got[2].data["value"] == "" and all(e.data["sample"] == "random" for e in got)
    assert events_of(sheets_run)[: len(before)] == before
    # the table and the estimate follow
    assert _cell(review, 0, 2) == "✓ accepted" and _cell(review, 1, 3) == "CAN 10442"
    assert _cell(review, 2, 2) == "✗ rejected"
    text = review.estimate_text()
    assert _estimate_line(sheets_run, 5, "scientificName") in text.splitlines()
    assert "scientificName | 100 % | 21–100 % | 1 | 0 of 4 (0–3)" in text
    assert "catalogNumber | 0 % | 0–79 % | 1 | 4 of 4 (1–4)" in text
    assert "Random audit sample: 1 of 5 record(s) reviewed" in text

    # next record: a verdict there changes the estimate's n
    qtbot.keyClick(review, Qt.Key.Key_N)
    second = review.record()
    assert second is not None and second.specimen_id != rec.specimen_id
    assert review.term() == "scientificName" and _cell(review, 0, 2) == ""
    qtbot.keyClick(review, Qt.Key.Key_A)
    assert "scientificName | 100 % | 34–100 % | 2 |" in review.estimate_text()
    # back with ←: the first record's verdicts are there
    qtbot.keyClick(review, Qt.Key.Key_Left)
    assert review.record() is rec and _cell(review, 1, 2) == "✎ corrected"
    qtbot.keyClick(review, Qt.Key.Key_Right)
    assert review.record() is second
    # Esc leaves a correction unrecorded
    qtbot.keyClick(review, Qt.Key.Key_C)
    qtbot.keyClicks(review.edit, "ignored")
    qtbot.keyClick(review.edit, Qt.Key.Key_Escape)
    assert len(_review_events(sheets_run)) == 4 and not review.edit.isEnabled()


def test_a_reopened_log_replays_its_verdicts(
    qtbot, window: MainWindow, sheets_run: Path, tmp_path: Path
) -> None:
    review = _open_review(qtbot, window, sheets_run)
    first = review.record()
    assert first is not None
    qtbot.keyClick(review, Qt.Key.Key_A)
    qtbot.keyClick(review, Qt.Key.Key_C)
    review.edit.setText("Agropyron cristatum (L.) Gaertn.")
    qtbot.keyClick(review.edit, Qt.Key.Key_Return)
    estimate = review.estimate_text()
    review.close()  # lets go of the log

    other = MainWindow(QSettings(str(tmp_path / "other.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(other)
    try:
        again = _open_review(qtbot, other, sheets_run / "events.jsonl")
        assert again.session.ledger.events == 2
        assert again.estimate_text() == estimate
        # the reviewed record was not finished: the review opens on it, verdicts shown
        assert again.record() is not None and again.record().specimen_id == first.specimen_id
        assert _cell(again, 0, 2) == "✓ accepted" and _cell(again, 1, 2) == "✎ corrected"
        assert _cell(again, 1, 3) == "Agropyron cristatum (L.) Gaertn."
        assert again.term() == again.record().terms()[2]  # the first term without a verdict
        again.close()
    finally:
        other.shutdown(10000)


def test_the_sheet_keeps_the_height_and_esc_closes_the_review(
    qtbot, window: MainWindow, sheets_run: Path, tmp_path: Path
) -> None:
    """At 1280x720 the estimate (a line per term) took a third of the height from the sheet;
    "Recorded: … accepted" stayed on the next record; nothing said how to close the window."""
    from herbdesk.ui.review import ESTIMATE_ROWS_SHOWN

    review = _open_review(qtbot, window, sheets_run)
    review.resize(1280, 720)
    qtbot.waitExposed(review)
    table = review.estimate_table
    rec = review.record()
    assert rec is not None
    for _ in rec.terms():  # a verdict on every term: every term has an estimate
        qtbot.keyClick(review, Qt.Key.Key_A)
    qtbot.wait(20)
    assert table.rowCount() == len(rec.terms()) > ESTIMATE_ROWS_SHOWN
    assert table.isVisible() and table.height() < 720 // 4  # more terms scroll in it
    assert table.verticalScrollBar().maximum() > 0
    assert review.image_stack.height() > 0.8 * review.height(), review.image_stack.height()
    assert review.status.text().startswith("Recorded:")
    qtbot.keyClick(review, Qt.Key.Key_N)
    assert review.status.text() == ""  # said of the record left behind
    # the way out is on screen, and Esc takes it (the first Esc cancels a correction)
    assert review.close_btn.isVisible() and "Esc" in review.close_btn.text()
    assert "Esc close" in review.keys_label.text()
    qtbot.keyClick(review, Qt.Key.Key_C)
    qtbot.keyClick(review.edit, Qt.Key.Key_Escape)
    assert review.isVisible() and not review.edit.isEnabled()
    qtbot.keyClick(review, Qt.Key.Key_Escape)
    assert not review.isVisible()
    # it let go of the log: another window reviews it (and Ctrl+W closes that one)
    other = MainWindow(QSettings(str(tmp_path / "other.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(other)
    try:
        again = _open_review(qtbot, other, sheets_run)
        assert again.session.read_only_reason == ""
        qtbot.keyClick(again, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
        assert not again.isVisible()
    finally:
        other.shutdown(10000)


def test_a_log_another_process_writes_is_read_only(
    qtbot, window: MainWindow, sheets_run: Path
) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from herbdesk.extraction.runlock import RunLock; "
            f"lock = RunLock.acquire({str(sheets_run)!r}); print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        review = _open_review(qtbot, window, sheets_run)
        assert review.banner.isVisible() or not review.banner.isHidden()
        assert f"pid {holder.pid}" in review.banner.text()
        before = (sheets_run / "events.jsonl").read_bytes()
        qtbot.keyClick(review, Qt.Key.Key_A)
        assert (sheets_run / "events.jsonl").read_bytes() == before
        assert review.status.text().startswith("Not recorded")
        assert _cell(review, 0, 2) == ""
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)


def test_a_live_run_in_the_window_takes_verdicts_through_its_bus(
    qtbot, window: MainWindow, many_images
) -> None:
    images = many_images(8)
    with FakeApi(script=["good", "good", *["sleep:0.5"] * 6]) as api:
        s = window.setup
        s.images.setText(str(images))
        s.engine.setCurrentIndex(s.engine.findData("openrouter"))
        s.base_url.setText(api.base_url)
        s.model.setText("test/vision-model")
        s.api_key.setText("sk-test-good")
        s.concurrency.setValue(1)
        assert window.start_run()
        run_dir = window.worker.run_dir
        qtbot.waitUntil(lambda: window.document.state.succeeded >= 2, timeout=30000)
        assert window.open_review()
        review = _ready(qtbot, window)
        assert review.session.read_only_reason == ""
        assert review.session.population >= 2
        qtbot.keyClick(review, Qt.Key.Key_A)
        qtbot.keyClick(review, Qt.Key.Key_R)
        assert window.worker is not None  # still running: these went through its bus
        qtbot.waitUntil(lambda: window.worker is None, timeout=60000)
    evs = events_of(run_dir)
    assert [e.seq for e in evs] == list(range(1, len(evs) + 1))
    got = [e for e in evs if e.event_type.startswith("review.")]
    assert [e.event_type for e in got] == [EventType.REVIEW_ACCEPTED, EventType.REVIEW_REJECTED]
    terminal = next(e for e in evs if e.event_type == EventType.EXTRACTION_COMPLETED)
    assert got[-1].seq < terminal.seq  # among the run's own events
    # the run has ended: the next verdict is appended by the window itself
    qtbot.keyClick(review, Qt.Key.Key_A)
    after = _review_events(run_dir)
    assert len(after) == 3 and after[-1].seq == events_of(run_dir)[-1].seq
    assert not review.status.text().startswith("Not recorded"), review.status.text()


class _Gate:
    """Holds the review's read of raw.jsonl until `release()` (what a million records do
    to it); records the thread the read ran on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from herbdesk.export import reviewsession

        self.entered = threading.Event()
        self.go = threading.Event()
        self.threads: list[int] = []
        real = reviewsession.newest_successes

        def held(*args: Any) -> Any:
            self.threads.append(threading.get_ident())
            self.entered.set()
            assert self.go.wait(30)
            return real(*args)

        monkeypatch.setattr(reviewsession, "newest_successes", held)

    def release(self) -> None:
        self.go.set()


def test_the_review_queue_is_prepared_off_the_gui_thread(
    qtbot, window: MainWindow, sheets_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtCore import QTimer

    assert window.open_path(sheets_run)
    qtbot.waitUntil(lambda: not window.is_loading(), timeout=20000)
    gate = _Gate(monkeypatch)
    ticks: list[int] = []
    timer = QTimer(window)
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    assert window.open_review()  # returns at once: the queue is built on a thread
    assert gate.entered.wait(10)
    before = len(ticks)
    qtbot.wait(300)  # raw.jsonl's read is held meanwhile
    assert len(ticks) - before >= 10, "the GUI thread did not process its events"
    assert window.review_window is None and window.is_preparing_review()
    assert window.statusBar().currentMessage() == "Preparing the review queue…"
    assert threading.get_ident() not in gate.threads
    assert not window.open_review()  # one at a time: two would contend for the log
    assert "already under way" in window.statusBar().currentMessage()
    gate.release()
    timer.stop()
    review = _ready(qtbot, window)
    assert review.session.population == 5 and len(review.session.records) == 5
    assert review.session.read_only_reason == "" and review.image_view.has_image()
    assert window.statusBar().currentMessage() == "Review: 5 record(s) queued"
    qtbot.keyClick(review, Qt.Key.Key_A)  # it appends: the session prepared holds the log
    assert [e.event_type for e in _review_events(sheets_run)] == [EventType.REVIEW_ACCEPTED]


def test_a_review_closed_while_it_is_prepared_lets_go_of_the_log(
    qtbot, window: MainWindow, sheets_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from herbdesk.export.reviewsession import ReviewSession
    from herbdesk.extraction.reviewlog import LogAppender
    from herbdesk.ui.review import close_review

    made: list[ReviewSession] = []  # held here: letting go of it is not left to the GC
    real_load = ReviewSession.load

    def load(*args: Any, **kw: Any) -> ReviewSession:
        made.append(real_load(*args, **kw))
        return made[-1]

    monkeypatch.setattr(ReviewSession, "load", staticmethod(load))
    assert window.open_path(sheets_run)
    qtbot.waitUntil(lambda: not window.is_loading(), timeout=20000)
    gate = _Gate(monkeypatch)
    assert window.open_review()
    assert gate.entered.wait(10)
    threading.Timer(0.2, gate.release).start()
    close_review(window)  # what the main window's shutdown does: waits, closes the session
    assert not window.is_preparing_review()
    qtbot.wait(100)  # the loader's queued `done` opens nothing
    assert window.review_window is None
    (session,) = made
    assert session.appender is None  # closed
    LogAppender.open(sheets_run).close()  # the run's log is free again
