"""Request limits: pacing below a per-minute cap, and waiting out a used-up daily quota
(OpenRouter's free models) instead of failing every remaining specimen."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fakeapi import FakeApi
from helpers import api_config, events_of, run
from reliability import assert_counts_agree

from herbdesk.events.types import Event, EventType
from herbdesk.extraction import limits
from herbdesk.extraction.config import RunConfig, RunOutcome
from herbdesk.extraction.engines import openrouter
from herbdesk.extraction.engines.base import EngineError, EngineSettings, ErrorKind
from herbdesk.extraction.engines.openrouter import classify_status
from herbdesk.extraction.limits import (
    RequestPacer,
    default_requests_per_minute,
    is_quota_exhausted,
    seconds_until_reset,
)
from herbdesk.extraction.pipeline import Pipeline
from herbdesk.runstate.state import RunState


def test_pacer_spaces_request_starts_across_callers() -> None:
    now = [100.0]
    pacer = RequestPacer(20, clock=lambda: now[0])  # one every 3 s
    assert [pacer.reserve() for _ in range(3)] == [0.0, 3.0, 6.0]
    now[0] = 120.0  # long idle: no debt carried over
    assert pacer.reserve() == 0.0
    with pytest.raises(ValueError):
        RequestPacer(0)


def test_only_free_models_are_paced_by_default() -> None:
    free = EngineSettings(engine="openrouter", model="qwen/qwen2.5-vl-72b-instruct:free")
    assert default_requests_per_minute(free) == pytest.approx(18.0)
    assert default_requests_per_minute(EngineSettings(engine="openrouter")) == pytest.approx(18.0)
    paid = EngineSettings(engine="openrouter", model="openai/gpt-4o")
    assert default_requests_per_minute(paid) is None
    proxied = EngineSettings(engine="openrouter", model="x:free", base_url="http://127.0.0.1:9/v1")
    assert default_requests_per_minute(proxied) == pytest.approx(18.0)  # told by the name
    local = EngineSettings(engine="openrouter", model="llava", base_url="http://127.0.0.1:9/v1")
    assert default_requests_per_minute(local) is None
    assert default_requests_per_minute(EngineSettings(engine="ocr")) is None


def _said(status: int, message: str, **headers: str) -> EngineError:
    resp = httpx.Response(status, headers=headers, json={"error": {"message": message}})
    return classify_status(resp, "chat/completions")


def test_quota_is_told_apart_from_a_burst_limit() -> None:
    """Only the provider's word makes a quota: its free-model cap, or X-RateLimit-Remaining 0
    with a reset far off; a long Retry-After or "daily" in the text from any server is not."""
    day = _said(429, "Rate limit exceeded: free-models-per-day")
    assert is_quota_exhausted(day)
    hour_ms = str(int((time.time() + 3600) * 1000))
    assert is_quota_exhausted(
        _said(429, "slow", **{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": hour_ms})
    )
    assert not is_quota_exhausted(_said(429, "slow", **{"Retry-After": "3600"}))
    assert not is_quota_exhausted(_said(429, "daily limit, try again later"))
    soon_ms = str(int((time.time() + 30) * 1000))
    burst = _said(429, "slow", **{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": soon_ms})
    assert not is_quota_exhausted(burst) and 25 < (burst.retry_after or 0) <= 30
    left = {"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": hour_ms}
    assert not is_quota_exhausted(_said(429, "slow", **left))
    assert not is_quota_exhausted(_said(503, "free-models-per-day"))
    assert not is_quota_exhausted(EngineError(ErrorKind.SERVER, "x", retry_after=9999, quota=True))
    # no reset given: the next UTC midnight (plus a margin)
    noon = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()
    wait = seconds_until_reset(day, now=noon)
    assert wait == pytest.approx(12 * 3600 + limits.RESET_MARGIN_S)


def test_used_up_quota_pauses_the_run_and_loses_nothing(
    tmp_path: Path, many_images, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "RESET_MARGIN_S", 0.1)
    images = many_images(6)
    with FakeApi(script=["good", "quota:1.5"]) as api:
        t0 = time.monotonic()
        outcome, p = run(api_config(images, tmp_path / "runs", api.base_url, concurrency=2))
        took = time.monotonic() - t0
    assert outcome.status == "completed", outcome.message
    evs = events_of(p.run_dir)
    types = [e.event_type for e in evs]
    assert types.count(EventType.SPECIMEN_COMPLETED) == 6
    assert EventType.SPECIMEN_FAILED not in types
    paused = [e for e in evs if e.event_type == EventType.EXTRACTION_PAUSED]
    resumed = [e for e in evs if e.event_type == EventType.EXTRACTION_RESUMED]
    assert len(paused) == 1 and len(resumed) == 1
    assert (
        paused[0].data["reason"] == "quota" and "free-models-per-day" in paused[0].data["message"]
    )
    assert types.index(EventType.EXTRACTION_PAUSED) < types.index(EventType.EXTRACTION_RESUMED)
    # the quota answer cost the specimen no attempt, and nothing was sent while paused
    done = [e for e in evs if e.event_type == EventType.SPECIMEN_COMPLETED]
    assert all(e.data["attempts"] == 1 for e in done)
    # the wait is not the specimen's processing time
    assert all(e.data["processing_time_ms"] < 1000 for e in done)
    assert api.state.served.count("quota:1.5") == 1 and api.state.chat_requests == 7
    gap = max(b - a for a, b in itertools.pairwise(api.state.arrivals))
    assert gap >= 1.4 and took >= 1.4
    # the refused specimen is shown waiting for the reset, with the quota's error, not as
    # still being processed
    waits = [e for e in evs if e.event_type == EventType.SPECIMEN_RETRYING]
    assert len(waits) == 1 and waits[0].data["reason"] == "quota"
    assert waits[0].data["attempt"] == 0 and 0 < waits[0].data["delay_s"] <= 1.7
    assert "free-models-per-day" in waits[0].data["error"]["message"]
    # what the window and `summary` make of it while paused, and after
    st = RunState()
    st.apply_batch(evs[: types.index(EventType.SPECIMEN_RETRYING) + 1])
    row = st.row_of[waits[0].specimen_id]
    assert st.row_status[row] == "retrying" and "free-models-per-day" in st.error[row]
    st = RunState()
    st.apply_batch(evs[: types.index(EventType.EXTRACTION_PAUSED) + 1])
    assert st.paused and "waits until" in st.pause_message
    st.apply_batch(evs[types.index(EventType.EXTRACTION_PAUSED) + 1 :])
    assert not st.paused and st.pause_message == "" and st.succeeded == 6


def test_stop_during_a_quota_wait_is_prompt_and_resumable(tmp_path: Path, many_images) -> None:
    images = many_images(3)
    with FakeApi(script=["quota:3600"]) as api:
        p = Pipeline(api_config(images, tmp_path / "runs", api.base_url, concurrency=1))
        seen = threading.Event()
        p.subscribe(lambda e: seen.set() if e.event_type == EventType.EXTRACTION_PAUSED else None)
        box: list = []
        th = threading.Thread(target=lambda: box.append(p.run()))
        th.start()
        assert seen.wait(10)
        t0 = time.monotonic()
        p.cancel()
        th.join(10)
        assert not th.is_alive() and time.monotonic() - t0 < 3
    assert box[0].status == "cancelled"
    types = [e.event_type for e in events_of(p.run_dir)]
    assert EventType.SPECIMEN_FAILED not in types and EventType.SPECIMEN_COMPLETED not in types


def test_requests_are_paced_across_workers(tmp_path: Path, many_images) -> None:
    images = many_images(5)
    with FakeApi() as api:
        cfg = api_config(
            images, tmp_path / "runs", api.base_url, concurrency=4, requests_per_minute=240
        )
        outcome, p = run(cfg)
        arrivals = list(api.state.arrivals)
    assert outcome.status == "completed"
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) == 5 and min(gaps) >= 0.24, gaps  # 240/min: one every 0.25 s
    started = next(e for e in events_of(p.run_dir) if e.event_type == EventType.EXTRACTION_STARTED)
    assert started.data["config"]["requests_per_minute"] == 240


def test_user_and_quota_pauses_come_and_go_independently() -> None:
    from herbdesk.events.types import Event

    def ev(et: str, seq: int, **data: object) -> Event:
        return Event(event_type=et, run_id="r", seq=seq, timestamp="", data=data)

    quota = {"reason": "quota", "message": "quota used up; waits until 00:00 UTC"}
    st = RunState()
    st.apply(ev(EventType.EXTRACTION_STARTED, 1, total=10))
    st.apply(ev(EventType.EXTRACTION_PAUSED, 2, **quota))
    assert st.eta_s(now=1e9) is None  # no ETA while a quota holds the run
    from herbdesk.ui.eventlog import summarize

    line = summarize(ev(EventType.EXTRACTION_PAUSED, 2, until="2026-11-28T00:00:30Z", **quota))
    assert line.startswith("paused (quota) until 2026-11-28T00:00:30Z — quota used up")
    st.apply(ev(EventType.EXTRACTION_PAUSED, 3))  # the user pauses too
    st.apply(ev(EventType.EXTRACTION_RESUMED, 4))  # ... and resumes: the quota still holds
    assert st.paused and st.pause_message == quota["message"]
    st.apply(ev(EventType.EXTRACTION_RESUMED, 5, reason="quota"))
    assert not st.paused and st.pause_message == ""
    st.apply(ev(EventType.EXTRACTION_PAUSED, 6))  # a user pause held across a quota reset
    st.apply(ev(EventType.EXTRACTION_PAUSED, 7, **quota))
    st.apply(ev(EventType.EXTRACTION_RESUMED, 8, reason="quota"))
    assert st.paused and st.pause_message == ""


def test_absurd_reset_times_wait_a_day_at_most_and_never_raise() -> None:
    noon = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()
    until_midnight = 12 * 3600 + limits.RESET_MARGIN_S
    for ra in (1e12, float("inf"), 40 * 3600.0):
        err = EngineError(ErrorKind.RATE_LIMITED, "HTTP 429: used up", retry_after=ra, quota=True)
        assert is_quota_exhausted(err)
        assert seconds_until_reset(err, now=noon) == pytest.approx(until_midnight)
    past = EngineError(ErrorKind.RATE_LIMITED, "free-models-per-day", retry_after=0.0, quota=True)
    assert seconds_until_reset(past, now=noon) == limits.PAST_RESET_WAIT_S
    events: list[tuple[str, dict]] = []

    class Sink:
        def emit(self, event_type: str, **kw: object) -> None:
            events.append((event_type, dict(kw.get("data") or {})))  # type: ignore[call-overload]

    lim = limits.RequestLimits(None, lambda s: True, Sink(), wall_clock=lambda: noon)
    err = EngineError(ErrorKind.RATE_LIMITED, "slow", retry_after=float("inf"), quota=True)
    assert lim.quota_exhausted(err)
    assert events[0][0] == EventType.EXTRACTION_PAUSED
    assert events[0][1]["until"] == "2026-11-27T00:00:30Z"


def _processing_spans(evs: list, offset: float) -> tuple[list[float], int]:
    """Monotonic times the `specimen.processing` events were logged (from their wall-clock
    timestamps), and the most specimens "processing" at once as the window and `summary`
    count them (RunState.in_flight)."""
    starts: list[float] = []
    st = RunState()
    most = 0
    for e in evs:
        if e.event_type == EventType.SPECIMEN_PROCESSING:
            starts.append(datetime.fromisoformat(e.timestamp).timestamp() - offset)
        st.apply(e)
        most = max(most, st.in_flight)
    return starts, most


def test_specimens_waiting_for_a_paced_slot_are_not_processing(tmp_path: Path, many_images) -> None:
    """With pacing, a worker holds its specimen until its slot comes: the log must call it
    "processing" only from then on, when its request really goes out."""
    images = many_images(6)
    concurrency = 3
    offset = time.time() - time.monotonic()  # wall clock minus the server's clock
    with FakeApi(delay_s=1.0) as api:  # replies overlap: several requests in flight at once
        cfg = api_config(
            images,
            tmp_path / "runs",
            api.base_url,
            concurrency=concurrency,
            requests_per_minute=120,  # one request start every 0.5 s
        )
        outcome, p = run(cfg)
        arrivals = sorted(api.state.arrivals)
        in_flight = api.state.max_in_flight
    assert outcome.status == "completed", outcome.message
    evs = events_of(p.run_dir)
    starts, most = _processing_spans(evs, offset)
    assert len(starts) == len(arrivals) == 6
    # each specimen turns "processing" just before its request reaches the server, never
    # while its worker still waits for the slot (a wait of up to 1 s here); timestamps
    # are cut to the millisecond, hence the small slack the other way
    lags = [a - s for s, a in zip(sorted(starts), arrivals, strict=True)]
    assert all(-0.01 <= lag < 0.25 for lag in lags), lags
    assert 2 <= in_flight <= concurrency
    assert most <= concurrency
    # starts are 0.5 s apart; the server notes arrivals from its own thread, late by up to a
    # few tens of ms on a loaded machine (0.483 s seen with the suite beside other work)
    assert min(b - a for a, b in itertools.pairwise(arrivals)) >= 0.45
    # the documented order still holds: queued, then processing, then the result
    for sid in {e.specimen_id for e in evs if e.specimen_id}:
        mine = [e.event_type for e in evs if e.specimen_id == sid]
        assert mine == [
            EventType.SPECIMEN_QUEUED,
            EventType.SPECIMEN_PROCESSING,
            EventType.SPECIMEN_COMPLETED,
        ]
    done = [e for e in evs if e.event_type == EventType.SPECIMEN_COMPLETED]
    assert all(e.data["processing_time_ms"] < 1500 for e in done)  # the wait is not counted
    assert next(e for e in reversed(evs)).data["started"] == 6


def test_a_stop_while_waiting_for_a_slot_never_shows_the_specimen_processing(
    tmp_path: Path, many_images
) -> None:
    images = many_images(3)
    with FakeApi() as api:
        # one request every 10 s: after the first, both workers wait for their slots
        cfg = api_config(
            images, tmp_path / "runs", api.base_url, concurrency=2, requests_per_minute=6
        )
        p = Pipeline(cfg)
        first_done = threading.Event()
        p.subscribe(
            lambda e: first_done.set() if e.event_type == EventType.SPECIMEN_COMPLETED else None
        )
        box: list = []
        th = threading.Thread(target=lambda: box.append(p.run()))
        th.start()
        assert first_done.wait(10)
        st = RunState()
        st.apply_batch(events_of(p.run_dir))
        assert st.in_flight == 0  # the ones waiting for their slots are still just queued
        t0 = time.monotonic()
        p.cancel()
        th.join(10)
        assert not th.is_alive() and time.monotonic() - t0 < 3
        assert api.state.chat_requests == 1
    assert box[0].status == "cancelled"
    evs = events_of(p.run_dir)
    types = [e.event_type for e in evs]
    assert types.count(EventType.SPECIMEN_PROCESSING) == 1
    skipped = [e for e in evs if e.event_type == EventType.SPECIMEN_SKIPPED]
    # the second worker's specimen waited for its slot; the first worker may or may not have
    # taken the third before the stop
    assert 1 <= len(skipped) <= 2 and all(e.data["reason"] == "stopped" for e in skipped)
    processing = {e.specimen_id for e in evs if e.event_type == EventType.SPECIMEN_PROCESSING}
    assert not processing & {e.specimen_id for e in skipped}
    assert evs[-1].data["started"] == 1


def _run_stopping_at_pause(cfg: RunConfig, pauses: int) -> tuple[RunOutcome, Pipeline]:
    """Run, cancelling at the `pauses`-th quota pause: a run that would pause for an hour, or
    again and again, ends as cancelled instead of holding the test."""
    p = Pipeline(cfg)
    seen: list[object] = []

    def guard(e: Event) -> None:
        if e.event_type == EventType.EXTRACTION_PAUSED:
            seen.append(e)
            if len(seen) >= pauses:
                p.cancel()

    p.subscribe(guard)
    return p.run(), p


def test_a_long_retry_after_or_daily_text_is_no_quota_pause(tmp_path: Path, many_images) -> None:
    """From a server that does not say its quota is used up, a 429 with Retry-After: 3600 or
    "daily" in its text is a rate limit, retried per the usual rules: the run never pauses."""
    with FakeApi(script=["429:3600", "429_text:daily limit reached"]) as api:
        outcome, p = _run_stopping_at_pause(
            api_config(many_images(3), tmp_path / "runs", api.base_url), pauses=1
        )
    assert outcome.status == "completed", outcome.message
    evs = events_of(p.run_dir)
    types = [e.event_type for e in evs]
    assert EventType.EXTRACTION_PAUSED not in types
    retries = [e.data for e in evs if e.event_type == EventType.SPECIMEN_RETRYING]
    assert [r["error"]["kind"] for r in retries] == ["rate_limited"] * 2
    assert all("reason" not in r for r in retries)


def test_ratelimit_headers_saying_used_up_pause_until_their_reset(
    tmp_path: Path, many_images, monkeypatch: pytest.MonkeyPatch
) -> None:
    """X-RateLimit-Remaining: 0 with a reset far off (here "far" is shortened to 1 s) is the
    provider saying its quota is used up, whatever the message."""
    monkeypatch.setattr(openrouter, "QUOTA_MIN_RESET_S", 1.0)
    monkeypatch.setattr(limits, "RESET_MARGIN_S", 0.05)
    with FakeApi(script=["ratelimit:0:1.5"]) as api:
        outcome, p = run(api_config(many_images(3), tmp_path / "runs", api.base_url))
        served = list(api.state.served)
    assert outcome.status == "completed", outcome.message
    evs = events_of(p.run_dir)
    paused = [e for e in evs if e.event_type == EventType.EXTRACTION_PAUSED]
    assert len(paused) == 1 and paused[0].data["reason"] == "quota"
    assert served.count("ratelimit:0:1.5") == 1 and len(served) == 4
    done = [e for e in evs if e.event_type == EventType.SPECIMEN_COMPLETED]
    assert len(done) == 3 and all(e.data["attempts"] == 1 for e in done)


def test_a_quota_still_used_up_after_its_resets_stops_the_run(
    tmp_path: Path, many_images, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that keeps saying "used up" after each reset does not hold the run in
    pauses without end: after MAX_QUOTA_PAUSES waits in a row with nothing answered, the run
    says so and stops, losing nothing (the specimens are redone on resume)."""
    monkeypatch.setattr(limits, "MAX_QUOTA_PAUSES", 2)
    monkeypatch.setattr(limits, "RESET_MARGIN_S", 0.05)
    monkeypatch.setattr(limits, "PAST_RESET_WAIT_S", 0.05)
    with FakeApi(script=["good"], default="quota:0.5") as api:
        outcome, p = _run_stopping_at_pause(
            api_config(many_images(4), tmp_path / "runs", api.base_url), pauses=3
        )
        quota_requests = api.state.served.count("quota:0.5")
    assert (outcome.status, outcome.reason) == ("failed", "fatal_error")
    assert "quota was still used up after 2 waits" in outcome.message
    assert "free-models-per-day" in outcome.message
    evs = events_of(p.run_dir)
    types = [e.event_type for e in evs]
    paused = [e for e in evs if e.event_type == EventType.EXTRACTION_PAUSED]
    assert len(paused) == 2 and "wait 2 of at most 2" in paused[1].data["message"]
    assert types.count(EventType.EXTRACTION_RESUMED) == 2
    assert EventType.SPECIMEN_FAILED not in types  # the quota is nobody's fault
    assert types.count(EventType.SPECIMEN_COMPLETED) == 1
    assert quota_requests <= 3 * 2  # each round: at most one refusal per worker
    c = assert_counts_agree(p.run_dir)
    assert c.summary["status"] == "failed"
    # the specimen each worker held is skipped as stopped (redone on resume); the last one
    # was never taken
    skipped = [e.data for e in evs if e.event_type == EventType.SPECIMEN_SKIPPED]
    assert (c.completed, c.skipped) == (1, 2) and {d["reason"] for d in skipped} == {"stopped"}
    with FakeApi() as api:  # the quota is back: a resume finishes the rest
        again, _ = run(
            api_config(many_images(4), tmp_path / "runs", api.base_url, resume_dir=p.run_dir)
        )
    assert again.status == "completed", again.message
    done = [e for e in events_of(p.run_dir) if e.event_type == EventType.SPECIMEN_COMPLETED]
    assert len({e.specimen_id for e in done}) == 4


