"""A disk that fills up mid-run: the run halts with a reason and a clear message (exit code 5,
see cli.py), what was written before stays intact and readable, and --resume finishes the run
once space is back.

The real thing is a tiny tmpfs the test mounts (root only; skipped with the reason otherwise);
an injected ENOSPC at an exact record covers the same path without privileges.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastengine import register_fast_engine
from reliability import assert_counts_agree, assert_csv_matches_raw, make_fake_jpegs, raw_lines

from herbdesk.cli import main
from herbdesk.cli.exitcodes import EXIT_FATAL, EXIT_OK
from herbdesk.events.reader import read_events
from herbdesk.events.types import EventType
from herbdesk.events.writer import JsonlAppender

TESTS = Path(__file__).resolve().parent
RUNNER = TESTS / "herbdesk_runner.py"


def _runner(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "160", "OPENROUTER_API_KEY": "sk-unused", **env}
    return subprocess.run(
        [sys.executable, str(RUNNER), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=180,
    )


@pytest.fixture()
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 160 KiB tmpfs: room for a few dozen specimens' files, then ENOSPC."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=160k,mode=0777", "tmpfs", str(mnt)],
            check=True,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {exc}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True, timeout=30)


def _check_intact(run_dir: Path) -> None:
    """Every line but a torn last one decodes; every finished event has its raw record."""
    for name in ("events.jsonl", "raw.jsonl", "metrics.jsonl"):
        lines = (run_dir / name).read_bytes().split(b"\n")
        for line in lines[:-1]:  # complete lines (a newline follows each)
            json.loads(line)
    assert_counts_agree(run_dir, torn_ok=True)


def test_full_tmpfs_halts_with_exit_5_then_resume_finishes(tmp_path: Path, tiny_fs: Path) -> None:
    images = make_fake_jpegs(tmp_path / "images", 200)
    r = _runner(
        "run", str(images), "--engine", "fast", "--out", str(tiny_fs), "--run-id", "full",
        "--concurrency", "4", HERBDESK_FAST_DELAY="0.002",
    )  # fmt: skip
    assert r.returncode == EXIT_FATAL, r.stderr[-2000:]
    assert "No space left on device" in r.stderr and "output not writable" in r.stderr
    assert "Traceback" not in r.stderr
    run_dir = tiny_fs / "full"
    _check_intact(run_dir)
    evs, _ = read_events(run_dir / "events.jsonl")
    done_before = {e.specimen_id for e in evs if e.event_type == EventType.SPECIMEN_COMPLETED}
    assert 5 <= len(done_before) < 200  # it filled up mid-run, not at the start
    s = _runner("summary", str(run_dir), "--json")
    assert s.returncode == EXIT_OK, s.stderr
    summary = json.loads(s.stdout)
    assert summary["succeeded"] == len(done_before) and summary["bad_lines"] <= 1

    subprocess.run(["mount", "-o", "remount,size=8m", str(tiny_fs)], check=True, timeout=30)
    r2 = _runner("run", "--resume", str(run_dir), HERBDESK_FAST_DELAY="0")
    assert r2.returncode == EXIT_OK, r2.stderr[-2000:]
    ok = Counter(rec["specimen_id"] for rec in raw_lines(run_dir) if rec.get("success"))
    assert len(ok) == 200 and set(ok.values()) == {1}
    assert done_before <= set(ok)
    assert_csv_matches_raw(run_dir)  # rows the full disk refused (or tore) are back, once each
    final = json.loads(_runner("summary", str(run_dir), "--json").stdout)
    assert final["status"] == "completed"
    assert final["succeeded"] + final["skipped"] == 200 and final["failed"] == 0


def test_injected_enospc_on_a_record_halts_before_its_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ENOSPC exactly on the 13th raw record: that specimen is never claimed done."""
    register_fast_engine(monkeypatch)
    images = make_fake_jpegs(tmp_path / "images", 40)
    real_write = JsonlAppender.write_bytes
    written: list[bytes] = []

    def write_bytes(self: JsonlAppender, line: bytes) -> None:
        if self.path.name == "raw.jsonl":
            if len(written) >= 12:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written.append(line)
        real_write(self, line)

    monkeypatch.setattr(JsonlAppender, "write_bytes", write_bytes)
    code = main(
        ["run", str(images), "--engine", "fast", "--out", str(tmp_path / "runs"),
         "--run-id", "enospc", "--concurrency", "1", "--quiet"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == EXIT_FATAL
    assert "output not writable" in err and "No space left on device" in err
    run_dir = tmp_path / "runs" / "enospc"
    c = assert_counts_agree(run_dir)  # the log itself had room: everything agrees exactly
    assert (c.completed, c.failed) == (12, 0)
    assert c.summary["status"] == "failed" and c.summary["reason"] == "fatal_error"
    assert "No space left" in c.summary["message"]
