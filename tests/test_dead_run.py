"""A dead run must not look alive. run.json and run.lock name the writer (host, pid, start);
a writer on this host that is gone is reported dead at once, by `tail --until-done` (exit 8),
`summary` and the window; one on another host after --stale-minutes of silence measured from
the log's last write, never from when the reader opened it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from reliability import make_fake_jpegs

from herbdesk.cli.exitcodes import EXIT_DEAD

TESTS = Path(__file__).resolve().parent
RUNNER = TESTS / "herbdesk_runner.py"
ENV = {"OPENROUTER_API_KEY": "sk-unused", "COLUMNS": "160"}


def _herbdesk(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUNNER), *args],
        capture_output=True, text=True, env={**os.environ, **ENV}, timeout=timeout,
    )  # fmt: skip


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A real `herbdesk run` SIGKILLed mid-run: its directory and the dead writer's pid."""
    tmp = tmp_path_factory.mktemp("dead")
    images = make_fake_jpegs(tmp / "images", 60)
    out = tmp / "out"
    proc = subprocess.Popen(
        [sys.executable, str(RUNNER), "run", str(images), "--engine", "fast", "--out", str(out),
         "--run-id", "d", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, **ENV, "HERBDESK_FAST_DELAY": "0.05"},
    )  # fmt: skip
    log = out / "d" / "events.jsonl"  # four finishes logged (a record precedes its event)

    def finished() -> int:
        return log.read_bytes().count(b'"specimen.completed"') if log.exists() else 0

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and finished() < 4:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    return out / "d", proc.pid


def test_run_json_names_the_writer(killed_run: tuple[Path, int]) -> None:
    run_dir, pid = killed_run
    writer = orjson.loads((run_dir / "run.json").read_bytes())["writer"]
    assert writer["pid"] == pid and writer["host"] == socket.gethostname() and writer["started"]


def test_tail_until_done_on_a_killed_run_exits_at_once(killed_run: tuple[Path, int]) -> None:
    run_dir, pid = killed_run
    r = _herbdesk("tail", str(run_dir), "--print", "--until-done", timeout=60)
    assert r.returncode == EXIT_DEAD, r.stderr
    assert f"pid {pid} on {socket.gethostname()}" in r.stderr and "is gone" in r.stderr
    assert f"--resume {run_dir}" in r.stderr
    assert "specimen.completed" in r.stdout  # what the log holds is printed first


def test_summary_says_a_killed_run_died(killed_run: tuple[Path, int]) -> None:
    run_dir, pid = killed_run
    r = _herbdesk("summary", str(run_dir), "--json")
    s = orjson.loads(r.stdout)
    assert s["status"] == "running" and s["writer_state"] == "dead" and s["writer"]["pid"] == pid
    text = _herbdesk("summary", str(run_dir)).stdout
    assert f"pid {pid}" in text and "is gone" in text


def test_a_remote_writer_is_stalled_after_stale_minutes_of_log_silence(tmp_path: Path) -> None:
    """Another host's writer, log last written 2 hours ago: stalled, by the file's mtime."""
    run_dir = tmp_path / "remote"
    run_dir.mkdir()
    ev = {"schema_version": 1, "seq": 1, "event_type": "extraction.started", "run_id": "remote",
          "timestamp": "2026-01-01T00:00:00.000Z", "data": {"total": 3}}  # fmt: skip
    (run_dir / "events.jsonl").write_bytes(orjson.dumps(ev) + b"\n")
    writer = {"host": "elsewhere.invalid", "pid": 4242, "started": "2026-01-01T00:00:00Z"}
    (run_dir / "run.json").write_bytes(orjson.dumps({"run_id": "remote", "writer": writer}))
    two_hours_ago = time.time() - 7200
    os.utime(run_dir / "events.jsonl", (two_hours_ago, two_hours_ago))
    r = _herbdesk("tail", str(run_dir), "--print", "--until-done", "--stale-minutes", "30")
    assert r.returncode == EXIT_DEAD, r.stderr
    assert "[stalled]" in r.stderr and "2h00m" in r.stderr and "elsewhere.invalid" in r.stderr


def test_watch_counts_silence_from_the_last_write_not_from_opening(tmp_path: Path) -> None:
    from herbdesk.extraction.liveness import RunWatch, log_silence_s

    log = tmp_path / "events.jsonl"
    log.write_bytes(b"")
    os.utime(log, (1000.0, 1000.0))
    assert log_silence_s(tmp_path, None, now=1600.0) == 600.0
    assert log_silence_s(None, "1970-01-01T00:16:40.000Z", now=1600.0) == 600.0
    watch = RunWatch(tmp_path, stale_after_s=300)
    assert watch.check(now=1200.0) is None
    verdict = watch.check(now=1600.0)
    assert verdict is not None and verdict.state == "stalled"


def test_the_window_shows_a_dead_writer_red_and_silence_from_the_last_write(
    qtbot, tmp_path: Path, killed_run: tuple[Path, int]
) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("PySide6")
    from PySide6.QtCore import QSettings

    from herbdesk.ui.mainwindow import MainWindow

    run_dir, pid = killed_run
    log = run_dir / "events.jsonl"
    st = log.stat()
    two_hours_ago = time.time() - 7200
    os.utime(log, (two_hours_ago, two_hours_ago))
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    try:
        assert win.tail(str(run_dir))
        qtbot.waitUntil(lambda: win.document.state.processed >= 4, timeout=20000)
        win._tick_clock()
        # counted from the log's last write two hours ago, not from when the window opened it
        assert win.silence_label.text() == "last event 2h 00m ago"
        errors = [t for lvl, t in win.banners.texts() if lvl == "error"]
        assert errors and f"pid {pid}" in errors[0] and "is gone" in errors[0]
    finally:
        win.stop_tail()
        win.shutdown(5000)
        os.utime(log, ns=(st.st_atime_ns, st.st_mtime_ns))
