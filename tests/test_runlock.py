"""One writer per run directory: a second `herbdesk run --resume` (or the app's Resume) on a
directory another process still writes is refused before it touches a file, with who holds
it and since when; a holder that died never leaves the directory locked."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fastengine import register_fast_engine
from reliability import make_fake_jpegs, snapshot_tree

from herbdesk.cli import main
from herbdesk.cli.exitcodes import EXIT_USAGE
from herbdesk.extraction.config import RunConfig
from herbdesk.extraction.engines import EngineSettings
from herbdesk.extraction.pipeline import Pipeline

TESTS = Path(__file__).resolve().parent


def _config(images: Path, out: Path, **kw: object) -> RunConfig:
    return RunConfig(inputs=[images], out_dir=out, engine=EngineSettings(engine="fast"), **kw)  # type: ignore[arg-type]


def _done_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    register_fast_engine(monkeypatch)
    images = make_fake_jpegs(tmp_path / "images", 6)
    p = Pipeline(_config(images, tmp_path / "out", run_id="r", limit=3))
    assert p.run().status == "completed"
    return images, p.run_dir


def test_second_pipeline_on_a_held_run_dir_is_refused_and_touches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from herbdesk.extraction.runlock import RunDirInUseError

    images, run_dir = _done_run(tmp_path, monkeypatch)
    holder = Pipeline(_config(images, tmp_path / "out", resume_dir=run_dir))
    before = snapshot_tree(run_dir)
    with pytest.raises(RunDirInUseError) as info:
        Pipeline(_config(images, tmp_path / "out", resume_dir=run_dir))
    msg = str(info.value)
    assert f"pid {os.getpid()}" in msg and socket.gethostname() in msg and "since" in msg
    assert main(["run", "--resume", str(run_dir), "--engine", "fast", "--quiet"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "in use" in err and f"pid {os.getpid()}" in err and "Traceback" not in err
    assert snapshot_tree(run_dir) == before  # nothing written, renamed or touched
    # the holder's run goes on; once it has ended the directory is free again
    assert holder.run().status == "completed"
    again = Pipeline(_config(images, tmp_path / "out", resume_dir=run_dir))
    assert again.run().status == "completed"


def test_a_killed_holder_never_leaves_the_run_dir_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, run_dir = _done_run(tmp_path, monkeypatch)
    code = (
        "import sys, os; from herbdesk.extraction.runlock import RunLock;"
        f"RunLock.acquire(__import__('pathlib').Path({str(run_dir)!r})); os._exit(9)"
    )
    r = subprocess.run([sys.executable, "-c", code], env=os.environ.copy(), timeout=60)
    assert r.returncode == 9  # held, then gone without releasing anything
    assert (run_dir / "run.lock").exists()  # the file stays, the lock does not
    p = Pipeline(_config(images, tmp_path / "out", resume_dir=run_dir))
    assert p.run().status == "completed"


def test_the_app_shows_who_holds_the_run_dir(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("PySide6")
    from PySide6.QtCore import QSettings

    from herbdesk.ui.mainwindow import MainWindow

    images, run_dir = _done_run(tmp_path, monkeypatch)
    holder = Pipeline(_config(images, tmp_path / "out", resume_dir=run_dir))
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.setup.images.setText(str(images))
    win.setup.out_dir.setText(str(tmp_path / "out"))
    assert not win.start_run(resume_dir=run_dir)
    assert "in use" in win.setup.message.text() and f"pid {os.getpid()}" in win.setup.message.text()
    assert holder.run().status == "completed"
    win.shutdown(5000)
