"""`herbdesk summary` text: skipped, failures by error kind, engine/model and duration."""

from __future__ import annotations

import json
from pathlib import Path

from fakeapi import FakeApi
from helpers import api_config, herbdesk_cli, raw_records, run

from herbdesk.monitor.validation import ValidationConfig


def test_summary_text_shows_skipped_error_kinds_engine_and_duration(
    tmp_path: Path, many_images
) -> None:
    lenient = ValidationConfig(checkpoint_threshold=0.0, warning_threshold=0.0)
    script = ["good", "no_terms", "good", "garbage", "good", "no_terms"]
    with FakeApi(script=script) as api:
        outcome, _ = run(
            api_config(many_images(6), tmp_path / "runs", api.base_url, validation=lenient)
        )
    kinds: dict[str, int] = {}
    for rec in raw_records(outcome.run_dir):
        if not rec["success"]:
            kinds[rec["error"]["kind"]] = kinds.get(rec["error"]["kind"], 0) + 1
    assert sum(kinds.values()) == 3
    r = herbdesk_cli("summary", str(outcome.run_dir), columns=200, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = {ln.split(None, 1)[0]: ln for ln in r.stdout.splitlines() if ln.strip()}
    assert lines["skipped"].split()[-1] == "0"
    assert "openrouter, test/vision-model" in lines["engine"]
    for kind, n in kinds.items():
        assert f"{kind} {n}" in lines["errors"], r.stdout
    assert "duration" in lines
    j = herbdesk_cli("summary", str(outcome.run_dir), "--json", columns=200, timeout=60)
    data = json.loads(j.stdout)
    assert data["error_kinds"] == dict(sorted(kinds.items(), key=lambda kv: -kv[1]))
    assert data["engine"] == "openrouter" and data["duration_seconds"] >= 0


def test_a_budget_pause_reads_as_a_pause_not_a_failure(tmp_path: Path, many_images) -> None:
    """A run paused at its --budget ends in the log as extraction.failed (reason budget), but
    `summary` says what it is: paused at its budget, resumable, with the final spend."""
    with FakeApi(costs=(0.004,), delay_s=0.05) as api:
        cfg = api_config(
            many_images(10), tmp_path / "runs", api.base_url, concurrency=4, budget_usd=0.01
        )
        outcome, _ = run(cfg)
    assert outcome.reason == "budget"
    r = herbdesk_cli("summary", str(outcome.run_dir), columns=200, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = {ln.split(None, 1)[0]: ln for ln in r.stdout.splitlines() if ln.strip()}
    assert "paused at its budget" in lines["status"] and "failed" not in lines["status"]
    assert (
        "2 processed, 2 succeeded, 0 failed; spent $0.0080 of $0.0100; go on with herbdesk run "
        f"--resume {outcome.run_dir} --budget HIGHER" in " ".join(r.stdout.split())
    )
    j = herbdesk_cli("summary", str(outcome.run_dir), "--json", columns=200, timeout=60)
    data = json.loads(j.stdout)
    assert data["status"] == "paused" and data["reason"] == "budget"
    assert data["paused_at_budget"] is True and data["budget_usd"] == 0.01
    assert "spent $0.0080 of $0.0100" in data["message"]
