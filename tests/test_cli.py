"""The `herbdesk` command as a user runs it: subprocesses, exit codes, output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakeapi import FakeApi


def _herbdesk(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "120", **(env or {})}
    full_env.pop("OPENROUTER_API_KEY", None)
    if env and "OPENROUTER_API_KEY" in env:
        full_env["OPENROUTER_API_KEY"] = env["OPENROUTER_API_KEY"]
    return subprocess.run(
        [sys.executable, "-m", "herbdesk", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def test_help_documents_exit_codes() -> None:
    r = _herbdesk("run", "--help")
    assert r.returncode == 0
    assert "exit codes" in r.stdout and "130" in r.stdout


def test_top_level_help_lists_every_entry_point() -> None:
    r = _herbdesk("--help")
    assert r.returncode == 0
    for command in ("app", "open", "run", "worker", "tail", "summary"):
        assert command in r.stdout
    # the self-test of an install is an option, not a command: it is listed all the same
    lines = [line for line in r.stdout.splitlines() if line.strip().startswith("--smoke-test")]
    assert len(lines) == 1 and "self-test" in lines[0], r.stdout
    assert "[--smoke-test]" in r.stdout  # in the usage line too
    # it takes no command: combined with one it is a usage error, not a silent run
    bad = _herbdesk("--smoke", "summary", "nowhere")
    assert bad.returncode == 2 and "takes no command" in bad.stderr


def test_empty_input_is_a_clear_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    r = _herbdesk("run", str(tmp_path / "empty"), "--out", str(tmp_path / "runs"))
    assert r.returncode == 2
    assert "no images found" in r.stderr
    assert not (tmp_path / "runs").exists()
    r = _herbdesk("run", str(tmp_path / "nope"))
    assert r.returncode == 2 and "not found" in r.stderr
    r = _herbdesk("run", str(tmp_path / "empty" / "readme.txt"), "--out", str(tmp_path / "runs"))
    assert r.returncode == 2
    assert (
        f"{tmp_path / 'empty' / 'readme.txt'} is not a jpg, jpeg, png, tif or tiff file" in r.stderr
    )
    assert "under" not in r.stderr  # one file named: no folder searched


def test_a_file_that_is_no_image_says_what_it_is(tmp_path: Path) -> None:
    """PIL's own message names an internal BytesIO object; a curator gets what the file is."""
    from herbdesk.extraction.engines.base import EngineError
    from herbdesk.extraction.images import load_image

    notes = tmp_path / "notes.jpg"
    notes.write_text("Collected near Regina, 1961\n")
    blob = tmp_path / "blob.png"
    blob.write_bytes(bytes(range(256)) * 4)
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    for path, data, said in (
        (notes, None, "holds text, not an image"),
        (notes, notes.read_bytes(), "holds text, not an image"),
        (blob, None, "not a JPEG, PNG or TIFF image"),
        (empty, None, "the file is empty"),
    ):
        with pytest.raises(EngineError) as err:
            load_image(path, data=data)
        assert said in str(err.value) and "BytesIO" not in str(err.value)
        assert path.name in str(err.value)


def test_failing_api_run_halts_with_exit_4_and_summary_reads_it(
    tmp_path: Path, many_images
) -> None:
    images = many_images(30)
    key = "sk-cli-SECRET-0123456789abcdef"
    with FakeApi(default="garbage", valid_key=key) as api:
        r = _herbdesk(
            "run",
            str(images),
            "--engine",
            "openrouter",
            "--model",
            "test/vision-model",
            "--base-url",
            api.base_url,
            "--out",
            str(tmp_path / "runs"),
            "--run-id",
            "bad",
            "--concurrency",
            "2",
            env={"OPENROUTER_API_KEY": key},
        )
        assert api.state.chat_requests <= 7
    assert r.returncode == 4, r.stderr
    assert "CHECKPOINT 5: FAILED" in r.stderr
    assert key not in r.stdout + r.stderr
    s = _herbdesk("summary", str(tmp_path / "runs" / "bad"), "--json")
    assert s.returncode == 0
    summary = json.loads(s.stdout)
    assert summary["status"] == "failed" and summary["reason"] == "early_validation_failed"
    assert summary["checkpoints"] == [{"checkpoint": 5, "status": "failed", "success_rate": 0.0}]
    assert summary["processed"] <= 7 and summary["succeeded"] == 0
    assert summary["bad_lines"] == 0 and summary["events"] > 10
    run_json = json.loads((tmp_path / "runs" / "bad" / "run.json").read_text())
    assert run_json["status"] == "failed" and run_json["config"]["engine"] == "openrouter"
    human = _herbdesk("summary", str(tmp_path / "runs" / "bad" / "events.jsonl"))
    assert "early_validation_failed" in human.stdout


