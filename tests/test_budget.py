"""`--budget USD` against the fake API (each good reply reports a cost of $0.0012): the run
pauses before its cost would go past the budget, says so in an event and an alert, and a
resume with a higher budget finishes it."""

from __future__ import annotations

import json
import os
import re
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
        # what finished stays within the budget: 4 x $0.0012. The headless run ends once the
        # specimens in flight at the pause finished, so none admitted is stopped (one may
        # reach its request after the pause), and nothing else starts: every one processed
        # finished
        assert types.index(EventType.EXTRACTION_PAUSED) < types.index(EventType.EXTRACTION_FAILED)
        done = [e for e in evs if e.event_type == EventType.SPECIMEN_COMPLETED]
        assert len(done) == 4 and types.count(EventType.SPECIMEN_PROCESSING) == 4
        assert EventType.SPECIMEN_SKIPPED not in types
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
            env={**env, "COLUMNS": "80"},  # a narrow terminal squeezed the count away
        )
        assert r.returncode == 7, r.stderr
        assert "PAUSED: The run's cost $0.0036" in r.stderr and "budget $0.0040" in r.stderr
        # a pause, not a failure: amber words, the final spend, how it goes on
        assert "FAILED" not in r.stderr, r.stderr
        assert "PAUSED AT BUDGET after" in r.stderr
        assert "3 processed, 3 succeeded, 0 failed; spent $0.0036 of $0.0040" in r.stderr
        run_dir = tmp_path / "runs" / "b"
        assert f"go on with herbdesk run --resume {run_dir} --budget HIGHER" in r.stderr
        # the last progress line keeps its count and says the run's spend (no ETA: it ended)
        (last,) = [ln for ln in r.stderr.splitlines() if ln.startswith("extracting")]
        assert re.search(r" 3/8 ok 100%", last) and "ETA" not in last, last
        bad = _herbdesk("run", "--resume", str(run_dir), "--budget", "-1", *url, env=env)
        assert bad.returncode == 2 and "--budget must be a positive number" in bad.stderr
        # a budget goes with --broker now (tests/test_distributed_budget.py): past the
        # arguments, to the broker, which is not there
        broker = _herbdesk("run", str(images), "--broker", "redis://127.0.0.1:1/0", "--budget", "1")
        assert broker.returncode == 3 and "cannot reach the broker" in broker.stderr
        r2 = _herbdesk("run", "--resume", str(run_dir), "--budget", "0.5", *url, env=env)
    assert r2.returncode == 0, r2.stderr
    # the resume's progress line counts the run's spend, the earlier $0.0036 in it
    (last,) = [ln for ln in r2.stderr.splitlines() if ln.startswith("extracting")]
    assert " 5/5 " in last and "$0.0096" in last, last
    # the run's checkpoint is at its 5th record (3 before, the resume's 2nd: a resume is judged
    # on all its records)
    assert "CHECKPOINT 5: PASSED" in r2.stderr
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


def _spent_and_paid(run_dir: Path) -> tuple[float, float]:
    """(run.json's spend over every invocation, the sum of raw.jsonl's recorded costs)."""
    recs = [orjson.loads(x) for x in (run_dir / "raw.jsonl").read_bytes().splitlines()]
    return runfiles.read_run_json(run_dir)["spent_usd"], sum(r["cost_usd"] or 0 for r in recs)


def _started_before_first_finish(run_dir: Path) -> int:
    """How many specimens started before the run's first one finished."""
    n = 0
    for e in events_of(run_dir):
        if e.event_type in (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED):
            return n
        n += e.event_type == EventType.SPECIMEN_PROCESSING
    return n


def test_four_workers_never_spend_past_a_budget_first_run_and_resume(
    tmp_path: Path, many_images: Callable[[int], Path]
) -> None:
    """The trial: $0.004 a sheet, --budget 0.01 at concurrency 4 spent $0.0160 (four requests
    out before any cost was known), and resuming with --budget 0.03 spent $0.0320 (the mean
    started from nothing again). Now the first specimen goes alone, the resume's mean counts
    the earlier invocation's specimens, and with a constant cost the budget is never passed:
    by the run's records, by run.json, and by the requests the server was paid for."""
    price = 0.004
    images = many_images(12)
    with FakeApi(costs=(price,), delay_s=0.1) as api:
        cfg = api_config(images, tmp_path / "runs", api.base_url, concurrency=4, budget_usd=0.01)
        outcome = Pipeline(cfg).run()
        assert outcome.status == "failed" and outcome.reason == "budget"
        run_dir = outcome.run_dir
        spent, recorded = _spent_and_paid(run_dir)
        assert spent == pytest.approx(recorded) and spent <= 0.01
        assert api.state.chat_requests * price <= 0.01 + 1e-12  # nothing paid unrecorded
        assert spent == pytest.approx(2 * price)  # all the budget holds: 3 would be $0.012
        assert _started_before_first_finish(run_dir) == 1  # the mean was not known yet
        # the final spend is what the run's end says, not the cost at the pause
        assert f"spent ${spent:.4f}" in outcome.message

        api.state.max_in_flight = 0
        again = api_config(images, tmp_path / "runs", api.base_url, concurrency=4)
        again.resume_dir, again.budget_usd = run_dir, 0.03
        p2 = Pipeline(again)
        outcome2 = p2.run()
        assert outcome2.reason == "budget"
        spent2, recorded2 = _spent_and_paid(run_dir)
        assert spent2 == pytest.approx(recorded2) and spent2 <= 0.03
        assert api.state.chat_requests * price <= 0.03 + 1e-12
        assert spent2 == pytest.approx(7 * price)  # 7 x $0.004 = $0.028; an 8th is $0.032
        # the earlier invocation's mean was known at once: the resume starts two together (as
        # many as have finished), widening as more finish, never past the concurrency
        assert 2 <= api.state.max_in_flight <= 4
        (_, started) = [e for e in events_of(run_dir) if e.event_type == "extraction.started"]
        assert started.data["cost_before_usd"] == pytest.approx(2 * price)


