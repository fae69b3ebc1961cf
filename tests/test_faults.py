"""Every API fault the fake server can inject, met by the real engine over real HTTP.

Each test shows what the run does with the fault (retried and recovered, a failed specimen
with its reason, or a halt with the right `extraction.failed` reason) and ends on
`assert_counts_agree`: events, raw.jsonl, metrics.jsonl, the CSV and the summary agree.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fakeapi import FakeApi
from helpers import api_config, events_of, raw_records, run
from reliability import assert_counts_agree

from herbdesk.events.types import EventType
from herbdesk.extraction.engines.openrouter import MAX_REPLY_BYTES


def _retry_kinds(run_dir: Path) -> list[str]:
    return [
        e.data["error"]["kind"]
        for e in events_of(run_dir)
        if e.event_type == EventType.SPECIMEN_RETRYING
    ]


def _finished(run_dir: Path) -> list[dict]:
    return [
        {**e.data, "type": e.event_type}
        for e in events_of(run_dir)
        if e.event_type in (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED)
    ]


def _run_script(tmp_path: Path, images: Path, script: list[str], **kw):  # type: ignore[no-untyped-def]
    api_kw = {k: kw.pop(k) for k in ("default", "revoke_after") if k in kw}
    with FakeApi(script=script, **api_kw) as api:
        outcome, _ = run(api_config(images, tmp_path / "runs", api.base_url, **kw))
        served = list(api.state.served)
    return outcome, served


# ---------------------------------------------------------------- retried and recovered


def test_429_with_retry_after_waits_as_told(tmp_path: Path, many_images) -> None:
    outcome, _ = _run_script(tmp_path, many_images(3), ["429:0.4"], concurrency=1)
    assert outcome.status == "completed"
    retry = next(
        e for e in events_of(outcome.run_dir) if e.event_type == EventType.SPECIMEN_RETRYING
    )
    assert retry.data["error"]["kind"] == "rate_limited" and retry.data["delay_s"] == 0.4
    assert _finished(outcome.run_dir)[0]["attempts"] == 2
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (3, 0)


def test_429_without_retry_after_backs_off(tmp_path: Path, many_images) -> None:
    outcome, _ = _run_script(tmp_path, many_images(3), ["429-bare", "429-bare"], concurrency=1)
    assert outcome.status == "completed"
    retries = [e for e in events_of(outcome.run_dir) if e.event_type == EventType.SPECIMEN_RETRYING]
    assert [r.data["error"]["kind"] for r in retries] == ["rate_limited"] * 2
    assert all(0 < r.data["delay_s"] <= 0.2 for r in retries)  # backoff, capped by backoff_max
    assert _finished(outcome.run_dir)[0]["attempts"] == 3
    assert_counts_agree(outcome.run_dir)


def test_5xx_burst_is_retried_and_recovers(tmp_path: Path, many_images) -> None:
    outcome, _ = _run_script(tmp_path, many_images(4), ["500", "502", "503"], concurrency=1)
    assert outcome.status == "completed"
    assert _retry_kinds(outcome.run_dir) == ["server_error"] * 3
    assert _finished(outcome.run_dir)[0]["attempts"] == 4
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (4, 0)


def test_5xx_burst_longer_than_attempts_fails_that_specimen(tmp_path: Path, many_images) -> None:
    script = ["503", "502", "500"]
    outcome, _ = _run_script(tmp_path, many_images(6), script, concurrency=1, max_attempts=3)
    assert outcome.status == "completed"  # 1 failure in 6 passes the checkpoint
    first = _finished(outcome.run_dir)[0]
    assert first["type"] == EventType.SPECIMEN_FAILED and first["attempts"] == 3
    assert first["error"]["kind"] == "server_error" and "HTTP 500" in first["error"]["message"]
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (5, 1)


def test_read_timeout_is_retried(tmp_path: Path, many_images) -> None:
    outcome, _ = _run_script(tmp_path, many_images(2), ["sleep:1.0"], concurrency=1, timeout_s=0.3)
    assert outcome.status == "completed"
    assert _retry_kinds(outcome.run_dir) == ["timeout"]
    assert_counts_agree(outcome.run_dir)


def test_connection_reset_mid_body_is_retried(tmp_path: Path, many_images) -> None:
    outcome, _ = _run_script(tmp_path, many_images(3), ["reset", "reset"], concurrency=1)
    assert outcome.status == "completed"
    assert _retry_kinds(outcome.run_dir) == ["network_error"] * 2
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (3, 0)


def test_reset_on_every_attempt_fails_the_specimen(tmp_path: Path, many_images) -> None:
    outcome, _ = _run_script(tmp_path, many_images(2), ["reset"] * 3, concurrency=1, max_attempts=3)
    first = _finished(outcome.run_dir)[0]
    assert first["type"] == EventType.SPECIMEN_FAILED
    assert first["error"]["kind"] == "network_error" and first["attempts"] == 3
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (1, 1)


def test_slow_trickle_within_the_timeout_completes(tmp_path: Path, many_images) -> None:
    outcome, _ = _run_script(tmp_path, many_images(2), ["trickle:0.5"], concurrency=1, timeout_s=5)
    assert outcome.status == "completed" and _retry_kinds(outcome.run_dir) == []
    c = assert_counts_agree(outcome.run_dir)
    assert c.completed == 2


def test_endless_trickle_is_cut_at_the_request_timeout(tmp_path: Path, many_images) -> None:
    """Each piece arrives well within the read timeout, but the request as a whole may not
    outlast `timeout_s`: a live-but-stalled server must not hold a worker forever."""
    t0 = time.monotonic()
    outcome, _ = _run_script(
        tmp_path, many_images(1), ["trickle:6", "good"], concurrency=1, timeout_s=1.0
    )
    assert time.monotonic() - t0 < 5.0
    assert _retry_kinds(outcome.run_dir) == ["timeout"]
    assert outcome.status == "completed"
    assert_counts_agree(outcome.run_dir)


# ---------------------------------------------------------------- recorded as failed specimens


@pytest.mark.parametrize(
    ("action", "kind", "words"),
    [
        ("empty_choices", "bad_reply", "no content"),
        ("garbage", "bad_reply", "not a JSON object"),
        ("wrong_terms", "no_fields", "no Darwin Core term"),
        ("no_terms", "no_fields", "no Darwin Core term"),
    ],
)
def test_unusable_reply_is_a_failed_specimen_with_its_reason(
    tmp_path: Path, many_images, action: str, kind: str, words: str
) -> None:
    outcome, _ = _run_script(tmp_path, many_images(6), [action], concurrency=1)
    assert outcome.status == "completed"
    first = _finished(outcome.run_dir)[0]
    assert first["type"] == EventType.SPECIMEN_FAILED and first["attempts"] == 1
    assert first["error"]["kind"] == kind and words in first["error"]["message"]
    rec = raw_records(outcome.run_dir)[0]
    assert rec["success"] is False and rec["usage"]["total_tokens"] == 1350  # paid for anyway
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (5, 1)


def test_malformed_body_is_retried_then_recorded(tmp_path: Path, many_images) -> None:
    outcome, _ = _run_script(
        tmp_path,
        many_images(6),
        ["malformed", "malformed", "malformed", "malformed"],
        concurrency=1,
        max_attempts=2,
    )
    fin = _finished(outcome.run_dir)
    assert [f["type"] for f in fin[:2]] == [EventType.SPECIMEN_FAILED] * 2
    assert fin[0]["error"]["kind"] == "server_error" and "not JSON" in fin[0]["error"]["message"]
    assert raw_records(outcome.run_dir)[0]["raw_text"].startswith('{"id": "x"')
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (4, 2)


def test_code_fenced_and_partial_replies_are_read(tmp_path: Path, many_images) -> None:
    outcome, _ = _run_script(tmp_path, many_images(3), ["fenced", "partial_terms"], concurrency=1)
    fin = _finished(outcome.run_dir)
    assert [f["fields_extracted"] for f in fin] == [9, 1, 9]  # fakeapi.record_for: 9 terms
    raw = raw_records(outcome.run_dir)
    assert raw[0]["raw_text"].startswith("Here you go:\n```json")
    assert list(raw[1]["dwc"]) == ["scientificName"]
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (3, 0)


def test_oversize_reply_fails_without_being_held_whole(tmp_path: Path, many_images) -> None:
    too_big = MAX_REPLY_BYTES + (1 << 20)
    outcome, _ = _run_script(
        tmp_path,
        many_images(6),
        [f"oversize:{too_big}", f"oversize:{MAX_REPLY_BYTES // 2}"],
        concurrency=1,
    )
    fin = _finished(outcome.run_dir)
    assert fin[0]["type"] == EventType.SPECIMEN_FAILED and fin[0]["attempts"] == 1
    assert fin[0]["error"]["kind"] == "bad_reply" and "larger than" in fin[0]["error"]["message"]
    assert fin[1]["type"] == EventType.SPECIMEN_COMPLETED  # big but within the cap: fine
    assert len(raw_records(outcome.run_dir)[0]["raw_text"] or "") <= 2000
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (5, 1)


# ---------------------------------------------------------------- halted with a reason


def test_key_revoked_after_n_requests_halts_as_fatal(tmp_path: Path, many_images) -> None:
    images = many_images(30)
    with FakeApi(revoke_after=7) as api:
        outcome, _ = run(api_config(images, tmp_path / "runs", api.base_url, concurrency=3))
        refused = api.state.refused
    assert outcome.status == "failed" and outcome.reason == "fatal_error"
    assert "auth_error" in outcome.message and "revoked" in outcome.message
    assert 1 <= refused <= 3  # only the requests already in flight meet the revoked key
    evs = events_of(outcome.run_dir)
    assert evs[-1].event_type == EventType.EXTRACTION_FAILED
    assert evs[-1].data["reason"] == "fatal_error"
    c = assert_counts_agree(outcome.run_dir)
    assert c.completed == 7 and c.failed == refused
    assert c.summary["status"] == "failed" and c.summary["reason"] == "fatal_error"


def test_model_gone_mid_run_halts_as_fatal(tmp_path: Path, many_images) -> None:
    outcome, _ = _run_script(tmp_path, many_images(20), ["good"] * 4, default="404", concurrency=1)
    assert outcome.reason == "fatal_error" and "model_not_found" in outcome.message
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (4, 1)
    assert c.queued == 20 and c.summary["reason"] == "fatal_error"


def test_payment_required_halts_after_one_request(tmp_path: Path, many_images) -> None:
    outcome, served = _run_script(tmp_path, many_images(10), [], default="402", concurrency=1)
    assert served == ["402"]
    assert outcome.reason == "fatal_error" and "payment_required" in outcome.message
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (0, 1)


def test_persistent_5xx_trips_the_breaker(tmp_path: Path, many_images) -> None:
    outcome, _ = _run_script(
        tmp_path, many_images(40), ["good"] * 6, default="503", concurrency=1, max_attempts=1
    )
    assert outcome.reason == "consecutive_failures" and "server_error" in outcome.message
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (6, 10)


def test_fault_mix_at_concurrency_8_keeps_every_count(tmp_path: Path, many_images) -> None:
    """Random faults from every recoverable family, many requests in flight."""
    images = many_images(80)
    actions = (
        "500",
        "502",
        "503",
        "429:0",
        "429-bare",
        "reset",
        "malformed",
        "empty_choices",
        "wrong_terms",
        "fenced",
        "sleep:0.6",
    )
    with FakeApi(fault_rate=0.25, fault_actions=actions, seed=7) as api:
        outcome, _ = run(
            api_config(images, tmp_path / "runs", api.base_url, concurrency=8, timeout_s=0.4)
        )
        served = list(api.state.served)
    assert outcome.status == "completed", outcome.message
    c = assert_counts_agree(outcome.run_dir)
    assert c.queued == 80 == c.completed + c.failed + c.skipped
    assert len(served) == sum(r["attempts"] for r in raw_records(outcome.run_dir))
    assert len(set(served)) > 5  # the mix really was mixed


def test_headers_dribbled_a_byte_at_a_time_are_cut_at_the_request_timeout(
    tmp_path: Path, many_images
) -> None:
    """Each header byte comes well within the read timeout, so only a wall-clock deadline on
    the whole exchange (headers included, not just the body) stops it; the cut is a timeout,
    retried as one."""
    # the dribble comes on the kept-alive connection of the first request: a reused
    # connection keeps the deadline as a new one does
    with FakeApi(script=["good", "dribble_headers:0.1", "good"]) as api:
        cfg = api_config(
            many_images(2), tmp_path / "runs", api.base_url, concurrency=1, timeout_s=0.5
        )
        outcome, _ = run(cfg)
        for _ in range(100):  # the server notices the hang-up at its next byte
            if api.state.dribbled:
                break
            time.sleep(0.05)
        dribbled = list(api.state.dribbled)
    assert _retry_kinds(outcome.run_dir) == ["timeout"]
    assert outcome.status == "completed", outcome.message
    [(sent, of)] = dribbled
    assert sent < of / 2  # the client hung up long before the headers were complete
    retry = next(
        e for e in events_of(outcome.run_dir) if e.event_type == EventType.SPECIMEN_RETRYING
    )
    assert "0.5 s" in retry.data["error"]["message"]
    assert_counts_agree(outcome.run_dir)


@pytest.mark.parametrize(
    ("code", "kind", "halts"),
    [
        ("402", "payment_required", True),
        ("401", "auth_error", True),
        ("403", "auth_error", True),
        ("429", "rate_limited", False),
        ("503", "server_error", False),
        ("odd", "server_error", False),  # no usable code: a server error, as before
    ],
)
def test_error_object_in_a_200_is_classified_by_its_code(
    tmp_path: Path, many_images, code: str, kind: str, halts: bool
) -> None:
    """OpenRouter answers some failures with HTTP 200 and `{"error": {"code": 402}}`: a
    payment halt, not a server error retried into a failed checkpoint."""
    outcome, served = _run_script(tmp_path, many_images(6), [f"error200:{code}"], concurrency=1)
    if halts:
        assert served == [f"error200:{code}"]
        assert outcome.reason == "fatal_error" and kind in outcome.message
        assert "provider said" in outcome.message
        c = assert_counts_agree(outcome.run_dir)
        assert (c.completed, c.failed) == (0, 1)
    else:
        assert outcome.status == "completed", outcome.message
        assert _retry_kinds(outcome.run_dir) == [kind]
        c = assert_counts_agree(outcome.run_dir)
        assert (c.completed, c.failed) == (6, 0)
