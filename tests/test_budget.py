"""`--budget USD` against the fake API (each good reply reports a cost of $0.0012): the run
pauses before its cost would go past the budget, says so in an event and an alert, and a
resume with a higher budget finishes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
import orjson
import pytest
from fakeapi import FakeApi
from helpers import api_config, events_of
from test_alerts import Hook
from test_cli import _herbdesk

from herbdesk.events.reader import read_events
from herbdesk.events.types import EventType
from herbdesk.extraction import runfiles
from herbdesk.extraction.pipeline import Pipeline
from herbdesk.monitor.alert_channels import WebhookChannel
from herbdesk.monitor.alerts import AlertConfig, AlertsConsumer

COST = 0.0012  # what tests/fakeapi.py's good reply reports


@pytest.fixture()
def hook() -> object:
    h = Hook()
    yield h
    h.close()


def test_budget_pauses_new_work_with_an_event_and_an_alert_and_a_resume_finishes(
    tmp_path: Path, many_images: Callable[[int], Path], hook: Hook
) -> None:
    images = many_images(12)
    with FakeApi() as api:
        cfg = api_config(images, tmp_path / "runs", api.base_url, concurrency=2, budget_usd=0.005)
        p = Pipeline(cfg)
        alerts = AlertsConsumer(
            AlertConfig(events=frozenset({"paused", "halted"}), retry_backoff_s=0.01),
            [WebhookChannel(hook.url(), "generic")],
            notify=lambda _: None,
        )
        alerts.attach(p.bus, p.run_dir)
        outcome = p.run()
        alerts.close(timeout=10)
        assert outcome.status == "failed" and outcome.reason == "budget"
        evs = events_of(p.run_dir)
        types = [e.event_type for e in evs]
        (pause,) = [e for e in evs if e.event_type == EventType.EXTRACTION_PAUSED]
        assert pause.data["reason"] == "budget" and pause.data["budget_usd"] == 0.005
        assert "nothing new starts" in pause.data["message"]
        # nothing started after the pause; what finished stays within the budget: 4 x $0.0012
        # (3 when the headless run's end stops one that was about to start)
        after = types[types.index(EventType.EXTRACTION_PAUSED) :]
        assert EventType.SPECIMEN_PROCESSING not in after
        done = [e for e in evs if e.event_type == EventType.SPECIMEN_COMPLETED]
        assert len(done) in (3, 4)
        spent = runfiles.read_run_json(p.run_dir)["spent_usd"]
        assert spent == pytest.approx(len(done) * COST) and spent <= 0.005
        # one alert: the pause says it all (the headless run's end is not a second one)
        (body,) = hook.bodies()
        assert body["kind"] == "paused" and "paused at its budget" in body["title"]
        assert "--budget HIGHER" in body["text"] and body["reason"] == "budget"
        schema = json.loads(
            (Path(__file__).parents[1] / "herbdesk/schemas/event.schema.json").read_text()
        )
        validator = jsonschema.Draft202012Validator(schema)
        for line in (p.run_dir / "events.jsonl").read_text().splitlines():
            validator.validate(json.loads(line))  # the paused and failed events' new fields

        # the same budget again pauses at once; a higher one finishes the run
        again = api_config(images, tmp_path / "runs", api.base_url, resume_dir=p.run_dir)
        again.budget_usd = 1.0
        outcome2 = Pipeline(again).run()
    assert outcome2.status == "completed", outcome2.message
    raw = [orjson.loads(x) for x in (p.run_dir / "raw.jsonl").read_bytes().splitlines()]
    assert len({r["specimen_id"] for r in raw if r["success"]}) == 12
    assert runfiles.read_run_json(p.run_dir)["spent_usd"] == pytest.approx(12 * COST)


def test_a_held_budget_pause_goes_on_when_the_budget_is_raised(
    tmp_path: Path, many_images: Callable[[int], Path]
) -> None:
    """The window's way: the run waits paused (nothing in flight, nothing starting) until
    the budget is raised, then goes on in the same process."""
    with FakeApi() as api:
        cfg = api_config(many_images(8), tmp_path / "runs", api.base_url, budget_usd=0.003)
        p = Pipeline(cfg)
        p.hold_at_budget = True
        paused = threading.Event()
        p.subscribe(
            lambda ev: paused.set() if ev.event_type == EventType.EXTRACTION_PAUSED else None
        )
        result: list[object] = []
        t = threading.Thread(target=lambda: result.append(p.run()))
        t.start()
        assert paused.wait(30)
        while p.budget.in_flight:  # in-flight specimens finish
            time.sleep(0.02)
        assert t.is_alive() and p.budget.paused
        assert not p.raise_budget(0.0035)  # 2 x 0.0012 spent + 1 more: still short
        assert p.raise_budget(1.0)
        t.join(60)
    (outcome,) = result
    assert outcome.status == "completed"  # type: ignore[attr-defined]
    evs = events_of(p.run_dir)
    pauses = [e.data["reason"] for e in evs if e.event_type == EventType.EXTRACTION_PAUSED]
    resumes = [e.data["reason"] for e in evs if e.event_type == EventType.EXTRACTION_RESUMED]
    assert pauses == ["budget", "budget"] and resumes == ["budget"]
    assert sum(e.event_type == EventType.SPECIMEN_COMPLETED for e in evs) == 8


def test_herbdesk_run_budget_exits_7_and_resume_with_a_higher_budget_finishes(
    tmp_path: Path, many_images: Callable[[int], Path]
) -> None:
    images = many_images(8)
    conf = tmp_path / "run.toml"
    conf.write_text("[run]\nbudget_usd = 0.004\n")
    common = ("--engine", "openrouter", "--model", "test/vision-model", "--concurrency", "1")
    env = {"OPENROUTER_API_KEY": "sk-test-good"}
    with FakeApi() as api:
        url = ("--base-url", api.base_url)
        r = _herbdesk(
            "run",
            str(images),
            *common,
            *url,
            "--out",
            str(tmp_path / "runs"),
            "--run-id",
            "b",
            "--config",
            str(conf),
            env=env,
        )
        assert r.returncode == 7, r.stderr
        assert "PAUSED: The run's cost $0.0036" in r.stderr and "budget $0.0040" in r.stderr
        run_dir = tmp_path / "runs" / "b"
        bad = _herbdesk("run", "--resume", str(run_dir), "--budget", "-1", *url, env=env)
        assert bad.returncode == 2 and "--budget must be a positive number" in bad.stderr
        # a budget goes with --broker now (tests/test_distributed_budget.py): past the
        # arguments, to the broker, which is not there
        broker = _herbdesk("run", str(images), "--broker", "redis://127.0.0.1:1/0", "--budget", "1")
        assert broker.returncode == 3 and "cannot reach the broker" in broker.stderr
        r2 = _herbdesk("run", "--resume", str(run_dir), "--budget", "0.5", *url, env=env)
    assert r2.returncode == 0, r2.stderr
    # the run's checkpoint is at its 5th record (3 before, the resume's 2nd: a resume is judged
    # on all its records), before this invocation has the 3 finishes a projection needs; the
    # terminal gave the projected total all the same
    assert "CHECKPOINT 5: PASSED" in r2.stderr and "of ~$0.0096" in r2.stderr
    assert runfiles.read_run_json(run_dir)["config"]["budget_usd"] == 0.5


def test_a_resume_after_sigkill_counts_what_the_killed_invocation_spent(
    tmp_path: Path, many_images: Callable[[int], Path]
) -> None:
    """run.json's cost is written at an invocation's start and end: a `kill -9` leaves the
    killed invocation's spend out of it. The resume takes it from raw.jsonl's records, so
    `--resume --budget` stops where the budget says, not a whole budget later."""
    images = many_images(16)
    run_dir = tmp_path / "runs" / "k"
    common = ("--engine", "openrouter", "--model", "test/vision-model", "--concurrency", "1")
    env = {**os.environ, "COLUMNS": "120", "OPENROUTER_API_KEY": "sk-test-good"}
    with FakeApi(delay_s=0.05) as api:
        url = ("--base-url", api.base_url)
        proc = subprocess.Popen(
            [sys.executable, "-m", "herbdesk", "run", str(images), *common, *url,
             "--out", str(tmp_path / "runs"), "--run-id", "k", "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        raw = run_dir / "raw.jsonl"
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if raw.exists() and raw.read_bytes().count(b"\n") >= 4:
                break
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        killed = [orjson.loads(x) for x in raw.read_bytes().splitlines()]
        k = len(killed)
        assert 4 <= k < 16
        # what the bug left a resume to go by: the killed invocation's spend is not there
        assert runfiles.read_run_json(run_dir)["spent_usd"] == 0
        paid_before = api.state.chat_requests  # the one in flight at the kill was paid too
        # room for two more specimens (and half of one): the killed share counts against it
        budget = round((k + 2.5) * COST, 6)
        r = _herbdesk("run", "--resume", str(run_dir), "--budget", str(budget), *url, env=env)
        paid = api.state.chat_requests
    assert r.returncode == 7, r.stderr  # paused at its budget
    evs, _ = read_events(run_dir / "events.jsonl")
    _first, started = [e for e in evs if e.event_type == EventType.EXTRACTION_STARTED]
    assert started.data["cost_before_usd"] == pytest.approx(k * COST)
    records = [orjson.loads(x) for x in raw.read_bytes().splitlines()]
    assert len(records) == k + 2  # two more, then the pause
    total = sum(rec["cost_usd"] for rec in records)
    assert total <= budget and runfiles.read_run_json(run_dir)["spent_usd"] == pytest.approx(total)
    assert (paid - paid_before) * COST <= budget - k * COST  # the resume's own requests
