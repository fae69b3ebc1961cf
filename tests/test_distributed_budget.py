"""`--budget` on distributed runs, against a real redis-server and the fake API (each good reply
costs $0.0012): workers admit specimens by the local run's rule over the run's counters on the
broker, the run pauses once, the enqueuer exits 7, and a reopening with a higher budget
finishes it without paying for anything twice."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from fakeapi import FakeApi
from helpers import api_config
from test_alerts import Hook
from test_distributed import (  # noqa: F401  (redis_url, client: fixtures)
    ROOT,
    _env,
    _serve,
    _stream_events,
    _wait_all,
    _worker,
    client,
    redis_url,
)

from herbdesk.distributed.broker import RedisRun
from herbdesk.distributed.enqueue import enqueue_run
from herbdesk.events.types import EventType
from herbdesk.extraction import runfiles

COST = 0.0012  # tests/fakeapi.py's good reply
BUDGET = 0.0042  # 3.5 replies: with the cost known, a fourth never fits


def _types(events: list[Any]) -> Counter[str]:
    return Counter(e.event_type for e in events)


def _herbdesk(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "herbdesk", *args],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_distributed_run_pauses_at_its_budget_exits_7_and_goes_on_when_raised(
    redis_url: str,  # noqa: F811
    client: Any,  # noqa: F811
    many_images: Any,
    tmp_path: Path,
) -> None:
    """Two worker processes share one budget: the run records what the rule admits (one
    alone before any cost is known, then only while recorded + in flight + 1 replies fit:
    3 in all), pauses once with an alert, and `herbdesk run --broker` exits 7; reopened
    with a higher budget it finishes, each sheet requested once over both stretches."""
    imgs = many_images(12)
    hook = Hook()
    try:
        with FakeApi(delay_s=0.1) as api:
            workers = [_worker(redis_url, "b", f"w{i}", concurrency=1) for i in range(2)]
            for w in workers:
                assert w.stderr is not None and b"serving" in w.stderr.readline()
            common = ("--engine", "openrouter", "--model", "test/vision-model")
            alert = ("--alert-webhook", hook.url("generic"), "--alert-webhook-format", "generic")
            run = _herbdesk(
                "run",
                str(imgs),
                "--broker",
                redis_url,
                *common,
                "--base-url",
                api.base_url,
                "--run-id",
                "b",
                "--out",
                str(tmp_path / "runs"),
                "--budget",
                str(BUDGET),
                *alert,
                "--alert-on",
                "paused,halted",
            )
            _, err = run.communicate(timeout=60)
            _wait_all(workers, 30)  # --run-id workers exit once the run ended
            assert run.returncode == 7, err.decode()
            paid_before = api.state.chat_requests
            events = _stream_events(client, "b")
            r = RedisRun(client, "b")
            recorded = [orjson.loads(v) for v in client.hvals(r.keys.results)]
            # the rule, and no more: 3 x $0.0012 within $0.0042
            assert len(recorded) == 3 and paid_before == 3
            assert sum(x["cost_usd"] for x in recorded) == pytest.approx(3 * COST)
            n = _types(events)
            assert n[EventType.EXTRACTION_PAUSED] == 1 and n[EventType.EXTRACTION_FAILED] == 1
            assert n[EventType.SPECIMEN_PROCESSING] == 3
            assert n[EventType.SPECIMEN_COMPLETED] == 3
            (pause,) = [e for e in events if e.event_type == EventType.EXTRACTION_PAUSED]
            assert pause.data["reason"] == "budget" and pause.data["budget_usd"] == BUDGET
            # 2 recorded and 1 in flight, or all 3 recorded, when the 4th was refused
            paused_at = round(pause.data["cost_usd"] / COST)
            assert paused_at in (2, 3) and pause.data["cost_usd"] == pytest.approx(paused_at * COST)
            assert "--broker" in pause.data["message"] and "--resume" in pause.data["message"]
            (end,) = [e for e in events if e.event_type == EventType.EXTRACTION_FAILED]
            assert end.data["reason"] == "budget" and end.seq > pause.seq
            # the ones in flight at the pause finished and were recorded, nothing else started
            # (3 processed, 3 completed above; one admitted before the pause may reach its
            # request after it: a budget pause stops nothing it admitted)
            after = [e.event_type for e in events if e.seq > pause.seq]
            assert after.count(EventType.SPECIMEN_COMPLETED) == 3 - paused_at
            assert r.in_flight() == 0
            text = err.decode()
            assert f"PAUSED: The run's cost ${paused_at * COST:.4f}" in text
            assert "budget $0.0042" in text
            # it ends as a pause, with the final spend (the in-flight one's cost in it, which
            # the terminal event, emitted at the pause, cannot know) and the broker's way on
            assert "FAILED" not in text, text
            assert "3 processed, 3 succeeded, 0 failed; spent $0.0036 of $0.0042" in text
            go_on = f"--resume {tmp_path / 'runs' / 'b'} --broker {redis_url} --budget HIGHER"
            assert go_on in text
            # the mirror holds every record, the in-flight one too, and the end
            run_dir = tmp_path / "runs" / "b"
            assert len((run_dir / runfiles.RAW).read_bytes().splitlines()) == 3
            meta = runfiles.read_run_json(run_dir)
            assert meta["status"] == "failed" and meta["reason"] == "budget"
            # one alert, as a local run's: the pause, saying how this run goes on
            deadline = time.monotonic() + 10
            while not hook.bodies() and time.monotonic() < deadline:
                time.sleep(0.05)
            (body,) = hook.bodies()
            assert body["kind"] == "paused" and body["reason"] == "budget"
            assert "--broker" in body["text"] and "--budget HIGHER" in body["text"]
            assert any(e.event_type == EventType.ALERT_SENT for e in _stream_events(client, "b"))

            # `herbdesk tail` of the run ends as the enqueuer did (its mirror in tmp_path)
            tail_cmd = ("tail", f"{redis_url}/b", "--print", "--until-done")
            tail = subprocess.run(
                [sys.executable, "-m", "herbdesk", *tail_cmd],
                env={**_env(), "HERBDESK_MIRROR_DIR": str(tmp_path / "tailed")},
                capture_output=True,
                timeout=30,
            )
            assert tail.returncode == 7, tail.stderr.decode()
            assert b"PAUSED AT BUDGET" in tail.stdout and b"failed (budget)" not in tail.stdout

            # a resume without a new budget is refused
            bad = _herbdesk("run", "--resume", str(run_dir), "--broker", redis_url)
            _, bad_err = bad.communicate(timeout=30)
            assert bad.returncode == 2 and b"--budget USD" in bad_err

            # a higher budget reopens it; workers started then finish it
            again = _herbdesk(
                "run", "--resume", str(run_dir), "--broker", redis_url, "--budget", "1"
            )
            assert again.stderr is not None
            first = again.stderr.readline()
            assert b"goes on with a budget of $1.0000" in first, first
            workers = [_worker(redis_url, "b", f"v{i}", concurrency=1) for i in range(2)]
            _, rest = again.communicate(timeout=60)
            err2 = first + rest
            _wait_all(workers, 30)
            assert again.returncode == 0, err2.decode()
            paid = api.state.chat_requests
    finally:
        hook.close()
    assert paid == 12  # each sheet paid for once over both stretches
    events = _stream_events(client, "b")
    done = [e for e in events if e.event_type == EventType.SPECIMEN_COMPLETED]
    assert len(done) == 12 and len({e.specimen_id for e in done}) == 12
    n = _types(events)
    assert n[EventType.EXTRACTION_PAUSED] == 1 and n[EventType.EXTRACTION_COMPLETED] == 1
    (resumed,) = [
        e for e in events if e.event_type == EventType.EXTRACTION_STARTED and e.data["resumed"]
    ]
    assert resumed.data["cost_before_usd"] == pytest.approx(3 * COST)
    assert resumed.data["config"]["budget_usd"] == 1.0
    assert client.hlen(RedisRun(client, "b").keys.results) == 12
    raw = (tmp_path / "runs" / "b" / runfiles.RAW).read_bytes().splitlines()
    assert len({orjson.loads(x)["specimen_id"] for x in raw}) == 12
    assert runfiles.read_run_json(tmp_path / "runs" / "b")["status"] == "completed"
    # the pause, the reopening's started and the alert outcomes are events of the schema
    schema = orjson.loads((ROOT / "herbdesk/schemas/event.schema.json").read_bytes())
    validator = jsonschema.Draft202012Validator(schema)
    for line in (tmp_path / "runs" / "b" / runfiles.EVENTS).read_bytes().splitlines():
        validator.validate(orjson.loads(line))


def test_a_run_without_a_budget_is_not_held_back(
    client: Any,  # noqa: F811
    many_images: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-test-good")
    with FakeApi() as api:
        enqueue_run(client, api_config(many_images(8), tmp_path, api.base_url, run_id="nb"), "x")
        _serve(client, "nb")
        paid = api.state.chat_requests
    events = _stream_events(client, "nb")
    n = _types(events)
    assert n[EventType.SPECIMEN_COMPLETED] == 8 and n[EventType.EXTRACTION_COMPLETED] == 1
    assert not n[EventType.EXTRACTION_PAUSED] and paid == 8
    r = RedisRun(client, "nb")
    assert r.in_flight() == 0
    assert r.cost_so_far() == pytest.approx((8 * COST, COST))


def test_a_killed_workers_in_flight_lease_lapses(
    client: Any,  # noqa: F811
    many_images: Any,
    tmp_path: Path,
) -> None:
    """A worker killed mid-specimen never releases it: its lease lapses, so the budget stops
    counting it (and room opens again) instead of holding the run back forever. Here the run's
    first specimen dies with its worker: the next one, which waits for the first cost (the
    mean not known yet), starts once that lease lapsed, not never."""
    with FakeApi() as api:
        cfg = api_config(many_images(2), tmp_path, api.base_url, run_id="lease", budget_usd=1.0)
        enqueue_run(client, cfg, "x")
    r = RedisRun(client, "lease")
    assert r.admit("dead|1-0", lease_s=0.3)
    t0 = time.monotonic()
    gave_up = [False]

    def stop_soon() -> bool:  # a worker told to stop gives up waiting
        gave_up[0] = time.monotonic() - t0 > 0.1
        return gave_up[0]

    assert not r.admit("other|3-0", lease_s=30, should_stop=stop_soon) and gave_up[0]
    assert r.in_flight_entries() == {b"1-0"}  # one at a time while no cost is known
    assert r.admit("live|2-0", lease_s=30)  # waits for the dead one's lease to lapse
    assert time.monotonic() - t0 >= 0.25
    r.renew({"live|2-0"}, lease_s=30)  # only the live worker's heartbeat
    time.sleep(0.5)
    assert r.in_flight() == 1 and r.in_flight_entries() == {b"2-0"}
    r.release("live|2-0")
    assert r.in_flight() == 0
