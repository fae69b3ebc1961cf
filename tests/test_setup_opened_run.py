"""The setup panel of an opened or tailed run shows that run's own configuration, read-only,
and goes back to the app's editable settings for a new run (pytest-qt, offscreen)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakeapi import FakeApi
from helpers import api_config, run

pytest.importorskip("PySide6")

from PySide6.QtCore import QSettings

from herbdesk.monitor.validation import ValidationConfig
from herbdesk.ui.mainwindow import MainWindow
from herbdesk.ui.setup import MAX_VALUE_CHARS, RunConfigView, format_config_value


@pytest.fixture()
def window(qtbot, tmp_path: Path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.setup.out_dir.setText(str(tmp_path / "app-runs"))
    yield win
    win.shutdown(30000)


@pytest.fixture()
def past_run(tmp_path: Path, many_images) -> Path:
    """A finished API run whose settings differ from the app's defaults everywhere."""
    validation = ValidationConfig(checkpoint_after=3, checkpoint_threshold=0.6)
    with FakeApi() as api:
        cfg = api_config(
            many_images(4),
            tmp_path / "past",
            api.base_url,
            concurrency=3,
            requests_per_minute=600,
            run_id="past-run",
            validation=validation,
        )
        outcome, _ = run(cfg)
    assert outcome.status == "completed"
    return outcome.run_dir


def _open(qtbot, win: MainWindow, path: Path) -> None:
    assert win.open_path(path)
    qtbot.waitUntil(lambda: not win.is_loading(), timeout=20000)
    win.document.flush()


def _form_shown(win: MainWindow) -> bool:
    return not win.setup.showing_run_config and win.setup.run_view.isHidden()


def test_opened_run_shows_its_own_config_read_only(
    qtbot, window: MainWindow, past_run: Path
) -> None:
    setup = window.setup
    assert setup.engine.currentData() == "ocr" and setup.concurrency.value() == 1
    assert _form_shown(window)
    _open(qtbot, window, past_run)
    assert setup.showing_run_config and not setup.run_view.isHidden()
    view = setup.run_view
    assert "Opened run past-run" in view.header.text() and "Read-only" in view.header.text()
    assert "opened run" in window.setup_dock.windowTitle()
    assert view.text_of("Engine").startswith("Vision LLM")
    assert view.text_of("Model") == "test/vision-model"
    assert view.text_of("Base URL").startswith("http://127.0.0.1:")
    assert view.text_of("Concurrency") == "3"
    assert view.text_of("Request pace") == "600 requests a minute"
    assert view.text_of("Checkpoint after") == "3"
    assert view.text_of("Halt below") == "0.6"
    assert view.text_of("Runs folder") == str(past_run.parent)
    # nothing on the run's page can be edited; the app's own settings are untouched
    from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QLineEdit

    assert not view.findChildren(QLineEdit) and not view.findChildren(QComboBox)
    assert not view.findChildren(QAbstractSpinBox)
    assert setup.engine.currentData() == "ocr" and setup.concurrency.value() == 1

    # a replay that seeks back to the start keeps showing the same run's config
    window.replay.seek(0)
    assert window.document.state.events == 0
    assert setup.showing_run_config and view.text_of("Concurrency") == "3"

    # Start while the opened run is shown: back to the settings first, nothing starts
    assert setup.start_btn.text() == "New run…"
    setup.start_btn.click()
    assert _form_shown(window) and window.worker is None
    assert setup.start_btn.text() == "Start" and window.setup_dock.windowTitle() == "Run setup"

    # "Back to my settings" does the same
    _open(qtbot, window, past_run)
    assert setup.showing_run_config
    view.back_btn.click()
    assert _form_shown(window)


def test_starting_a_run_returns_to_the_editable_settings(
    qtbot, window: MainWindow, past_run: Path, many_images
) -> None:
    setup = window.setup
    _open(qtbot, window, past_run)
    setup.images.setText("")
    assert not window.start_run()  # a start that cannot go: the form is where to fix it
    assert _form_shown(window) and "image" in setup.message.text()

    _open(qtbot, window, past_run)
    with FakeApi() as api:
        setup.images.setText(str(many_images(2, "new")))
        setup.engine.setCurrentIndex(setup.engine.findData("openrouter"))
        setup.base_url.setText(api.base_url)
        setup.model.setText("test/vision-model")
        setup.api_key.setText("sk-test-good")
        setup.concurrency.setValue(2)
        assert window.start_run()
        assert _form_shown(window)
        qtbot.waitUntil(lambda: window.worker is None, timeout=60000)
    window.document.flush()
    assert window.document.state.succeeded == 2
    assert _form_shown(window)  # a live run's config is the form's: it stays


