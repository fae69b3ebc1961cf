"""A resumed run is judged on all its records: a resume never turns a failed gate into a pass."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest
from fakeapi import FakeApi
from helpers import api_config, events_of, run

from herbdesk.common.assets import default_prompt_path
from herbdesk.events.types import EventType, HaltReason
from herbdesk.extraction.config import RunConfig, RunOutcome
from herbdesk.quality.judge import QualitySettings


def _cfg(images: Path, out: Path, api: FakeApi, **kw: object) -> RunConfig:
    kw.setdefault("concurrency", 1)
    cfg = api_config(images, out, api.base_url, **kw)  # type: ignore[arg-type]
    cfg.engine.prompt_text = default_prompt_path().read_text(encoding="utf-8")
    return cfg


def _resume(cfg: RunConfig, run_dir: Path, **changes: object) -> RunConfig:
    return dataclasses.replace(cfg, resume_dir=run_dir, **changes)  # type: ignore[arg-type]


def _gold_half_wrong(tmp_path: Path) -> Path:
    """Known answers for two of the sheets, one of them not what the model says."""
    gold = tmp_path / "gold.csv"
    with open(gold, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "scientificName"])
        w.writerow(["sheet_0001.jpg", "Primula mistassinica Michx."])
        w.writerow(["sheet_0002.jpg", "Primula mistassinica Michx."])
    return gold


def _gold_failed(images: Path, tmp_path: Path, api: FakeApi) -> tuple[RunConfig, RunOutcome]:
    """A run whose known-answer check fails (half the gold sheets' terms wrong, 90 % asked):
    its config and its outcome."""
    quality = QualitySettings(gold_path=_gold_half_wrong(tmp_path))
    cfg = _cfg(images, tmp_path / "runs", api, quality=quality)
    cfg.validation.gold_threshold = 0.9
    first, _ = run(cfg)
    assert first.reason == HaltReason.GOLD_FAILED, first.message
    return cfg, first


def test_a_resume_that_adds_nothing_ends_as_the_failed_gold_gate_did(
    tmp_path: Path, many_images
) -> None:
    images = many_images(4)
    with FakeApi() as api:
        cfg, first = _gold_failed(images, tmp_path, api)
        # finish the other sheets past the gate, so the resume has nothing left to do
        cfg.validation.gold_threshold = 0.0
        second, _ = run(_resume(cfg, first.run_dir))
        assert second.status == "completed", second.message
        sent = api.state.chat_requests
        cfg.validation.gold_threshold = 0.9
        third, _ = run(_resume(cfg, first.run_dir))
        assert api.state.chat_requests == sent  # nothing new was sent
    assert third.status == "failed" and third.reason == HaltReason.GOLD_FAILED, third.message
    assert "0% of terms right (0/2), below 90%" in third.message
    assert "earlier invocations" in third.message
    run_json = json.loads((first.run_dir / "run.json").read_text(encoding="utf-8"))
    assert run_json["status"] == "failed" and run_json["reason"] == HaltReason.GOLD_FAILED


def test_the_cli_resume_of_a_failed_gold_gate_exits_4(
    tmp_path: Path, many_images, capsys, monkeypatch
) -> None:
    from herbdesk.cli import main

    images = many_images(3)
    with FakeApi() as api:
        _, first = _gold_failed(images, tmp_path, api)
        monkeypatch.setenv("HERBDESK_TEST_KEY", "sk-test-good")
        key = ["--api-key-env", "HERBDESK_TEST_KEY", "--quiet"]
        code = main(["run", "--resume", str(first.run_dir), *key])
        said = capsys.readouterr()
    assert code == 4
    # not sent round in a circle: another resume would halt the same way
    told = " ".join((said.out + said.err).split())
    assert "start a new run" in told and "with a lower --gold-threshold" in told
    assert "Continue with" not in told
    assert main(["summary", str(first.run_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "failed" and summary["reason"] == HaltReason.GOLD_FAILED
    ends = [e for e in events_of(first.run_dir) if e.event_type == EventType.EXTRACTION_FAILED]
    assert [e.data["reason"] for e in ends] == [HaltReason.GOLD_FAILED] * 2


def test_a_lowered_gold_threshold_on_resume_lets_the_run_go_on(tmp_path: Path, many_images) -> None:
    images = many_images(4)
    with FakeApi() as api:
        cfg, first = _gold_failed(images, tmp_path, api)
        cfg.validation.gold_threshold = 0.0  # the curator accepts it: the gate is theirs
        second, _ = run(_resume(cfg, first.run_dir))
    assert second.status == "completed", second.message


@pytest.mark.parametrize(
    ("good_first", "reply", "reason"),
    [
        (0, "placeholders", HaltReason.EARLY_QUALITY_FAILED),
        (0, "identical", HaltReason.IDENTICAL_RECORDS),
        (10, "placeholders", HaltReason.DEGRADED),
    ],
)
def test_junk_records_keep_failing_their_gate_on_resume(
    tmp_path: Path, many_images, good_first: int, reply: str, reason: str
) -> None:
    images = many_images(30)
    with FakeApi(["good"] * good_first, default=reply) as api:
        cfg = _cfg(images, tmp_path / "runs", api)
        first, _ = run(cfg)
        assert first.reason == reason, first.message
    with FakeApi() as good:  # the model now answers well: the junk already recorded stays
        cfg = _cfg(images, tmp_path / "runs", good)
        second, _ = run(_resume(cfg, first.run_dir))
        assert good.state.chat_requests == 0  # halted before spending anything
    assert second.reason == reason, second.message
    assert second.message.startswith(first.message)


def test_failed_specimens_are_redone_and_then_the_run_passes(tmp_path: Path, many_images) -> None:
    """Failures are no records: a resume redoes them, and only their new outcome counts."""
    images = many_images(8)
    with FakeApi(default="500") as api:
        cfg = _cfg(images, tmp_path / "runs", api, max_attempts=1)
        first, _ = run(cfg)
        assert first.reason == HaltReason.EARLY_VALIDATION_FAILED, first.message
    with FakeApi() as good:
        cfg = _cfg(images, tmp_path / "runs", good)
        second, _ = run(_resume(cfg, first.run_dir))
    assert second.status == "completed" and second.verdict == "passed", second.message


def test_a_resume_passes_only_if_the_whole_run_does(tmp_path: Path, many_images) -> None:
    images = many_images(10)
    for junk, expected in ((2, "passed"), (3, HaltReason.EARLY_QUALITY_FAILED)):
        with FakeApi(default="placeholders") as api:
            cfg = _cfg(images, tmp_path / f"runs{junk}", api, limit=junk)
            first, _ = run(cfg)
            assert first.status == "completed" and first.verdict == "below_threshold"
        with FakeApi() as good:
            cfg = _cfg(images, tmp_path / f"runs{junk}", good)
            second, _ = run(_resume(cfg, first.run_dir))
        # 2 junk of 10: the checkpoint (5th record) sees 3 of 5 usable, the end 8 of 10;
        # 3 junk: the checkpoint sees 2 of 5 usable, below the 50% threshold
        if expected == "passed":
            assert second.status == "completed" and second.verdict == "passed", second.message
        else:
            assert second.reason == expected, second.message
            assert "2 of 5" not in second.message and "40% of records usable" in second.message


def test_rules_folded_through_their_state_decide_as_rules_folded_straight() -> None:
    """A distributed run reloads the rules' state for every fold; the running counts of the
    identical-records and degradation windows must come back with it."""
    import random

    from herbdesk.monitor.rules import Finished, Halt, RunRules
    from herbdesk.monitor.validation import ValidationConfig

    rng = random.Random(7)
    cfg = ValidationConfig(max_consecutive_failures=0)
    straight = RunRules(cfg)
    state: dict[str, object] | None = None
    reasons: set[str] = set()
    for i in range(400):
        ok = rng.random() < 0.9
        usable = ok and rng.random() < (0.9 if i < 150 else 0.55)
        fp = "same" if 200 < i < 260 and rng.random() < 0.8 else f"fp{i}"
        f = Finished(ok, {"usable": usable, "fingerprint": fp} if ok else {})
        a = straight.observe(f)
        reloaded = RunRules.from_state(cfg, state)
        b = reloaded.observe(f)
        state = reloaded.to_state()
        assert a == b, i
        reasons |= {d.reason for d in a if isinstance(d, Halt)}
    assert state == straight.to_state()
    assert reasons == {HaltReason.DEGRADED, HaltReason.IDENTICAL_RECORDS}