def test_a_reply_to_a_request_sent_before_a_quota_pause_does_not_reset_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slow reply to an early request says nothing about the quota after a pause began: it
    must not restart the count of pauses in a row (seen under load: a third pause where the
    run should have stopped after two)."""
    monkeypatch.setattr(limits, "MAX_QUOTA_PAUSES", 2)
    clock = [1_000_000.0]

    class Sink:
        def emit(self, event_type: str, **kw: object) -> None:
            pass

    stopped: list[str] = []
    lim = limits.RequestLimits(
        None, lambda s: True, Sink(), wall_clock=lambda: clock[0], give_up=stopped.append
    )
    used_up = EngineError(ErrorKind.RATE_LIMITED, "used up", retry_after=1.0, quota=True)
    early = lim.epoch  # a request goes out
    assert lim.quota_exhausted(used_up)  # pause 1 begins meanwhile
    lim.answered(early)  # the early request's reply: not evidence the quota is back
    clock[0] += 3600
    assert lim.quota_exhausted(used_up)  # pause 2
    clock[0] += 3600
    assert lim.quota_exhausted(used_up) and lim.gave_up and stopped  # the third: stop
    lim2 = limits.RequestLimits(None, lambda s: True, Sink(), wall_clock=lambda: clock[0])
    assert lim2.quota_exhausted(used_up)
    lim2.answered(lim2.epoch)  # sent after the pause began, answered: the quota is back
    for _ in range(2):
        clock[0] += 3600
        assert lim2.quota_exhausted(used_up)
    assert not lim2.gave_up
