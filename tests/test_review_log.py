"""Review verdicts appended to a run's events.jsonl: seq continues, one writer at a time
(herbdesk/extraction/reviewlog.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import orjson
import pytest
from fakeapi import FakeApi
from helpers import api_config, events_of, raw_records, run

from herbdesk.events.types import EventType
from herbdesk.extraction.pipeline import Pipeline
from herbdesk.extraction.reviewlog import BusAppender, LogAppender, ReviewRefused
from herbdesk.extraction.runlock import writer_status
from herbdesk.monitor.validation import ValidationConfig
from herbdesk.quality import review as rv

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "herbdesk" / "schemas" / "event.schema.json").read_text()
)


@pytest.fixture()
def done_run(tmp_path: Path, many_images) -> Path:
    with FakeApi(script=["good"] * 4) as api:
        outcome, _ = run(api_config(many_images(4), tmp_path / "runs", api.base_url))
    assert outcome.status == "completed", outcome.message
    return outcome.run_dir


def _first_record(run_dir: Path) -> tuple[str, str]:
    rec = raw_records(run_dir)[0]
    return rec["specimen_id"], rec["dwc"]["scientificName"]["value"]


def test_verdicts_append_after_the_last_seq_and_the_writer_record_is_kept(
    done_run: Path,
) -> None:
    before = events_of(done_run)
    lock_before = (done_run / "run.lock").read_bytes()
    sid, name = _first_record(done_run)
    app = LogAppender.open(done_run)
    app.append(sid, "scientificName", rv.ACCEPT, name, "", rv.SAMPLE_RANDOM)
    app.append(sid, "locality", rv.CORRECT, "x", "Cypress Hills", rv.SAMPLE_RANDOM)
    app.close()
    after = events_of(done_run)
    assert after[: len(before)] == before  # never rewritten
    new = after[len(before) :]
    assert [e.seq for e in new] == [before[-1].seq + 1, before[-1].seq + 2]
    assert [e.event_type for e in new] == [EventType.REVIEW_ACCEPTED, EventType.REVIEW_CORRECTED]
    assert {e.run_id for e in new} == {before[0].run_id}
    for line in (done_run / "events.jsonl").read_bytes().splitlines():
        jsonschema.validate(orjson.loads(line), SCHEMA)
    # the review was no writer of the run: tail and summary still see the run's own writer
    assert (done_run / "run.lock").read_bytes() == lock_before
    ledger = rv.read_verdicts(done_run / "events.jsonl")
    assert ledger.of(sid)["locality"].value == "Cypress Hills"


def test_a_second_review_in_this_process_is_refused_until_the_first_closes(
    done_run: Path,
) -> None:
    first = LogAppender.open(done_run)
    with pytest.raises(ReviewRefused, match="still being written"):
        LogAppender.open(done_run)
    first.close()
    LogAppender.open(done_run).close()


def test_a_log_another_process_writes_is_refused_until_that_writer_is_gone(
    done_run: Path,
) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from herbdesk.extraction.runlock import RunLock; "
            f"lock = RunLock.acquire({str(done_run)!r}); print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ReviewRefused) as info:
            LogAppender.open(done_run)
        assert f"pid {holder.pid}" in str(info.value)
        lines = (done_run / "events.jsonl").read_bytes()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
    assert (done_run / "events.jsonl").read_bytes() == lines  # nothing appended meanwhile
    assert writer_status(done_run).state == "dead"
    sid, name = _first_record(done_run)
    app = LogAppender.open(done_run)  # the writer is gone: the lock is free
    app.append(sid, "scientificName", rv.REJECT, name, "", rv.SAMPLE_RISK)
    app.close()
    assert events_of(done_run)[-1].event_type == EventType.REVIEW_REJECTED
    assert writer_status(done_run).state == "dead"  # still the dead writer, not the review


def test_a_writer_on_another_host_with_a_fresh_heartbeat_is_refused(done_run: Path) -> None:
    lock = done_run / "run.lock"
    lock.write_bytes(orjson.dumps({"host": "elsewhere.invalid", "pid": 4242, "started": "x"}))
    log = done_run / "events.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    ended = lines[-1]
    assert b"extraction.completed" in ended
    log.write_bytes(b"".join(lines[:-1]))  # not ended yet
    with pytest.raises(ReviewRefused, match=r"elsewhere\.invalid"):
        LogAppender.open(done_run)
    log.write_bytes(b"".join(lines))  # ended: its writer appends nothing more of the run
    LogAppender.open(done_run).close()
    old = time.time() - 3600
    os.utime(lock, (old, old))
    log.write_bytes(b"".join(lines[:-1]))
    LogAppender.open(done_run).close()  # silent an hour: gone


def test_a_raw_jsonl_without_an_event_log_is_refused(tmp_path: Path) -> None:
    (tmp_path / "raw.jsonl").write_text("{}\n")
    with pytest.raises(ReviewRefused, match=r"no events\.jsonl"):
        LogAppender.open(tmp_path)


def test_a_live_run_takes_verdicts_through_its_own_bus(tmp_path: Path, many_images) -> None:
    lenient = ValidationConfig(checkpoint_threshold=0.0, quality_threshold=0.0)
    with FakeApi(script=["good", *["sleep:0.4"] * 5]) as api:
        pipeline = Pipeline(
            api_config(many_images(6), tmp_path / "runs", api.base_url, concurrency=1,
                       validation=lenient, timeout_s=10.0)
        )  # fmt: skip
        done = threading.Event()
        first: list = []

        def first_done(ev) -> None:
            if ev.event_type == EventType.SPECIMEN_COMPLETED and not first:
                first.append(ev)
                done.set()

        pipeline.subscribe(first_done)
        result: list = []
        t = threading.Thread(target=lambda: result.append(pipeline.run()))
        t.start()
        assert done.wait(20)
        # while the run lives, its directory is locked: only its bus may append
        with pytest.raises(ReviewRefused):
            LogAppender.open(pipeline.run_dir)
        app = BusAppender(pipeline)
        sid = first[0].specimen_id
        for term in ("scientificName", "eventDate", "locality"):
            app.append(sid, term, rv.ACCEPT, "v", "", rv.SAMPLE_RANDOM)
        t.join(60)
    assert result and result[0].status == "completed", result
    with pytest.raises(ReviewRefused, match="just ended"):
        app.append(sid, "country", rv.ACCEPT, "v", "", rv.SAMPLE_RANDOM)
    evs = events_of(pipeline.run_dir)
    assert [e.seq for e in evs] == list(range(1, len(evs) + 1))  # one writer: no gap, no clash
    review = [e for e in evs if e.event_type == EventType.REVIEW_ACCEPTED]
    assert [e.data["term"] for e in review] == ["scientificName", "eventDate", "locality"]
    assert review[0].seq < evs[-1].seq  # among the run's events, before its end
    LogAppender.open(pipeline.run_dir).close()  # ended: now the window appends itself


def test_a_review_does_not_move_the_runs_last_event(done_run: Path) -> None:
    """`summary` read a review done days later as the run's last event (and its duration)."""
    from herbdesk.runstate.load import load_state

    before, _ = load_state(done_run)
    sid, name = _first_record(done_run)
    app = LogAppender.open(done_run)
    app.append(sid, "scientificName", rv.ACCEPT, name, "", rv.SAMPLE_RANDOM)
    app.close()
    after, _ = load_state(done_run)
    assert after.events == before.events + 1  # the verdict is read
    assert (after.first_ts, after.last_ts) == (before.first_ts, before.last_ts)
    assert after.elapsed_s() == before.elapsed_s()
