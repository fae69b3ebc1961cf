"""Distributed runs against a real redis-server on 127.0.0.1 and worker processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fakeapi import FakeApi
from helpers import api_config, raw_records

from herbdesk.distributed.broker import RedisRun, event_from_entry
from herbdesk.distributed.enqueue import enqueue_run
from herbdesk.distributed.keys import GROUP, connect, parse_run_target, redact_url
from herbdesk.events.types import EventType
from herbdesk.monitor.validation import ValidationConfig

ROOT = Path(__file__).resolve().parents[1]
REDIS_BIN = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(
    REDIS_BIN is None, reason="redis-server not installed (Debian package redis-server)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert REDIS_BIN is not None
    d = tmp_path_factory.mktemp("redis")
    port = _free_port()
    proc = subprocess.Popen(
        [
            REDIS_BIN,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(d),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = connect(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.05)
    yield url
    proc.kill()
    proc.wait(5)


@pytest.fixture()
def client(redis_url: str) -> Any:
    c = connect(redis_url)
    c.flushall()
    return c


def _env() -> dict[str, str]:
    return {**os.environ, "OPENROUTER_API_KEY": "sk-test-good", "PYTHONPATH": str(ROOT)}


def _worker(
    url: str, run_id: str, name: str, concurrency: int = 2, claim_idle: float = 60.0
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "herbdesk",
            "worker",
            "--broker",
            url,
            "--run-id",
            run_id,
            "--concurrency",
            str(concurrency),
            "--claim-idle",
            str(claim_idle),
            "--name",
            name,
        ],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _stream_events(client: Any, run_id: str) -> list[Any]:
    return [event_from_entry(f) for _, f in client.xrange(RedisRun(client, run_id).keys.events)]


def _wait_all(procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        p.wait(max(0.1, deadline - time.monotonic()))


def _ts(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _check_exact(events: list[Any], n: int, failed: int = 0) -> None:
    """No loss, no double count, seq strictly increasing, one terminal event; `failed` of the
    n specimens end as specimen.failed, the rest as specimen.completed."""
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    finished = [
        e
        for e in events
        if e.event_type in (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED)
    ]
    assert len(finished) == n
    assert len({e.specimen_id for e in finished}) == n
    assert sorted(e.sequence for e in finished) == list(range(1, n + 1))
    assert sum(1 for e in finished if e.event_type == EventType.SPECIMEN_FAILED) == failed
    terminal = [e for e in events if e.event_type == EventType.EXTRACTION_COMPLETED]
    assert len(terminal) == 1 and terminal[0].data["processed"] == n
    assert terminal[0].data["failed"] == failed and terminal[0].data["succeeded"] == n - failed
    assert not [e for e in events if e.event_type == EventType.EXTRACTION_FAILED]


def test_redact_and_parse_target() -> None:
    assert redact_url("redis://:s3cret@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_url("rediss://u:s3cret@h:6380/1") == "rediss://u:***@h:6380/1"
    assert "s3cret" not in redact_url("unix:///tmp/r.sock?db=0&password=s3cret")
    assert parse_run_target("redis://:pw@h:6379/2/run-x") == ("redis://:pw@h:6379/2", "run-x")
    with pytest.raises(ValueError) as exc:
        parse_run_target("redis://:pw@h:6379/run-x")
    assert "pw" not in str(exc.value)


@pytest.mark.parametrize("n_workers", [2, 4])
def test_workers_in_processes_count_exactly(
    n_workers: int, redis_url: str, client: Any, many_images: Any, tmp_path: Path
) -> None:
    imgs = many_images(40)
    with FakeApi(delay_s=0.05) as api:
        # workers first (they wait for the run), so every process is up when work arrives
        workers = [_worker(redis_url, "r", f"w{i}") for i in range(n_workers)]
        for w in workers:
            assert w.stderr is not None and b"serving" in w.stderr.readline()
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "herbdesk",
                "run",
                str(imgs),
                "--broker",
                redis_url,
                "--engine",
                "openrouter",
                "--model",
                "test/vision-model",
                "--base-url",
                api.base_url,
                "--run-id",
                "r",
                "--out",
                str(tmp_path / "runs"),
                "--quiet",
            ],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _wait_all(workers, 30)
        _, err = run.communicate(timeout=15)
    assert run.returncode == 0, err.decode()
    events = _stream_events(client, "r")
    _check_exact(events, 40)
    by = Counter(
        e.data.get("worker", "")[:2]
        for e in events
        if e.event_type == EventType.SPECIMEN_PROCESSING
    )
    assert len(by) == n_workers, by  # every process took work
    assert client.hlen(RedisRun(client, "r").keys.results) == 40
    # the local mirror: same events, records before their events, summary works
    run_dir = tmp_path / "runs" / "r"
    recs = raw_records(run_dir)
    assert len(recs) == 40 and len({r["specimen_id"] for r in recs}) == 40
    mirrored = [orjson.loads(x) for x in (run_dir / "events.jsonl").read_bytes().splitlines()]
    assert [m["seq"] for m in mirrored] == [e.seq for e in events]
    assert orjson.loads((run_dir / "run.json").read_bytes())["status"] == "completed"
    s = subprocess.run(
        [sys.executable, "-m", "herbdesk", "summary", str(run_dir), "--json"],
        env=_env(),
        capture_output=True,
        timeout=30,
    )
    assert s.returncode == 0 and b"40" in s.stdout


def test_killed_worker_is_reclaimed(
    client: Any, redis_url: str, many_images: Any, tmp_path: Path
) -> None:
    imgs = many_images(30)
    with FakeApi(delay_s=0.3) as api:
        enqueue_run(client, api_config(imgs, tmp_path, api.base_url, run_id="k"), redis_url)
        victim = _worker(redis_url, "k", "victim", concurrency=3, claim_idle=1.5)
        deadline = time.monotonic() + 15
        while (
            sum(
                1
                for e in _stream_events(client, "k")
                if e.data.get("worker", "").startswith("victim")
            )
            < 5
        ):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(victim.pid, signal.SIGKILL)  # dies with specimens in flight
        victim.wait(5)
        pending = [
            p
            for p in client.xpending_range(
                RedisRun(client, "k").keys.specimens, GROUP, "-", "+", 100
            )
            if p["consumer"].startswith(b"victim")
        ]
        others = [_worker(redis_url, "k", f"live{i}", claim_idle=1.5) for i in range(2)]
        _wait_all(others, 40)
    events = _stream_events(client, "k")
    _check_exact(events, 30)
    assert pending, "the victim held no specimen when killed"
    started_by_victim = {
        e.specimen_id
        for e in events
        if e.event_type == EventType.SPECIMEN_PROCESSING and e.data["worker"].startswith("victim")
    }
    finished = {e.specimen_id for e in events if e.event_type == EventType.SPECIMEN_COMPLETED}
    assert started_by_victim <= finished  # what it dropped was claimed and finished
    assert client.xpending(RedisRun(client, "k").keys.specimens, GROUP)["pending"] == 0


def test_halt_reaches_every_worker_within_a_second(
    client: Any, redis_url: str, many_images: Any, tmp_path: Path
) -> None:
    imgs = many_images(80)
    with FakeApi(delay_s=0.2, default="garbage") as api:
        cfg = api_config(
            imgs,
            tmp_path,
            api.base_url,
            run_id="h",
            validation=ValidationConfig(checkpoint_after=5),
        )
        enqueue_run(client, cfg, redis_url)
        workers = [_worker(redis_url, "h", f"w{i}") for i in range(4)]
        follow = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from herbdesk.cli.distributed import follow_run; from pathlib import "
                f"Path; sys.exit(follow_run({redis_url!r}, 'h', Path({str(tmp_path / 'h')!r}), "
                "quiet=True))",
            ],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not client.exists(RedisRun(client, "h").keys.control):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        halted_at = time.monotonic()
        _wait_all(workers, 5)
        exited_after = time.monotonic() - halted_at
        assert follow.wait(10) == 4  # the exit code of a run halted by validation
    events = _stream_events(client, "h")
    failed = [e for e in events if e.event_type == EventType.EXTRACTION_FAILED]
    assert len(failed) == 1 and failed[0].data["reason"] == "early_validation_failed"
    # no worker starts a specimen later than a second after the halt, and all of them exit
    # (in-flight requests take 0.2 s; the rest is process teardown on a busy machine)
    halt_ts = _ts(failed[0].timestamp)
    late = [
        e
        for e in events
        if e.event_type == EventType.SPECIMEN_PROCESSING and _ts(e.timestamp) > halt_ts + 1.0
    ]
    assert not late, "a worker took new work more than a second after the halt"
    assert exited_after < 5.0, exited_after
    assert sum(1 for e in events if e.event_type == EventType.SPECIMEN_PROCESSING) < 80


def test_tail_source_on_a_live_run(
    qtbot: Any,
    client: Any,
    redis_url: str,
    many_images: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from herbdesk.runstate.state import RunState
    from herbdesk.ui.tailing import TailSource

    monkeypatch.setenv("HERBDESK_MIRROR_DIR", str(tmp_path / "mirror"))
    imgs = many_images(20)
    state = RunState()
    statuses: list[str] = []
    with FakeApi(delay_s=0.1) as api:
        enqueue_run(client, api_config(imgs, tmp_path, api.base_url, run_id="t"), redis_url)
        pw_url = redis_url.replace("redis://", "redis://:unused@")  # redaction on the way
        src = TailSource(f"{redis_url}/t")
        assert src.run_dir == tmp_path / "mirror" / "t"
        assert "unused" not in TailSource(f"{pw_url}/t").target
        src.events_arrived.connect(state.apply_batch)
        src.status_changed.connect(statuses.append)
        src.start()
        workers = [_worker(redis_url, "t", f"w{i}") for i in range(2)]
        qtbot.waitUntil(lambda: state.status == "running" and state.succeeded > 0, timeout=15000)
        assert state.succeeded < 20  # seen live, not after the fact
        # a worker's finished event may land just after another's terminal event (the
        # record and count are atomic, the event follows): wait for both
        qtbot.waitUntil(
            lambda: state.status == "completed" and state.succeeded == 20, timeout=30000
        )
        _wait_all(workers, 10)
        src.stop()
    assert state.succeeded == 20 and state.failed == 0 and state.seq_gaps == 0
    assert any("following" in s for s in statuses)
    assert len(raw_records(tmp_path / "mirror" / "t")) == 20


def test_auth_url_password_never_shown(
    many_images: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A password-protected broker works from run, worker and tail, and its password appears
    in no output, event, run.json or mirror file."""
    assert REDIS_BIN is not None
    pw = "s3cret-Pa55"
    port = _free_port()
    server = subprocess.Popen(
        [
            REDIS_BIN,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            pw,
            "--dir",
            str(tmp_path_factory.mktemp("redis-auth")),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://:{pw}@127.0.0.1:{port}/0"
    try:
        client = connect(url)
        for _ in range(200):
            try:
                client.ping()
                break
            except Exception:
                time.sleep(0.05)
        imgs = many_images(6)
        env = {**_env(), "HERBDESK_MIRROR_DIR": str(tmp_path / "mirror")}
        with FakeApi() as api:
            enq = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "herbdesk",
                    "run",
                    str(imgs),
                    "--broker",
                    url,
                    "--engine",
                    "openrouter",
                    "--model",
                    "test/vision-model",
                    "--base-url",
                    api.base_url,
                    "--run-id",
                    "a",
                    "--out",
                    str(tmp_path / "runs"),
                    "--detach",
                ],
                env=env,
                capture_output=True,
                timeout=60,
            )
            assert enq.returncode == 0, enq.stderr.decode()
            w = _worker(url, "a", "w0")
            tail = subprocess.run(
                [sys.executable, "-m", "herbdesk", "tail", f"{url}/a", "--jsonl", "--until-done"],
                env=env,
                capture_output=True,
                timeout=60,
            )
            _, werr = w.communicate(timeout=30)
        assert tail.returncode == 0, tail.stderr.decode()
        bad = redact_url(url).encode()
        assert b"***" in bad
        outputs = [enq.stdout, enq.stderr, tail.stdout, tail.stderr, werr]
        outputs += [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
        outputs += [f[b"e"] for _, f in client.xrange(RedisRun(client, "a").keys.events)]
        outputs.append(client.get(RedisRun(client, "a").keys.manifest))
        assert all(pw.encode() not in out for out in outputs)
        assert len(raw_records(tmp_path / "mirror" / "a")) == 6
        assert tail.stdout.count(b"specimen.completed") == 6
    finally:
        server.kill()
        server.wait(5)


def test_double_processing_is_recorded_once(
    client: Any, redis_url: str, many_images: Any, tmp_path: Path
) -> None:
    """A claim timeout shorter than a request makes live workers steal each other's entries:
    specimens are processed twice, yet recorded, counted and announced once."""
    imgs = many_images(9)
    # the last request is slow: the other worker, out of new entries, claims it meanwhile
    # (with equal timings both workers could finish together and never steal)
    with FakeApi(delay_s=0.3, script=["good"] * 8 + ["sleep:2"]) as api:
        enqueue_run(client, api_config(imgs, tmp_path, api.base_url, run_id="d"), redis_url)
        workers = [_worker(redis_url, "d", f"w{i}", claim_idle=0.2) for i in range(2)]
        _wait_all(workers, 40)
        chat_requests = api.state.chat_requests
    events = _stream_events(client, "d")
    _check_exact(events, 9)
    assert chat_requests > 9  # some specimens really were extracted twice
    assert client.hlen(RedisRun(client, "d").keys.results) == 9


def test_worker_waits_out_a_used_up_quota(
    client: Any, redis_url: str, many_images: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """A daily-quota refusal pauses a worker until the reset, costs the specimen no attempt
    and fails nothing (a worker used to retry it as a burst limit and fail it, and every
    specimen after it, until the run halted at its checkpoint)."""
    import threading

    from herbdesk.distributed.worker import Worker
    from herbdesk.extraction import limits

    monkeypatch.setattr(limits, "RESET_MARGIN_S", 0.1)
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-test-good")
    imgs = many_images(4)
    with FakeApi(script=["good", "quota:1.5"]) as api:
        enqueue_run(client, api_config(imgs, tmp_path, api.base_url, run_id="q"), redis_url)
        worker = Worker(client, concurrency=1, run_id="q", block_ms=100, name="wq")
        t0 = time.monotonic()
        th = threading.Thread(target=worker.run)
        th.start()
        th.join(60)
        took = time.monotonic() - t0
        served = list(api.state.served)
    assert not th.is_alive()
    events = _stream_events(client, "q")
    _check_exact(events, 4)
    types = [e.event_type for e in events]
    assert EventType.SPECIMEN_FAILED not in types
    assert types.count(EventType.EXTRACTION_PAUSED) == 1
    assert types.count(EventType.EXTRACTION_RESUMED) == 1
    waits = [e for e in events if e.event_type == EventType.SPECIMEN_RETRYING]
    assert len(waits) == 1 and waits[0].data["reason"] == "quota"
    done = [e for e in events if e.event_type == EventType.SPECIMEN_COMPLETED]
    assert all(e.data["attempts"] == 1 for e in done)
    assert served.count("quota:1.5") == 1 and took >= 1.4


def _crashed_deliveries(client: Any, run_id: str, times: int) -> tuple[bytes, str]:
    """Deliver the run's first entry `times` times to consumers that die on it (read, then
    claimed by one dead consumer after another, never acked), as after `times` worker crashes.
    Returns the entry id and its specimen id."""
    stream = RedisRun(client, run_id).keys.specimens
    ((_, [(entry_id, fields)]),) = client.xreadgroup(GROUP, "dead-1", {stream: ">"}, count=1)
    for i in range(2, times + 1):
        # idle set past any claim-idle: a worker claims it on its first look
        client.xclaim(stream, GROUP, f"dead-{i}", 0, [entry_id], idle=3_600_000)
    (p,) = client.xpending_range(stream, GROUP, entry_id, entry_id, 1)
    assert p["times_delivered"] == times and p["time_since_delivered"] >= 1_000
    return entry_id, fields[b"specimen_id"].decode()


def _serve(client: Any, run_id: str, **kw: Any) -> Any:
    """An in-process worker serving the run to its end (claim-idle tiny: it claims at once)."""
    import threading

    from herbdesk.distributed.worker import Worker

    worker = Worker(
        client, concurrency=1, run_id=run_id, claim_idle_s=0.05, block_ms=100, name="live", **kw
    )
    th = threading.Thread(target=worker.run)
    th.start()
    th.join(60)
    assert not th.is_alive()
    return worker


def test_specimen_that_kills_every_worker_is_failed_at_the_delivery_limit(
    client: Any,
    redis_url: str,
    many_images: Any,
    tmp_path: Path,
    monkeypatch: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An entry delivered MAX_DELIVERIES times without being finished (each worker that took
    it crashed) is failed as worker_crashed on the next claim, never sent to the API again;
    the others complete and the run completes, each specimen recorded once."""
    from herbdesk.distributed.keys import MAX_DELIVERIES

    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-test-good")
    imgs = many_images(6)
    with FakeApi() as api:
        enqueue_run(client, api_config(imgs, tmp_path, api.base_url, run_id="p"), redis_url)
        _, poisoned = _crashed_deliveries(client, "p", MAX_DELIVERIES)
        with caplog.at_level("WARNING", logger="herbdesk.distributed.worker"):
            worker = _serve(client, "p")
        chat_requests = api.state.chat_requests
    events = _stream_events(client, "p")
    _check_exact(events, 6, failed=1)
    (fail,) = [e for e in events if e.event_type == EventType.SPECIMEN_FAILED]
    assert fail.specimen_id == poisoned
    err = fail.data["error"]
    assert err["kind"] == "worker_crashed"
    assert f"taken by workers {MAX_DELIVERIES} times and never finished" in err["message"]
    assert "crash or kill" in err["message"] and "Check the image" in err["message"]
    assert fail.data["success"] is False and fail.data["attempts"] == MAX_DELIVERIES
    rec = RedisRun(client, "p").stored_record(poisoned)
    assert rec is not None and rec["success"] is False and rec["error"] == err
    # not processed again: no processing event for it, and no request about it
    assert not [
        e
        for e in events
        if e.event_type == EventType.SPECIMEN_PROCESSING and e.specimen_id == poisoned
    ]
    assert chat_requests == 5
    assert worker.processed == 6
    assert client.xpending(RedisRun(client, "p").keys.specimens, GROUP)["pending"] == 0
    assert any(
        r.levelname == "WARNING" and poisoned in r.getMessage() and "5 times" in r.getMessage()
        for r in caplog.records
    )


def test_entry_at_the_delivery_limit_is_still_processed(
    client: Any, redis_url: str, many_images: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """One delivery short of the limit a claimed entry is extracted as usual; the limit is the
    worker's (`--max-deliveries`)."""
    from herbdesk.distributed.keys import MAX_DELIVERIES

    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-test-good")
    imgs = many_images(4)
    with FakeApi() as api:
        enqueue_run(client, api_config(imgs, tmp_path, api.base_url, run_id="b"), redis_url)
        _, claimed = _crashed_deliveries(client, "b", MAX_DELIVERIES - 1)
        _serve(client, "b")  # its claim is delivery MAX_DELIVERIES: not over the limit
        chat_requests = api.state.chat_requests
    events = _stream_events(client, "b")
    _check_exact(events, 4)
    assert any(
        e.event_type == EventType.SPECIMEN_COMPLETED and e.specimen_id == claimed for e in events
    )
    assert chat_requests == 4
    # a lower limit set on the worker applies to the same history
    client.flushall()
    with FakeApi() as api:
        enqueue_run(client, api_config(imgs, tmp_path, api.base_url, run_id="b2"), redis_url)
        _, claimed = _crashed_deliveries(client, "b2", 2)
        _serve(client, "b2", max_deliveries=2)
        chat_requests = api.state.chat_requests
    events = _stream_events(client, "b2")
    _check_exact(events, 4, failed=1)
    (fail,) = [e for e in events if e.event_type == EventType.SPECIMEN_FAILED]
    assert (
        fail.specimen_id == claimed and "taken by workers 2 times" in fail.data["error"]["message"]
    )
    assert chat_requests == 3


@pytest.fixture()
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-test-good")  # for in-process workers


def _served_run(client: Any, run_id: str, api: Any, imgs: Path, tmp_path: Path, **kw: Any) -> Any:
    """Enqueue a run against `api` and serve it to its end with one in-process worker."""
    enqueue_run(client, api_config(imgs, tmp_path, api.base_url, run_id=run_id, **kw), "redis://x")
    _serve(client, run_id)
    return _stream_events(client, run_id)


@pytest.mark.parametrize(
    ("action", "reason"),
    [("basis_only", "early_quality_failed"), ("identical", "identical_records")],
)
def test_distributed_runs_are_held_to_the_same_quality_rules(
    client: Any, many_images: Any, tmp_path: Path, api_key: None, action: str, reason: str
) -> None:
    """Junk that parses halts a distributed run as it halts a local one: the workers fold the
    same RunRules, kept in Redis (workers used to judge records but apply no quality rule)."""
    with FakeApi(default=action) as api:
        events = _served_run(client, f"q-{action}", api, many_images(20), tmp_path)
    (end,) = [e for e in events if e.event_type == EventType.EXTRACTION_FAILED]
    assert end.data["reason"] == reason, end.data
    started = [e for e in events if e.event_type == EventType.SPECIMEN_PROCESSING]
    assert len(started) <= 5 + 1  # decided at the checkpoint (one worker thread)
    if action == "basis_only":
        (cp,) = [e for e in events if e.event_type == EventType.QUALITY_CHECKPOINT]
        assert cp.data["status"] == "failed" and cp.data["usable_rate"] == 0.0
        assert end.data["quality"]["usable"] == 0
    else:
        assert end.data["quality"]["identical_records"] >= 2


def test_distributed_run_that_degrades_halts(
    client: Any, many_images: Any, tmp_path: Path, api_key: None
) -> None:
    script = ["good"] * 10 + ["good", "boilerplate", "placeholders"] * 30
    with FakeApi(script=script) as api:
        events = _served_run(client, "deg", api, many_images(100), tmp_path)
    (end,) = [e for e in events if e.event_type == EventType.EXTRACTION_FAILED]
    assert end.data["reason"] == "degraded", end.data


def test_distributed_run_of_varied_good_records_passes(
    client: Any, many_images: Any, tmp_path: Path, api_key: None
) -> None:
    with FakeApi() as api:
        events = _served_run(client, "fine", api, many_images(12), tmp_path)
    _check_exact(events, 12)
    (end,) = [e for e in events if e.event_type == EventType.EXTRACTION_COMPLETED]
    assert end.data["verdict"] == "passed" and end.data["quality"]["usable"] == 12
    (cp,) = [e for e in events if e.event_type == EventType.QUALITY_CHECKPOINT]
    assert cp.data["status"] == "passed"


def test_distributed_run_below_the_quality_threshold_ends_with_that_verdict(
    client: Any, many_images: Any, tmp_path: Path, api_key: None
) -> None:
    script = ["good"] * 5 + ["boilerplate"] * 10
    val = ValidationConfig(degraded_halt=False)
    with FakeApi(script=script) as api:
        events = _served_run(client, "low", api, many_images(15), tmp_path, validation=val)
    (end,) = [e for e in events if e.event_type == EventType.EXTRACTION_COMPLETED]
    assert end.data["verdict"] == "below_threshold", end.data
    assert "usable" in end.data["verdict_message"]


def test_a_claimed_specimen_is_judged_once(
    client: Any, many_images: Any, tmp_path: Path, api_key: None
) -> None:
    """A worker that died after recording a specimen but before acknowledging it: the worker
    that claims the entry settles it and folds it into the rules once, so the run completes
    (it waits until every record is judged) and the counts are exact."""
    imgs = many_images(6)
    with FakeApi() as api:
        enqueue_run(client, api_config(imgs, tmp_path, api.base_url, run_id="cl"), "redis://x")
        run = RedisRun(client, "cl")
        ((_, [(_, fields)]),) = client.xreadgroup(GROUP, "dead", {run.keys.specimens: ">"}, 1)
        sid = fields[b"specimen_id"].decode()
        # the dead worker got as far as the record: stored, not announced, not judged
        rec = {"specimen_id": sid, "image": "x.jpg", "success": True, "sequence": -1, "dwc": {}}
        assert run.record(rec, True, 10.0, None, 0, None) is not None
        _serve(client, "cl")
    events = _stream_events(client, "cl")
    _check_exact(events, 6)
    assert run.rules_folded() == 6
    assert run.rules(run.validation_config()).validation.finished == 6


def test_distributed_gold_sheets_go_first_and_wrong_answers_halt(
    client: Any, many_images: Any, tmp_path: Path, api_key: None
) -> None:
    """--gold on a distributed run: enqueued first, compared by the workers, and gold
    accuracy below the threshold halts the run (workers used to ignore the gold file)."""
    import csv

    from herbdesk.quality.judge import QualitySettings

    gold = tmp_path / "gold.csv"
    with open(gold, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "scientificName", "eventDate"])
        for i in (12, 15):  # plausible but not what the model will say
            w.writerow([f"sheet_{i:04d}.jpg", "Primula mistassinica Michx.", "1931-07-02"])
    with FakeApi() as api:
        q = QualitySettings(gold_path=gold)
        events = _served_run(client, "gold", api, many_images(20), tmp_path, quality=q)
    (end,) = [e for e in events if e.event_type == EventType.EXTRACTION_FAILED]
    assert end.data["reason"] == "gold_failed", end.data
    golds = [e for e in events if e.event_type == EventType.QUALITY_GOLD]
    assert len(golds) == 2 and all(set(g.data["terms"].values()) == {"wrong"} for g in golds)
    firsts = [e.data["image"] for e in events if e.event_type == EventType.SPECIMEN_PROCESSING]
    assert sorted(firsts[:2]) == ["sheet_0012.jpg", "sheet_0015.jpg"]
    assert len(firsts) <= 3


def test_a_worker_that_cannot_read_the_checklist_halts_the_run_clearly(
    client: Any, many_images: Any, tmp_path: Path, api_key: None
) -> None:
    from herbdesk.quality.judge import QualitySettings

    checklist = tmp_path / "names.txt"
    checklist.write_text("Carex aurea\nPrimula mistassinica\n", encoding="utf-8")
    with FakeApi() as api:
        cfg = api_config(many_images(6), tmp_path, api.base_url, run_id="cl2")
        cfg.quality = QualitySettings(checklist_path=checklist)
        enqueue_run(client, cfg, "redis://x")
        checklist.unlink()  # on the workers' side it is not there
        _serve(client, "cl2")
    events = _stream_events(client, "cl2")
    (end,) = [e for e in events if e.event_type == EventType.EXTRACTION_FAILED]
    assert end.data["reason"] == "fatal_error"
    assert "names.txt" in end.data["message"] and "quality files" in end.data["message"]
    assert not [e for e in events if e.event_type == EventType.SPECIMEN_PROCESSING]


def test_a_sheet_rewritten_after_enqueue_is_not_sent_under_its_old_id(
    client: Any, many_images: Any, tmp_path: Path, api_key: None
) -> None:
    """Workers read each sheet once and compare its hash with the enqueued id, as a local run
    does: a sheet rewritten after enqueueing fails as image_changed, with no request."""
    imgs = many_images(4)
    with FakeApi() as api:
        enqueue_run(client, api_config(imgs, tmp_path, api.base_url, run_id="chg"), "redis://x")
        victim = sorted(imgs.iterdir())[0]
        victim.write_bytes(victim.read_bytes() + b"rescanned")
        _serve(client, "chg")
        served = api.state.chat_requests
    events = _stream_events(client, "chg")
    _check_exact(events, 4, failed=1)
    (bad,) = [e for e in events if e.event_type == EventType.SPECIMEN_FAILED]
    assert bad.data["error"]["kind"] == "image_changed" and bad.data["attempts"] == 0
    assert served == 3


def test_file_names_that_are_not_utf8_run_distributed_too(
    client: Any, tmp_path: Path, api_key: None
) -> None:
    """A sheet named b'sheet\\xff.jpg' is enqueued as the file system's bytes, found again by
    the worker and written as `\\xff` in events and records (enqueue used to fail on it)."""
    from reliability import make_fake_jpegs

    images = make_fake_jpegs(tmp_path / "imgs", 3)
    bad = os.fsdecode(os.fsencode(images) + b"/sheet\xff.jpg")
    os.rename(images / "sheet_00001.jpg", bad)
    with FakeApi() as api:
        enqueue_run(client, api_config(images, tmp_path, api.base_url, run_id="u8"), "redis://x")
        _serve(client, "u8")
    events = _stream_events(client, "u8")
    _check_exact(events, 3)
    names = {e.data.get("image") for e in events if e.event_type == EventType.SPECIMEN_COMPLETED}
    assert "sheet\\xff.jpg" in names
    recs = [orjson.loads(v) for v in client.hvals(RedisRun(client, "u8").keys.results)]
    assert "sheet\\xff.jpg" in {r["image"] for r in recs}


def test_workers_start_on_the_first_entries_while_the_enqueuer_still_identifies(
    client: Any, many_images: Any, tmp_path: Path, api_key: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last image's identification waits until a worker has finished a specimen: with
    every image hashed before the first entry (as before) it waited in vain. Meanwhile the
    worker drains the stream and must not end the run: it completes only once the enqueuer
    has said how many specimens there are."""
    import threading

    from herbdesk.distributed.enqueue import Enqueuer
    from herbdesk.extraction import identify
    from herbdesk.extraction.images import read_stamped

    imgs = many_images(8)
    last = "sheet_0007.jpg"
    seen_finish: list[bool] = []

    def slow_read(path: Path) -> Any:
        if Path(path).name == last:
            deadline = time.monotonic() + 30  # a guard against a hang, not a timing assertion
            while time.monotonic() < deadline:
                types = {e.event_type for e in _stream_events(client, "st")}
                if EventType.SPECIMEN_COMPLETED in types:
                    seen_finish.append(EventType.EXTRACTION_COMPLETED not in types)
                    break
                time.sleep(0.05)
        return read_stamped(path)

    monkeypatch.setattr(identify, "read_stamped", slow_read)
    with FakeApi() as api:
        enq = Enqueuer(client, api_config(imgs, tmp_path, api.base_url, run_id="st"), "redis://x")
        started = enq.start()
        assert started.total == 8  # the scan's count, before anything is read
        streaming = threading.Thread(target=enq.stream)
        streaming.start()
        _serve(client, "st")
        streaming.join(30)
    assert seen_finish == [True]  # a specimen finished while the last image was unread
    events = _stream_events(client, "st")
    _check_exact(events, 8)
    assert events[-1].event_type == EventType.EXTRACTION_COMPLETED


def _rule_trace(events: list[Any]) -> list[tuple[str, Any, Any, int]]:
    """What the run's rules decided, and after how many finished specimens: checkpoints,
    warnings and the run's end, with their status/reason (worker and metrics events and the
    order of finishes between decisions are the transport's, not the rules')."""
    decisions = {
        EventType.VALIDATION_CHECKPOINT,
        EventType.QUALITY_CHECKPOINT,
        EventType.VALIDATION_WARNING,
        EventType.EXTRACTION_PAUSED,  # a budget pause
        EventType.EXTRACTION_COMPLETED,
        EventType.EXTRACTION_FAILED,
    }
    finished, out = 0, []
    for e in events:
        if e.event_type in (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED):
            finished += 1
        elif e.event_type in decisions:
            d = e.data
            out.append(
                (e.event_type, d.get("status"), d.get("reason") or d.get("verdict"), finished)
            )
    return out


@pytest.mark.parametrize(
    ("scenario", "script", "end"),
    [
        ("good", ["good"] * 12, EventType.EXTRACTION_COMPLETED),
        ("junk", ["basis_only"] * 12, EventType.EXTRACTION_FAILED),
        ("failing", ["500"] * 12, EventType.EXTRACTION_FAILED),
        (
            "degrading",
            ["good"] * 10 + ["good", "boilerplate", "placeholders"] * 10,
            EventType.EXTRACTION_COMPLETED,
        ),
    ],
)
def test_local_and_distributed_runs_decide_alike(
    client: Any,
    many_images: Any,
    tmp_path: Path,
    api_key: None,
    scenario: str,
    script: list[str],
    end: str | None,
) -> None:
    """The same scripted run, locally (one specimen at a time) and through the broker (one
    worker thread), meets the same rules: the same checkpoints, warnings and end, with the
    same status and reason, after the same number of finished specimens."""
    from herbdesk.events.reader import read_events
    from herbdesk.extraction.pipeline import Pipeline

    imgs = many_images(len(script))
    val = ValidationConfig()
    with FakeApi(script=script) as api:
        local_cfg = api_config(
            imgs,
            tmp_path / "local",
            api.base_url,
            run_id="same",
            concurrency=1,
            validation=val,
            max_attempts=1,
        )
        outcome = Pipeline(local_cfg).run()
        local, _ = read_events(outcome.run_dir / "events.jsonl")
    with FakeApi(script=script) as api:
        remote = _served_run(
            client,
            "same-d",
            api,
            imgs,
            tmp_path / "dist",
            concurrency=1,
            validation=val,
            max_attempts=1,
        )
    want, got = _rule_trace(local), _rule_trace(remote)
    assert want == got, f"local {want}\ndistributed {got}"
    assert want, "the rules decided nothing"
    if end is not None:
        assert want[-1][0] == end


def test_local_and_distributed_budget_pauses_decide_alike(
    client: Any, many_images: Any, tmp_path: Path, api_key: None
) -> None:
    """The same budget, locally and through the broker (one worker thread each), pauses
    after the same finished specimens, at the same cost, and ends the run the same way: one
    rule (herbdesk/extraction/budget.py admission), asked by the BudgetGate and the workers."""
    from herbdesk.events.reader import read_events
    from herbdesk.extraction.pipeline import Pipeline

    cost, budget = 0.0012, 0.0042  # the fake's reply; with that cost known, 3 fit
    imgs = many_images(8)
    kw: dict[str, Any] = {"concurrency": 1, "max_attempts": 1, "budget_usd": budget}
    with FakeApi() as api:
        outcome = Pipeline(api_config(imgs, tmp_path / "local", api.base_url, **kw)).run()
        local, _ = read_events(outcome.run_dir / "events.jsonl")
    with FakeApi() as api:
        remote = _served_run(client, "budget-d", api, imgs, tmp_path / "dist", **kw)
    want, got = _rule_trace(local), _rule_trace(remote)
    assert want == got, f"local {want}\ndistributed {got}"
    fit = int(budget / cost)
    assert want == [
        (EventType.EXTRACTION_PAUSED, None, "budget", fit),
        (EventType.EXTRACTION_FAILED, "failed", "budget", fit),
    ]
    (lp,) = [e.data for e in local if e.event_type == EventType.EXTRACTION_PAUSED]
    (rp,) = [e.data for e in remote if e.event_type == EventType.EXTRACTION_PAUSED]
    assert (lp["budget_usd"], lp["cost_usd"]) == (rp["budget_usd"], rp["cost_usd"])
    # the same words for why; each says its own way on (a local resume, a broker reopening)
    why = lp["message"].split("Raise the budget")[0]
    assert why and rp["message"].startswith(why) and "--broker" in rp["message"]
