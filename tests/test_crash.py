"""Crash safety: `herbdesk run` killed with SIGKILL at random points, and the desktop worker
stopped mid-run; then --resume.

What must hold after any kill: every specimen with a `specimen.completed` event has its record
in raw.jsonl (the record is flushed first); the log's torn last line is skipped and counted;
and the resumed run records every specimen exactly once (successful records by specimen_id).
SIGKILL loses nothing the process handed to the kernel; a power cut is another matter (herbdesk
does not fsync by default) and is not claimed here.

The number of kill points is bounded so CI stays fast: HERBDESK_CRASH_EXAMPLES raises it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from fastengine import register_fast_engine
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from reliability import (
    assert_counts_agree,
    assert_csv_matches_raw,
    make_fake_jpegs,
    raw_lines,
    snapshot_tree,
)

from herbdesk.events.reader import read_events
from herbdesk.events.types import EventType
from herbdesk.extraction.config import RunConfig
from herbdesk.extraction.engines import EngineSettings
from herbdesk.monitor.validation import ValidationConfig

TESTS = Path(__file__).resolve().parent
RUNNER = TESTS / "herbdesk_runner.py"
N_IMAGES = 120
EXAMPLES = int(os.environ.get("HERBDESK_CRASH_EXAMPLES", "5"))
ENV = {
    **os.environ,
    "COLUMNS": "160",
    "OPENROUTER_API_KEY": "sk-unused",  # keeps the keyring out of it
    "HERBDESK_FAST_DELAY": "0.004",
}


@pytest.fixture(scope="module")
def crash_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fake_jpegs(tmp_path_factory.mktemp("crash") / "images", N_IMAGES)


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _run_and_kill(images: Path, out: Path, kill_after: int, extra_s: float) -> int | None:
    """Start a run, SIGKILL it once raw.jsonl holds `kill_after` records (plus a pause).

    Returns the exit code if the run ended by itself first, else None.
    """
    proc = subprocess.Popen(
        [sys.executable, str(RUNNER), "run", str(images), "--engine", "fast", "--out", str(out),
         "--run-id", "k", "--concurrency", "4", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
    )  # fmt: skip
    raw = out / "k" / "raw.jsonl"
    deadline = time.monotonic() + 60
    while proc.poll() is None and _lines(raw) < kill_after and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(extra_s)
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    return None


def _tear_last_line(path: Path, cut: int) -> bool:
    """Cut the last line short, as a write interrupted by a crash or power cut would."""
    data = path.read_bytes()
    if not data.endswith(b"\n") or data.count(b"\n") < 2:
        return False
    last = data[data.rfind(b"\n", 0, len(data) - 1) + 1 :]
    cut = max(2, min(cut, len(last) - 1))  # newline and closing brace gone: undecodable
    path.write_bytes(data[:-cut])
    return True


def _assert_events_backed_by_raw(run_dir: Path) -> None:
    evs, _ = read_events(run_dir / "events.jsonl")
    raw = raw_lines(run_dir)
    ok = {r["specimen_id"] for r in raw if r.get("success")}
    bad = {r["specimen_id"] for r in raw if not r.get("success")}
    for e in evs:
        if e.event_type == EventType.SPECIMEN_COMPLETED:
            assert e.specimen_id in ok, f"completed event without its record: {e.specimen_id}"
        elif e.event_type == EventType.SPECIMEN_FAILED:
            assert e.specimen_id in bad


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kill_after=st.integers(min_value=0, max_value=N_IMAGES + 10),
    extra_ms=st.integers(min_value=0, max_value=40),
    cut=st.integers(min_value=2, max_value=400),
)
@example(kill_after=0, extra_ms=0, cut=2)  # during start-up
@example(kill_after=N_IMAGES // 2, extra_ms=3, cut=50)  # mid-run
def test_sigkill_at_any_point_then_resume_records_each_once(
    tmp_path_factory: pytest.TempPathFactory,
    crash_images: Path,
    kill_after: int,
    extra_ms: int,
    cut: int,
) -> None:
    out = tmp_path_factory.mktemp("killed")
    run_dir = out / "k"
    code = _run_and_kill(crash_images, out, kill_after, extra_ms / 1000)
    assert code in (None, 0)
    resume: list[str]
    if (run_dir / "events.jsonl").exists():
        # 1. what the killed run left: at most the last line torn, every claim backed by raw
        evs, stats = read_events(run_dir / "events.jsonl")
        assert stats.bad_lines <= 1
        if stats.bad_lines:
            assert stats.bad_samples[0].line_no == stats.lines
        _assert_events_backed_by_raw(run_dir)
        # 2. a torn last line is skipped and counted
        torn = stats.bad_lines == 0 and _tear_last_line(run_dir / "events.jsonl", cut)
        if torn:
            evs2, stats2 = read_events(run_dir / "events.jsonl")
            assert (stats2.bad_lines, len(evs2)) == (1, len(evs) - 1)
            assert stats2.bad_samples[0].line_no == stats2.lines
            torn_events = 1
        else:
            torn_events = stats.bad_lines
        resume = ["run", "--resume", str(run_dir), "--quiet"]
        if not (run_dir / "run.json").exists():  # killed before run.json held the settings
            resume[1:1] = [str(crash_images), "--engine", "fast"]
    else:  # killed before the run directory was made: start again
        torn_events = 0
        resume = ["run", str(crash_images), "--engine", "fast", "--out", str(out),
                  "--run-id", "k", "--quiet"]  # fmt: skip
    # 3. resume finishes with each specimen recorded exactly once
    r = subprocess.run(
        [sys.executable, str(RUNNER), *resume],
        capture_output=True, text=True, env={**ENV, "HERBDESK_FAST_DELAY": "0"}, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    ok = Counter(rec["specimen_id"] for rec in raw_lines(run_dir) if rec.get("success"))
    assert len(ok) == N_IMAGES and set(ok.values()) == {1}
    assert_csv_matches_raw(run_dir)  # the rows a kill cut off (or tore) are back, once each
    _assert_events_backed_by_raw(run_dir)
    evs, stats = read_events(run_dir / "events.jsonl")
    assert stats.bad_lines == torn_events  # the torn line stays one counted bad line
    seqs = [e.seq for e in evs]
    assert seqs == sorted(set(seqs))  # numbering continued past the crash, no duplicates
    assert evs[-1].event_type == EventType.EXTRACTION_COMPLETED
    c = assert_counts_agree(run_dir, torn_ok=True)
    s = c.summary
    assert s["status"] == "completed" and s["failed"] == 0
    # a specimen recorded in raw.jsonl whose event the kill prevented is "skipped" on resume
    assert s["succeeded"] + s["skipped"] == N_IMAGES


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stop_after=st.integers(min_value=0, max_value=70))
def test_desktop_worker_stopped_mid_run_then_resumed(
    qtbot,  # type: ignore[no-untyped-def]
    tmp_path_factory: pytest.TempPathFactory,
    crash_images: Path,
    monkeypatch: pytest.MonkeyPatch,
    stop_after: int,
) -> None:
    """Stop (the app's Stop button) at any point, transient faults in flight, then resume."""
    from herbdesk.ui.worker import RunWorker

    register_fast_engine(monkeypatch)
    out = tmp_path_factory.mktemp("worker")

    def config(resume: Path | None = None) -> RunConfig:
        extra = {"delay_s": 0.004, "fault_rate": 0.2, "recorded_share": 0.0, "seed": stop_after}
        return RunConfig(
            inputs=[crash_images],
            out_dir=out,
            run_id=None if resume else "w",
            engine=EngineSettings(engine="fast", extra=extra),
            concurrency=4,
            resume_dir=resume,
            max_attempts=12,
            backoff_base_s=0.02,
            backoff_max_s=0.05,
            validation=ValidationConfig(max_consecutive_failures=0),
        )

    worker = RunWorker(config())
    raw = worker.run_dir / "raw.jsonl"
    with qtbot.waitSignal(worker.run_finished, timeout=60_000) as finished:
        worker.start()
        qtbot.waitUntil(lambda: _lines(raw) >= stop_after or worker.isFinished(), timeout=60_000)
        worker.stop()
    worker.wait()
    outcome = finished.args[0]
    assert outcome.status in ("cancelled", "completed")
    c = assert_counts_agree(worker.run_dir)  # a graceful stop leaves every file consistent
    assert c.failed == 0 and c.completed + c.skipped <= c.queued

    again = RunWorker(config(resume=worker.run_dir))
    with qtbot.waitSignal(again.run_finished, timeout=60_000) as finished2:
        again.start()
    again.wait()
    assert finished2.args[0].status == "completed"
    ok = Counter(rec["specimen_id"] for rec in raw_lines(worker.run_dir) if rec.get("success"))
    assert len(ok) == N_IMAGES and set(ok.values()) == {1}
    s = assert_counts_agree(worker.run_dir).summary
    assert (s["status"], s["succeeded"], s["failed"]) == ("completed", N_IMAGES, 0)


def test_second_writer_on_a_live_run_is_refused_then_resume_after_its_kill(
    tmp_path: Path, crash_images: Path
) -> None:
    """A `--resume` started while the first writer still holds the directory (here frozen with
    SIGSTOP, so nothing moves) exits 2 naming the holder and changes nothing; once the holder
    is SIGKILLed the lock is gone with it and a resume records each specimen once."""
    out = tmp_path / "out"
    run_dir = out / "k"
    proc = subprocess.Popen(
        [sys.executable, str(RUNNER), "run", str(crash_images), "--engine", "fast", "--out",
         str(out), "--run-id", "k", "--concurrency", "2", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**ENV, "HERBDESK_FAST_DELAY": "0.05"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while _lines(run_dir / "raw.jsonl") < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.2)  # writes already handed to the kernel have landed
        before = snapshot_tree(run_dir)
        r = subprocess.run(
            [sys.executable, str(RUNNER), "run", "--resume", str(run_dir), "--quiet"],
            capture_output=True, text=True, env=ENV, timeout=120,
        )  # fmt: skip
        assert r.returncode == 2, r.stderr[-2000:]
        assert f"in use by herbdesk pid {proc.pid} on " in r.stderr and "since" in r.stderr
        assert "Traceback" not in r.stderr
        assert snapshot_tree(run_dir) == before
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    r = subprocess.run(
        [sys.executable, str(RUNNER), "run", "--resume", str(run_dir), "--quiet"],
        capture_output=True, text=True, env={**ENV, "HERBDESK_FAST_DELAY": "0"}, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    ok = Counter(rec["specimen_id"] for rec in raw_lines(run_dir) if rec.get("success"))
    assert len(ok) == N_IMAGES and set(ok.values()) == {1}
    assert_csv_matches_raw(run_dir)
    evs, _ = read_events(run_dir / "events.jsonl")
    seqs = [e.seq for e in evs]
    assert seqs == sorted(set(seqs))