def test_missing_key_exits_3_in_seconds(tmp_path: Path, many_images) -> None:
    r = _herbdesk(
        "run",
        str(many_images(3)),
        "--engine",
        "openrouter",
        "--out",
        str(tmp_path),
        "--run-id",
        "nokey",
        timeout=60,
    )
    assert r.returncode == 3
    assert "OPENROUTER_API_KEY" in r.stderr


def test_good_api_run_exits_0_and_resume_adds_nothing(tmp_path: Path, many_images) -> None:
    images = many_images(6)
    with FakeApi() as api:
        common = [
            "--engine",
            "openrouter",
            "--model",
            "test/vision-model",
            "--base-url",
            api.base_url,
        ]
        env = {"OPENROUTER_API_KEY": "sk-test-good"}
        r = _herbdesk(
            "run", str(images), *common, "--out", str(tmp_path), "--run-id", "ok", env=env
        )
        assert r.returncode == 0, r.stderr
        r2 = _herbdesk("run", "--resume", str(tmp_path / "ok"), env=env)
        assert r2.returncode == 0, r2.stderr
        assert api.state.chat_requests == 6
        # the final line says where the six went, not just "0 processed"
        assert "6 already done by an earlier invocation" in r2.stderr, r2.stderr
    summary = json.loads(_herbdesk("summary", str(tmp_path / "ok"), "--json").stdout)
    assert summary["succeeded"] == 6 and summary["status"] == "completed"


def test_summary_of_missing_log_is_an_error(tmp_path: Path) -> None:
    r = _herbdesk("summary", str(tmp_path))
    assert r.returncode == 2 and "no event log" in r.stderr


def test_summary_flags_a_run_that_went_silent(tmp_path: Path) -> None:
    """A killed run never writes its terminal event: summary must not call it plainly running."""
    from herbdesk.events import EventBus, EventLogWriter, EventType

    run = tmp_path / "run"
    run.mkdir()
    log = run / "events.jsonl"
    bus = EventBus("r1", EventLogWriter(log))
    bus.emit(EventType.EXTRACTION_STARTED, data={"total": 3})
    bus.emit(EventType.SPECIMEN_PROCESSING, specimen_id="s1", data={"image": "a.jpg"})
    fresh = _herbdesk("summary", str(run))
    assert fresh.returncode == 0 and "running" in fresh.stdout
    assert "may have died" not in fresh.stdout
    two_hours_ago = os.stat(log).st_mtime - 7200
    os.utime(log, (two_hours_ago, two_hours_ago))
    r = _herbdesk("summary", str(run))
    assert r.returncode == 0
    words = " ".join(r.stdout.split())  # the table wraps long values
    assert "running, but nothing was written for 2h00m: the run may have died" in words
    data = json.loads(_herbdesk("summary", str(run), "--json").stdout)
    assert data["status"] == "running" and data["silent_seconds"] >= 7200
    # a run that paused itself for a quota is quiet on purpose: paused, not dead
    msg = "The API's request quota is used up. The run waits until 2026-11-28 00:00 UTC."
    bus.emit(EventType.EXTRACTION_PAUSED, data={"reason": "quota", "message": msg})
    os.utime(log, (two_hours_ago, two_hours_ago))
    paused = _herbdesk("summary", str(run))
    words = " ".join(paused.stdout.split())
    assert "running, paused: The API's request quota is used up." in words
    assert "may have died" not in words
    data = json.loads(_herbdesk("summary", str(run), "--json").stdout)
    assert data["paused"] is True and data["silent_seconds"] is None
    bus.emit(EventType.EXTRACTION_COMPLETED, data={"message": "done"})
    os.utime(log, (two_hours_ago, two_hours_ago))
    done = json.loads(_herbdesk("summary", str(run), "--json").stdout)
    assert done["status"] == "completed" and done["silent_seconds"] is None


def test_ctrl_c_stops_gracefully_then_resume_finishes(tmp_path: Path, many_images) -> None:
    import signal
    import time

    images = many_images(40)
    env = {**os.environ, "OPENROUTER_API_KEY": "sk-test-good", "COLUMNS": "120"}
    with FakeApi(delay_s=0.2) as api:
        cmd = [
            sys.executable,
            "-m",
            "herbdesk",
            "run",
            str(images),
            "--engine",
            "openrouter",
            "--model",
            "test/vision-model",
            "--base-url",
            api.base_url,
            "--out",
            str(tmp_path),
            "--run-id",
            "int",
            "--concurrency",
            "2",
        ]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        raw = tmp_path / "int" / "raw.jsonl"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if raw.exists() and len(raw.read_bytes().splitlines()) >= 6:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "CANCELLED" in err and "--resume" in err
        done = len(raw.read_bytes().splitlines())
        assert 6 <= done < 40
        summary = json.loads(_herbdesk("summary", str(tmp_path / "int"), "--json").stdout)
        assert summary["status"] == "cancelled" and summary["processed"] == done
        r = _herbdesk(
            "run", "--resume", str(tmp_path / "int"), env={"OPENROUTER_API_KEY": "sk-test-good"}
        )
        assert r.returncode == 0, r.stderr
        assert api.state.chat_requests == 40
    summary = json.loads(_herbdesk("summary", str(tmp_path / "int"), "--json").stdout)
    assert summary["succeeded"] == 40 and summary["status"] == "completed"