def test_a_varying_cost_passes_the_budget_by_no_more_than_the_in_flight_strays(
    tmp_path: Path, many_images: Callable[[int], Path]
) -> None:
    """Sheets that cost $0.002 or $0.006, and the rule knows only their mean so far: what
    it admits stays within the budget if each specimen in flight costs the mean, so the spend
    passes it by at most how far those (concurrency 4, the one starting among them) cost
    more than the mean: 4 x ($0.006 - $0.002) at worst, first run and resume alike. No more
    are in flight than have finished, so a first cheap sheet's price is not trusted for four
    (before that rule this run spent $0.022 of $0.01; with it $0.008, then $0.026 of $0.03).
    The ramp bounds how far the mean is trusted, not the spend: the bound stays 4 x spread."""
    costs = (0.002, 0.006, 0.006, 0.002, 0.006, 0.002)
    stray = 4 * (max(costs) - min(costs))
    images = many_images(24)
    with FakeApi(costs=costs, delay_s=0.05) as api:
        cfg = api_config(images, tmp_path / "runs", api.base_url, concurrency=4, budget_usd=0.01)
        outcome = Pipeline(cfg).run()
        assert outcome.reason == "budget"
        spent, recorded = _spent_and_paid(outcome.run_dir)
        assert spent == pytest.approx(recorded) and spent <= 0.01 + stray
        again = api_config(images, tmp_path / "runs", api.base_url, concurrency=4)
        again.resume_dir, again.budget_usd = outcome.run_dir, 0.03
        assert Pipeline(again).run().reason == "budget"
        spent2, recorded2 = _spent_and_paid(outcome.run_dir)
        paid = sum(costs[i % len(costs)] for i in range(api.state.chat_requests))
    assert spent2 == pytest.approx(recorded2) == pytest.approx(paid)  # nothing paid unrecorded
    assert spent < spent2 <= 0.03 + stray
    print(f"varying cost: spent ${spent:.4f} of $0.01, then ${spent2:.4f} of $0.03")


def test_an_engine_that_records_no_cost_is_serialised_for_its_first_specimen_only(
    tmp_path: Path, many_images: Callable[[int], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No cost is recorded (as the offline OCR engine records none): once one specimen
    finished the mean is known, $0, and the other workers go on side by side; the run
    completes, the budget never reached."""
    from fastengine import register_fast_engine

    from herbdesk.extraction.config import RunConfig
    from herbdesk.extraction.engines import EngineSettings

    register_fast_engine(monkeypatch)
    cfg = RunConfig(
        inputs=[many_images(16)],
        out_dir=tmp_path / "runs",
        engine=EngineSettings(engine="fast", extra={"delay_s": 0.1}),
        concurrency=4,
        budget_usd=0.01,
    )
    outcome = Pipeline(cfg).run()
    assert outcome.status == "completed", outcome.message
    evs = events_of(outcome.run_dir)
    assert _started_before_first_finish(outcome.run_dir) == 1
    in_flight = most = 0
    for e in evs:
        if e.event_type == EventType.SPECIMEN_PROCESSING:
            in_flight += 1
            most = max(most, in_flight)
        elif e.event_type in (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED):
            in_flight -= 1
    assert most == 4
    assert sum(e.event_type == EventType.SPECIMEN_COMPLETED for e in evs) == 16


def test_no_more_in_flight_than_have_finished() -> None:
    """The rule itself (budget.admission, the one copy local and distributed runs ask)."""
    from herbdesk.extraction.budget import Admission, admission

    room = 1.0  # a budget far from reached: only the ramp holds specimens back
    assert admission(room, 0.0, 0, None, 0) is Admission.START  # the first goes alone
    assert admission(room, 0.0, 1, None, 0) is Admission.WAIT  # its cost not known yet
    assert admission(room, 0.01, 1, 0.01, 1) is Admission.WAIT  # a mean of one, for one
    assert admission(room, 0.01, 1, 0.01, 2) is Admission.START
    assert admission(room, 0.5, 3, 0.01, 50) is Admission.START  # a resume: full width
    assert admission(0.049, 0.03, 1, 0.01, 5) is Admission.PAUSE  # 0.03 + 2 x 0.01 > 0.049
    assert admission(0.051, 0.03, 1, 0.01, 5) is Admission.START
    assert admission(None, 9.0, 99, None, 0) is Admission.START  # no budget: no ramp either