def test_tailed_run_shows_its_config_once_the_log_tells_it(
    qtbot, window: MainWindow, past_run: Path, tmp_path: Path
) -> None:
    setup = window.setup
    _open(qtbot, window, past_run)  # from an opened run straight to a tailed one
    assert "opened run" in window.setup_dock.windowTitle()
    growing = tmp_path / "growing"
    assert window.tail(str(growing))  # no log yet: the panel says so instead of guessing
    assert setup.showing_run_config
    view = setup.run_view
    assert "Followed run" in view.header.text() and not view.note.isHidden()
    assert "no configuration yet" in view.note.text() and view.text_of("Engine") == ""
    growing.mkdir()
    (growing / "events.jsonl").write_bytes((past_run / "events.jsonl").read_bytes())
    qtbot.waitUntil(lambda: view.text_of("Concurrency") == "3", timeout=20000)
    assert view.note.isHidden() and "past-run" in view.header.text()
    assert "followed run" in window.setup_dock.windowTitle()
    window.stop_tail()


def test_log_without_a_config_says_so(qtbot, window: MainWindow) -> None:
    _open(qtbot, window, Path(__file__).parent / "fixtures" / "legacy_raw_flat.jsonl")
    view = window.setup.run_view
    assert window.setup.showing_run_config
    assert not view.note.isHidden() and "no configuration" in view.note.text()


def test_config_from_a_log_is_shown_as_bounded_plain_text(qtbot) -> None:
    view = RunConfigView()
    qtbot.addWidget(view)
    hostile = {
        "engine": "<b>ocr</b>",
        "model": "m" * 5000,
        "inputs": ["/a", "/b"],
        "validation": "not a table",
        "requests_per_minute": None,
        "extra_key": {"nested": [1, 2.5]},
    }
    view.show_config(hostile, "<i>r</i>")
    assert view.text_of("Engine") == "<b>ocr</b>"  # shown as typed, never rendered as markup
    assert len(view.text_of("Model")) == MAX_VALUE_CHARS
    assert view.text_of("Images") == "/a\n/b"
    assert view.text_of("Request pace") == "unpaced"
    assert view.text_of("Checkpoint after") == format_config_value(None)
    assert not view.other_box.isHidden()
    assert view.other_form.rowCount() == 1


def test_keys_a_log_does_not_record_are_not_shown_as_defaults(qtbot) -> None:
    """A log that records only some settings: the others read "—", not the values a missing
    key would default to (found opening a log that records only its engine)."""
    view = RunConfigView()
    qtbot.addWidget(view)
    view.show_config({"engine": "openrouter", "limit": None}, "r")
    assert view.text_of("Limit") == "all images"  # recorded as null: no limit
    for label in ("Request pace", "Prompt file", "Checkpoint after", "Model"):
        assert view.text_of(label) == "—", label


def test_other_settings_are_one_row_each_and_never_cut(qtbot) -> None:
    """A run's quality table showed as one line cut at the panel's edge ("require=—,
    catalog_pat"). Each entry is a row now; a value too long for the panel is elided, with
    all of it in the tooltip."""
    from herbdesk.ui.elided import ElidedLabel

    gold = "/home/curator/projects/herbarium-2026/known-answers/gold-sheets-reviewed.csv"
    config = {
        "engine": "ocr",
        "validation": {"checkpoint_after": 5, "gold_threshold": 0.7},
        "quality": {"require": None, "catalog_pattern": r"^[A-Z]{2,4}\d{6}$", "gold": gold},
    }
    view = RunConfigView()
    qtbot.addWidget(view)
    view.resize(300, 900)
    view.show()
    qtbot.waitExposed(view)
    view.show_config(config, "r")
    qtbot.wait(10)
    labels = view.other_box.findChildren(ElidedLabel)
    texts = [label.text() for label in labels]
    assert texts[:2] == ["quality.require", "—"] and "quality.catalog_pattern" in texts
    assert "validation.gold_threshold" in texts and "0.7" in texts
    assert view.other_form.rowCount() == 4
    for label in labels:
        room = label.contentsRect().width()
        assert room > 0
        for line in label.shown_lines():
            assert label.fontMetrics().horizontalAdvance(line) <= room, line
        assert label.toolTip() == label.text()
    path = next(label for label in labels if label.text() == gold)
    assert path.is_elided() and path.shown_lines()[0].endswith("reviewed.csv")
