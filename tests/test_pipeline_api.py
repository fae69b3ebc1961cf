"""End-to-end runs of the pipeline against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from fakeapi import FakeApi
from helpers import api_config, events_of, raw_records, run, types_of

from herbdesk.events.types import EventType
from herbdesk.monitor.validation import ValidationConfig
from herbdesk.runstate.load import load_state


def _assert_files_agree(run_dir: Path) -> None:
    """Counts in events, raw.jsonl, metrics.jsonl, occurrences.csv and summary agree."""
    evs = events_of(run_dir)
    done = [e for e in evs if e.event_type == EventType.SPECIMEN_COMPLETED]
    failed = [e for e in evs if e.event_type == EventType.SPECIMEN_FAILED]
    raw = raw_records(run_dir)
    assert len(raw) == len(done) + len(failed)
    assert {r["specimen_id"] for r in raw if r["success"]} == {e.specimen_id for e in done}
    with open(run_dir / "occurrences.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(done)
    metrics_lines = (run_dir / "metrics.jsonl").read_bytes().splitlines()
    assert len(metrics_lines) == len(done) + len(failed)
    state, _ = load_state(run_dir)
    s = state.summary()
    assert (s["succeeded"], s["failed"]) == (len(done), len(failed))
    assert [e.seq for e in evs] == list(range(1, len(evs) + 1))
    assert sorted(e.sequence for e in done + failed) == list(range(1, len(raw) + 1))


def test_good_run_completes_with_consistent_files(tmp_path: Path, many_images) -> None:
    images = many_images(12)
    with FakeApi() as api:
        outcome, _ = run(api_config(images, tmp_path / "runs", api.base_url, concurrency=4))
    assert outcome.status == "completed", outcome.message
    types = types_of(outcome.run_dir)
    assert types[0] == EventType.EXTRACTION_STARTED
    assert types[-1] == EventType.EXTRACTION_COMPLETED
    assert types.count(EventType.SPECIMEN_COMPLETED) == 12
    assert types.count(EventType.VALIDATION_CHECKPOINT) == 1
    _assert_files_agree(outcome.run_dir)
    rec = raw_records(outcome.run_dir)[0]
    name = rec["dwc"]["scientificName"]  # the fake model's record for that sheet
    assert name["value"] and 0 < name["confidence"] <= 1
    assert len({r["dwc"]["scientificName"]["value"] for r in raw_records(outcome.run_dir)}) > 3
    assert rec["usage"]["total_tokens"] == 1350 and rec["cost_usd"] == 0.0012
    assert outcome.metrics["cost_usd"] == round(12 * 0.0012, 6)
    assert outcome.metrics["tokens"] == 12 * 1350


def test_every_completed_event_follows_its_raw_record(tmp_path: Path, many_images) -> None:
    """A result reaches raw.jsonl before its event: check it from inside a consumer."""
    from herbdesk.extraction.pipeline import Pipeline

    images = many_images(6)
    seen_ok: list[bool] = []
    with FakeApi() as api:
        p = Pipeline(api_config(images, tmp_path / "runs", api.base_url, concurrency=3))

        def check(ev) -> None:  # type: ignore[no-untyped-def]
            if ev.event_type in (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED):
                seen_ok.append(ev.specimen_id in (p.run_dir / "raw.jsonl").read_text())

        p.subscribe(check)
        p.run()
    assert seen_ok and all(seen_ok)


def test_zero_percent_run_halts_at_first_checkpoint(tmp_path: Path, many_images) -> None:
    images = many_images(40)
    for concurrency in (1, 4):
        with FakeApi(default="garbage") as api:
            outcome, p = run(
                api_config(
                    images, tmp_path / f"runs{concurrency}", api.base_url, concurrency=concurrency
                )
            )
            requests = api.state.chat_requests
        assert outcome.status == "failed"
        assert outcome.reason == "early_validation_failed"
        assert p.started_count <= 5 + concurrency
        assert requests <= 5 + concurrency
        evs = events_of(outcome.run_dir)
        cps = [e for e in evs if e.event_type == EventType.VALIDATION_CHECKPOINT]
        assert len(cps) == 1 and cps[0].data["status"] == "failed"
        assert cps[0].data["success_rate"] == 0.0
        last = evs[-1]
        assert last.event_type == EventType.EXTRACTION_FAILED
        assert last.data["reason"] == "early_validation_failed"
        # no specimen starts after the checkpoint event
        cp_seq = cps[0].seq
        assert not [
            e for e in evs if e.event_type == EventType.SPECIMEN_PROCESSING and e.seq > cp_seq
        ]
        raw = raw_records(outcome.run_dir)
        assert all(r["raw_text"] == "I cannot read this label." for r in raw)
        assert all(r["error"]["kind"] == "bad_reply" for r in raw)
        _assert_files_agree(outcome.run_dir)


def test_missing_key_fails_in_preflight_with_nothing_attempted(tmp_path: Path, many_images) -> None:
    images = many_images(5)
    with FakeApi() as api:
        # an OpenRouter URL with no key fails before any request; a local URL asks the server
        outcome, _ = run(
            api_config(images, tmp_path / "a", "https://openrouter.ai/api/v1", key=None)
        )
        assert outcome.status == "failed" and outcome.reason == "preflight_failed"
        assert "OPENROUTER_API_KEY" in outcome.message
        outcome2, _ = run(api_config(images, tmp_path / "b", api.base_url, key=None))
        assert outcome2.reason == "preflight_failed"
        assert "refused" in outcome2.message
        assert api.state.chat_requests == 0
    for o in (outcome, outcome2):
        types = types_of(o.run_dir)
        assert EventType.SPECIMEN_PROCESSING not in types
        assert types[-1] == EventType.EXTRACTION_FAILED
        assert not (o.run_dir / "raw.jsonl").exists()


def test_refused_key_and_unknown_model_fail_preflight(tmp_path: Path, many_images) -> None:
    images = many_images(5)
    with FakeApi() as api:
        bad_key, _ = run(api_config(images, tmp_path / "a", api.base_url, key="sk-wrong"))
        bad_model, _ = run(api_config(images, tmp_path / "b", api.base_url, model="no/such-model"))
        assert api.state.chat_requests == 0
    assert bad_key.reason == "preflight_failed" and "key refused" in bad_key.message
    assert bad_model.reason == "preflight_failed" and "no/such-model" in bad_model.message


def test_unreachable_endpoint_fails_preflight(tmp_path: Path, many_images) -> None:
    outcome, _ = run(api_config(many_images(2), tmp_path, "http://127.0.0.1:9/api/v1"))
    assert outcome.reason == "preflight_failed" and "unreachable" in outcome.message


def test_429_with_retry_after_and_500s_are_retried_and_recovered(
    tmp_path: Path, many_images
) -> None:
    images = many_images(6)
    with FakeApi(script=["429", "500", "500", "fenced"]) as api:
        outcome, _ = run(api_config(images, tmp_path, api.base_url, concurrency=1))
    assert outcome.status == "completed"
    evs = events_of(outcome.run_dir)
    retries = [e for e in evs if e.event_type == EventType.SPECIMEN_RETRYING]
    assert [r.data["error"]["kind"] for r in retries] == [
        "rate_limited",
        "server_error",
        "server_error",
    ]
    assert retries[0].data["delay_s"] == 1.0  # Retry-After honoured
    first = next(e for e in evs if e.event_type == EventType.SPECIMEN_COMPLETED)
    assert first.data["attempts"] == 4
    _assert_files_agree(outcome.run_dir)


def test_retries_exhausted_record_a_failed_specimen(tmp_path: Path, many_images) -> None:
    images = many_images(1)
    with FakeApi(default="500") as api:
        outcome, _ = run(api_config(images, tmp_path, api.base_url, concurrency=1, max_attempts=3))
        assert api.state.chat_requests == 3
    raw = raw_records(outcome.run_dir)
    assert raw[0]["error"]["kind"] == "server_error" and raw[0]["attempts"] == 3
    assert outcome.status == "completed"  # one failure among one is below checkpoint count


def test_timeouts_are_retried(tmp_path: Path, many_images) -> None:
    with FakeApi(script=["sleep:1.5"]) as api:
        outcome, _ = run(api_config(many_images(1), tmp_path, api.base_url, timeout_s=0.5))
    evs = events_of(outcome.run_dir)
    assert [
        e.data["error"]["kind"] for e in evs if e.event_type == EventType.SPECIMEN_RETRYING
    ] == ["timeout"]
    assert types_of(outcome.run_dir).count(EventType.SPECIMEN_COMPLETED) == 1


def test_run_that_goes_bad_midway_stops_at_the_breaker(tmp_path: Path, many_images) -> None:
    images = many_images(80)
    script = ["good"] * 30
    with FakeApi(script=script, default="garbage") as api:
        outcome, _ = run(api_config(images, tmp_path, api.base_url, concurrency=1))
    assert outcome.reason == "consecutive_failures"
    s = outcome.metrics
    assert s["success_count"] == 30 and s["failed_count"] == 10


def test_key_revoked_mid_run_halts_as_fatal(tmp_path: Path, many_images) -> None:
    images = many_images(30)
    with FakeApi(script=["good"] * 8, default="401") as api:
        outcome, _ = run(api_config(images, tmp_path, api.base_url, concurrency=2))
        assert api.state.chat_requests <= 8 + 2
    assert outcome.reason == "fatal_error" and "auth_error" in outcome.message
    _assert_files_agree(outcome.run_dir)


def test_payment_required_halts_as_fatal(tmp_path: Path, many_images) -> None:
    with FakeApi(default="402") as api:
        outcome, _ = run(api_config(many_images(20), tmp_path, api.base_url, concurrency=1))
        assert api.state.chat_requests == 1
    assert outcome.reason == "fatal_error" and "payment_required" in outcome.message


def test_corrupt_image_is_a_failed_specimen_not_a_crash(tmp_path: Path, many_images) -> None:
    images = many_images(6)
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (images / "notes.txt").write_text("ignored")
    with FakeApi() as api:
        outcome, _ = run(api_config(images, tmp_path / "runs", api.base_url))
    assert outcome.status == "completed"
    raw = raw_records(outcome.run_dir)
    assert len(raw) == 7
    broken = [r for r in raw if r["image"] == "broken.jpg"]
    assert broken[0]["error"]["kind"] == "image_error"


def test_concurrency_keeps_requests_in_flight(tmp_path: Path, many_images) -> None:
    with FakeApi(delay_s=0.3) as api:
        outcome, _ = run(api_config(many_images(12), tmp_path, api.base_url, concurrency=4))
        assert api.state.max_in_flight == 4
    assert outcome.status == "completed"


def test_resume_skips_completed_and_records_each_once(tmp_path: Path, many_images) -> None:
    images = many_images(20)
    cfg_v = ValidationConfig(max_consecutive_failures=3)
    with FakeApi(script=["good"] * 8, default="500") as api:
        first, _ = run(
            api_config(
                images, tmp_path, api.base_url, concurrency=1, max_attempts=1, validation=cfg_v
            )
        )
    assert first.reason == "consecutive_failures"
    with FakeApi() as api:
        second, _ = run(
            api_config(images, tmp_path, api.base_url, concurrency=2, resume_dir=first.run_dir)
        )
        assert api.state.chat_requests == 20 - 8
    assert second.status == "completed" and second.run_dir == first.run_dir
    evs = events_of(first.run_dir)
    assert [e.seq for e in evs] == list(range(1, len(evs) + 1))  # numbering continues
    assert sum(1 for e in evs if e.event_type == EventType.SPECIMEN_SKIPPED) == 8
    raw = raw_records(first.run_dir)
    ok = Counter(r["specimen_id"] for r in raw if r["success"])
    assert len(ok) == 20 and set(ok.values()) == {1}
    # finishes are numbered across both invocations: the table's "#" never repeats
    ends = (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED)
    finished = [e.sequence for e in evs if e.event_type in ends]
    assert len(finished) > 20  # the first invocation's failures finished again
    assert sorted(finished) == list(range(1, len(finished) + 1))
    assert sorted(r["sequence"] for r in raw) == sorted(finished)
    with open(first.run_dir / "occurrences.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 20
    # one checkpoint for the run: the resume is judged on all its records, and the first
    # invocation's 8 good ones had passed it (tests/test_resume_gates.py)
    assert sum(1 for e in evs if e.event_type == EventType.VALIDATION_CHECKPOINT) == 1
    state, _ = load_state(first.run_dir)
    s = state.summary()
    assert (s["status"], s["succeeded"], s["failed"], s["processed"]) == ("completed", 20, 0, 20)


def test_duplicate_images_are_processed_once(tmp_path: Path, many_images) -> None:
    images = many_images(3)
    (images / "copy.jpg").write_bytes((images / "sheet_0000.jpg").read_bytes())
    with FakeApi() as api:
        outcome, _ = run(api_config(images, tmp_path / "runs", api.base_url))
        assert api.state.chat_requests == 3
    events = events_of(outcome.run_dir)
    skipped = [e for e in events if e.event_type == EventType.SPECIMEN_SKIPPED]
    assert len(skipped) == 1 and "duplicate" in skipped[0].data["reason"]
    original = skipped[0].data["duplicate_of"]
    assert skipped[0].specimen_id != original  # its own row, not the original's
    assert any(
        e.specimen_id == original for e in events if e.event_type == EventType.SPECIMEN_COMPLETED
    )
    s = load_state(outcome.run_dir)[0].summary()
    assert (s["total"], s["processed"], s["skipped"]) == (4, 3, 1)  # every image accounted for


def test_api_key_never_written_to_any_file(tmp_path: Path, many_images) -> None:
    key = "sk-or-v1-SECRETKEYSHOULDNEVERLEAK0123456789"
    with FakeApi(valid_key=key, script=["good", "garbage", "500"]) as api:
        outcome, _ = run(api_config(many_images(8), tmp_path / "runs", api.base_url, key=key))
        assert all(h == f"Bearer {key}" for h in api.state.auth_headers)
    assert outcome.status == "completed"
    files = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    assert len(files) >= 5
    for p in files:
        assert key.encode() not in p.read_bytes(), f"API key leaked into {p}"


def test_every_logged_event_matches_the_json_schema(tmp_path: Path, many_images) -> None:
    import json

    import jsonschema

    schema = json.loads(
        (Path(__file__).parents[1] / "herbdesk" / "schemas" / "event.schema.json").read_text()
    )
    validator = jsonschema.Draft202012Validator(schema)
    with FakeApi(script=["good", "garbage", "429", "good"], default="good") as api:
        outcome, _ = run(api_config(many_images(8), tmp_path, api.base_url))
    lines = (outcome.run_dir / "events.jsonl").read_text().splitlines()
    types = set()
    for line in lines:
        obj = json.loads(line)
        validator.validate(obj)
        types.add(obj["event_type"])
    assert {"specimen.failed", "specimen.retrying", "validation.checkpoint"} <= types