def test_limit_and_config_file(tmp_path: Path, many_images) -> None:
    images = many_images(12)
    with FakeApi(default="garbage") as api:
        conf = tmp_path / "run.toml"
        conf.write_text(
            "[run]\n"
            'engine = "openrouter"\n'
            'model = "test/vision-model"\n'
            f'base_url = "{api.base_url}"\n'
            "concurrency = 1\n"
            "[validation]\n"
            "checkpoint_after = 3\n"
            "max_consecutive_failures = 0\n"
            "quality_threshold = 0\n"
        )
        r = _herbdesk(
            "run",
            str(images),
            "--config",
            str(conf),
            "--limit",
            "8",
            "--checkpoint-threshold",
            "0",
            "--out",
            str(tmp_path),
            "--run-id",
            "cfg",
            env={"OPENROUTER_API_KEY": "sk-test-good"},
        )
        assert r.returncode == 0, r.stderr
        assert api.state.chat_requests == 8
    summary = json.loads(_herbdesk("summary", str(tmp_path / "cfg"), "--json").stdout)
    assert summary["checkpoints"] == [{"checkpoint": 3, "status": "passed", "success_rate": 0.0}]
    assert summary["total"] == 8 and summary["failed"] == 8
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\n")
    r = _herbdesk("run", str(images), "--config", str(bad))
    assert r.returncode == 2 and "cannot read config" in r.stderr


def test_a_bad_flag_shows_the_subcommands_usage(tmp_path: Path) -> None:
    """`run --bogus` printed the top-level usage; the subcommand's own is what helps."""
    for command in ("run", "summary", "tail"):
        r = _herbdesk(command, "--bogus", str(tmp_path))
        assert r.returncode == 2
        assert f"usage: herbdesk {command}" in r.stderr, r.stderr
        assert "unrecognized arguments: --bogus" in r.stderr


def test_summary_of_a_file_that_is_no_log_says_so(tmp_path: Path) -> None:
    """`summary some.jpg` reported "557 bad lines … may have died" with exit 0."""
    jpg = tmp_path / "sheet.jpg"
    jpg.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40)
    r = _herbdesk("summary", str(jpg))
    assert r.returncode == 2
    assert "is not a herbdesk event log or raw.jsonl" in r.stderr
    assert "may have died" not in r.stdout + r.stderr


def test_subcommand_help_describes_its_argument() -> None:
    s = _herbdesk("summary", "--help")
    assert "a run directory, its events.jsonl, a raw.jsonl" in s.stdout
    o = _herbdesk("open", "--help")
    a = _herbdesk("app", "--help")
    assert "Open a past or running run" in o.stdout and o.stdout != a.stdout


def test_summary_of_a_runs_folder_names_its_newest_runs(tmp_path: Path) -> None:
    for i, name in enumerate(("run-a", "run-b")):
        (tmp_path / name).mkdir()
        log = tmp_path / name / "events.jsonl"
        log.write_text("", encoding="utf-8")
        os.utime(log, (1_000_000 + i, 1_000_000 + i))
    r = _herbdesk("summary", str(tmp_path))
    assert r.returncode == 2
    assert "holds 2 run(s), newest: run-b, run-a" in r.stderr


def test_a_budget_with_an_engine_that_reports_no_cost_is_said_at_the_start(
    tmp_path: Path, many_images
) -> None:
    """`--engine ocr --budget 1` was taken silently; the offline engine reports no cost, so
    the budget can never stop it: the terminal says so at the start, before any specimen."""
    r = _herbdesk(
        "run", str(many_images(1)), "--engine", "ocr", "--budget", "1",
        "--out", str(tmp_path / "runs"), "--run-id", "ocr-budget",
    )  # fmt: skip
    assert r.returncode != 2, r.stderr
    note = (
        "WARNING: the ocr engine reports no cost, so the budget ($1.0000) cannot stop this "
        "run: it goes on to the end"
    )
    assert note in r.stderr
    assert r.stderr.index(note) < r.stderr.index("preflight")
    plain = _herbdesk(
        "run", str(many_images(1)), "--engine", "ocr",
        "--out", str(tmp_path / "runs"), "--run-id", "ocr-plain",
    )  # fmt: skip
    assert "reports no cost" not in plain.stderr  # no budget: nothing to say
