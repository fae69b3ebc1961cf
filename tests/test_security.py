"""Security: the API key never reaches a file, a log, the settings store, the terminal or an
exception message, even when the server echoes it back; input images are never touched.

Model replies and log contents shown as plain text in the UI are covered by
tests/test_ui_widgets.py (test_detail_shows_model_text_literally,
test_event_summary_is_plain_one_line_text). The SSH tail's no-shell rule belongs to the
tailer's own tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakeapi import FakeApi
from reliability import snapshot_tree

from herbdesk.cli import main
from herbdesk.extraction.config import RunConfig
from herbdesk.extraction.engines.base import EngineError, EngineSettings, SpecimenInput
from herbdesk.extraction.engines.openrouter import OpenRouterEngine
from herbdesk.extraction.images import specimen_id_of

KEY = "sk-or-v1-" + "5ecret0key1never2leaks3" * 3
FRAGMENTS = (KEY, KEY[-24:], KEY[9:33])  # the key, or a recognisable piece of it
MODEL = "test/vision-model"


def _assert_no_key(text: str | bytes, where: str) -> None:
    blob = text.encode() if isinstance(text, str) else text
    for frag in FRAGMENTS:
        assert frag.encode() not in blob, f"API key leaked into {where}"


def _herbdesk(*args: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENROUTER_API_KEY"}
    env["COLUMNS"] = "200"
    if key:
        env["OPENROUTER_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "herbdesk", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _api_args(api: FakeApi, images: Path, out: Path, run_id: str) -> list[str]:
    return ["run", str(images), "--engine", "openrouter", "--model", MODEL,
            "--base-url", api.base_url, "--out", str(out), "--run-id", run_id,
            "--concurrency", "2", "--max-attempts", "2"]  # fmt: skip


def _grep_tree(folder: Path) -> int:
    files = [p for p in folder.rglob("*") if p.is_file()]
    for p in files:
        _assert_no_key(p.read_bytes(), str(p))
    return len(files)


@pytest.fixture()
def image_dir(many_images, tmp_path: Path) -> Path:
    images = many_images(10)
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (images / "notes.txt").write_text("a sidecar file the user keeps here")
    return images


def test_cli_runs_never_write_or_print_the_key(
    tmp_path: Path, image_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run with faults, a run whose server echoes the key in a 401 mid-run, a run whose key
    is refused at preflight by an echoing server: files, terminal and summary stay clean."""
    out = tmp_path / "runs"
    before = snapshot_tree(image_dir)
    outputs: list[str] = []
    script = ["good", "garbage", "500", "429:0", "reset", "malformed", "empty_choices"]
    with FakeApi(valid_key=KEY, echo_auth=True, script=script) as api:
        r = _herbdesk(
            *_api_args(api, image_dir, out, "faults"),
            "--checkpoint-threshold",
            "0",
            "--quality-threshold",
            "0",
        )
        assert r.returncode == 0, r.stderr
        outputs += [r.stdout, r.stderr]
        r = _herbdesk("run", "--resume", str(out / "faults"))
        assert r.returncode == 0, r.stderr
        outputs += [r.stdout, r.stderr]
    with FakeApi(valid_key=KEY, script=["good"] * 6, default="echo_key") as api:
        r = _herbdesk(*_api_args(api, image_dir, out, "echoed"))
        assert r.returncode == 5, r.stderr
        assert "[redacted]" in r.stderr  # the echoed message is shown, minus the key
        outputs += [r.stdout, r.stderr]
    with FakeApi(valid_key="sk-some-other-key", echo_auth=True) as api:
        r = _herbdesk(*_api_args(api, image_dir, out, "refused"))
        assert r.returncode == 3, r.stderr
        assert "key refused" in r.stderr and "[redacted]" in r.stderr
        outputs += [r.stdout, r.stderr]
        assert api.state.chat_requests == 0
    for run_id in ("faults", "echoed", "refused"):
        for extra in ([], ["--json"]):
            assert main(["summary", str(out / run_id), *extra]) == 0
            captured = capsys.readouterr()
            outputs += [captured.out, captured.err]
    for i, text in enumerate(outputs):
        _assert_no_key(text, f"CLI output #{i}")
    assert _grep_tree(out) >= 13  # 5 files per finished run, 3 for the one refused at preflight
    # herbdesk never writes next to, renames or changes the input images
    assert snapshot_tree(image_dir) == before


def test_engine_exceptions_never_carry_the_key(tmp_path: Path, many_images) -> None:
    image = next(iter(sorted(many_images(1).glob("*.jpg"))))
    item = SpecimenInput(path=image, specimen_id=specimen_id_of(image))
    actions = ["echo_key", "401", "402", "404", "500", "503", "429-bare", "reset", "malformed",
               "empty_choices", "garbage", "sleep:1.0"]  # fmt: skip
    settings = EngineSettings(
        engine="openrouter", model=MODEL, api_key=KEY, prompt_text="p", timeout_s=0.5
    )
    with FakeApi(valid_key=KEY, echo_auth=True, script=actions) as api:
        settings.base_url = api.base_url
        engine = OpenRouterEngine(settings)
        texts: list[str] = []
        for _ in actions:
            with pytest.raises(EngineError) as info:
                engine.extract(item)
            exc: BaseException | None = info.value
            texts += [info.value.message, str(info.value.raw_text)]
            while exc is not None:  # the whole chain a traceback would print
                texts += [str(exc), repr(exc)]
                exc = exc.__cause__ or exc.__context__
        engine.close()
        bad = OpenRouterEngine(EngineSettings(
            engine="openrouter", model=MODEL, api_key=KEY + "-wrong", base_url=api.base_url,
            prompt_text="p",
        ))  # fmt: skip
        checks = bad.preflight()
        bad.close()
    assert any("[redacted]" in t for t in texts)
    assert not checks[-1].ok and "[redacted]" in checks[-1].detail
    texts += [c.detail for c in checks]
    for t in texts:
        _assert_no_key(t, "an exception message")
    cfg = RunConfig(inputs=[image], engine=settings)
    _assert_no_key(repr(cfg) + repr(settings) + str(cfg.public_dict()), "a config repr")


def test_desktop_app_keeps_the_key_out_of_settings_and_run_files(
    qtbot,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    image_dir: Path,
) -> None:
    from PySide6.QtCore import QSettings

    from herbdesk.ui.mainwindow import MainWindow

    ini = tmp_path / "settings.ini"
    settings = QSettings(str(ini), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    before = snapshot_tree(image_dir)
    try:
        s = win.setup
        s.out_dir.setText(str(tmp_path / "runs"))
        s.images.setText(str(image_dir))
        s.engine.setCurrentIndex(s.engine.findData("openrouter"))
        s.model.setText(MODEL)
        s.api_key.setText(KEY)
        s.save_key.setChecked(False)  # never touch the real keyring from a test
        with FakeApi(valid_key=KEY, echo_auth=True, script=["good", "echo_key"]) as api:
            s.base_url.setText(api.base_url)
            assert win.start_run()
            qtbot.waitUntil(lambda: win.worker is None, timeout=60_000)
    finally:
        win.shutdown(30_000)
        win._save()
    settings.sync()
    assert ini.exists() and "base_url" in ini.read_text()
    _assert_no_key(ini.read_bytes(), "the QSettings store")
    assert _grep_tree(tmp_path / "runs") >= 4
    assert snapshot_tree(image_dir) == before
