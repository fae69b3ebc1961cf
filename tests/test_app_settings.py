"""What the app remembers between launches: only what the user chose in the window.

Command-line flags apply to one session (a test's `--out` once became the next real run's
output folder); a key the OS keyring could not keep is said so where the user looks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakeapi import FakeApi

pytest.importorskip("PySide6")

from PySide6.QtCore import QSettings

from herbdesk.ui.app import _parse, apply_arguments
from herbdesk.ui.mainwindow import MainWindow


def _launch(qtbot, ini: Path, *argv: str) -> MainWindow:  # type: ignore[no-untyped-def]
    win = MainWindow(QSettings(str(ini), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    apply_arguments(win, _parse(list(argv)))
    win.show()
    return win


def _saved(ini: Path) -> dict[str, object]:
    s = QSettings(str(ini), QSettings.Format.IniFormat)
    return {k: s.value(k) for k in s.allKeys()}


def test_command_line_values_are_not_saved_as_defaults(qtbot, tmp_path: Path, many_images) -> None:
    ini = tmp_path / "settings.ini"
    chosen = tmp_path / "my-runs"
    win = _launch(qtbot, ini)
    win.setup.out_dir.setText(str(chosen))  # as the folder picker does
    win.close()
    assert _saved(ini)["setup/out_dir"] == str(chosen)

    flagged, images = tmp_path / "pytest-temp-runs", many_images(1)
    win = _launch(
        qtbot, ini, "--out", str(flagged), "--images", str(images), "--engine", "openrouter",
        "--stale-minutes", "0.5",
    )  # fmt: skip
    s = win.setup
    assert s.out_dir.text() == str(flagged) and s.images.text() == str(images)  # used now
    assert s.engine.currentData() == "openrouter" and win.stale_after_s == 30
    win.close()
    saved = _saved(ini)
    assert saved["setup/out_dir"] == str(chosen), saved
    assert str(flagged) not in str(saved) and str(images) not in str(saved)
    assert saved["setup/engine"] == "ocr" and "stale_after_s" not in saved

    win = _launch(qtbot, ini, "--out", str(flagged))
    assert win.setup.out_dir.text() == str(flagged)
    win.setup.out_dir.selectAll()
    qtbot.keyClicks(win.setup.out_dir, str(tmp_path / "typed"))  # the user edits the field
    win.close()
    assert _saved(ini)["setup/out_dir"] == str(tmp_path / "typed")
    win = _launch(qtbot, ini)
    assert win.setup.out_dir.text() == str(tmp_path / "typed")
    win.close()


@pytest.fixture()
def no_keyring(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """keyring's fail backend, chosen as a system without any keyring would get it."""
    import keyring
    import keyring.core

    before = keyring.get_keyring()
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    keyring.core.init_backend()
    assert type(keyring.get_keyring()).__module__ == "keyring.backends.fail"
    yield
    keyring.set_keyring(before)


def test_a_key_the_keyring_cannot_keep_is_said_so_by_the_key_field(
    qtbot, tmp_path: Path, many_images, no_keyring
) -> None:
    from herbdesk.common.apikeys import get_api_key

    win = _launch(qtbot, tmp_path / "settings.ini", "--out", str(tmp_path / "runs"))
    s = win.setup
    with FakeApi() as api:
        s.images.setText(str(many_images(2)))
        s.engine.setCurrentIndex(s.engine.findData("openrouter"))
        s.base_url.setText(api.base_url)
        s.model.setText("test/vision-model")
        s.api_key.setText("sk-test-good")
        s.save_key.setChecked(True)
        assert win.start_run()  # the run goes on with the key it was given
        qtbot.waitUntil(lambda: win.worker is None, timeout=60_000)
    assert win.document.state.status == "completed"
    # start_run cleared the message line; the key field's status stays
    assert s.message.text() == ""
    assert not s.key_status.isHidden() and "Not remembered" in s.key_status.text()
    assert "no OS keyring" in s.key_status.text()
    assert get_api_key(api.base_url) is None  # indeed nothing was kept for the next launch
    qtbot.keyClicks(s.api_key, "x")  # a new key: the old status no longer applies
    assert s.key_status.isHidden()
    win.close()
