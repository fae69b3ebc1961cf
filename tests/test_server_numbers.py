"""Untrusted numbers from the server (`usage`, `cost`) and a run that can never end without
its terminal event.

Each odd `usage` reaches the real engine over real HTTP (fakeapi's `usage:JSON` action): the
specimen is read as usual, the odd figure becomes "not given", and every file still agrees.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakeapi import FakeApi
from helpers import api_config, events_of, raw_records, run
from reliability import assert_counts_agree

from herbdesk.events.types import EventType
from herbdesk.extraction import runfiles
from herbdesk.extraction.engines.base import clean_usage, plausible_cost, plausible_count
from herbdesk.extraction.pipeline import Pipeline
from herbdesk.runstate.load import load_state

ODD_USAGE = [
    '{"total_tokens": "n/a", "cost": 0.001}',
    '{"total_tokens": Infinity}',
    '{"total_tokens": [1, 2], "prompt_tokens": {"a": 1}}',
    '{"total_tokens": 18446744073709551616}',
    '{"total_tokens": 1e30}',
    '{"prompt_tokens": NaN, "completion_tokens": -5, "cost": -Infinity}',
    '{"cost": "free"}',
    '{"cost": 1e300}',
    "[1350]",
    '"lots"',
]


@pytest.mark.parametrize("usage", ODD_USAGE)
def test_odd_usage_numbers_neither_halt_nor_kill_the_run(
    tmp_path: Path, many_images, usage: str
) -> None:
    with FakeApi(script=[f"usage:{usage}"]) as api:
        outcome, _ = run(api_config(many_images(3), tmp_path / "runs", api.base_url))
    assert outcome.status == "completed", outcome.message
    evs = events_of(outcome.run_dir)
    assert evs[-1].event_type == EventType.EXTRACTION_COMPLETED
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (3, 0)
    odd = next(r for r in raw_records(outcome.run_dir) if r["usage"].get("total_tokens") != 1350)
    assert plausible_count(odd["usage"].get("total_tokens")) is None
    assert odd["cost_usd"] in (None, 0.001)
    assert evs[-1].data["processed"] == 3
    assert c.summary["tokens"] == 2 * 1350  # the odd one counts as none, not as 1e30


def test_odd_cost_on_a_failed_specimen_is_recorded_not_a_halt(tmp_path: Path, many_images) -> None:
    """A reply that is paid for but unusable keeps its usage: a `cost` of "free" there halted
    the run (internal_error) when it was summed."""
    with FakeApi(script=['usage_garbage:{"total_tokens": 99, "cost": "free"}']) as api:
        outcome, _ = run(api_config(many_images(6), tmp_path / "runs", api.base_url))
    assert outcome.status == "completed", outcome.message
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (5, 1)
    bad = next(r for r in raw_records(outcome.run_dir) if r["usage"].get("total_tokens") == 99)
    assert bad["success"] is False and bad["cost_usd"] is None
    assert bad["usage"]["cost"] == "free"  # kept as the server said it, never summed


def test_plausible_numbers() -> None:
    assert plausible_count(1350) == 1350 and plausible_count(1350.0) == 1350
    for odd in ("12", True, None, 1.5, -1, 2**64, 1e30, float("inf"), float("nan"), [1]):
        assert plausible_count(odd) is None, odd
    assert plausible_cost(0.0012) == 0.0012 and plausible_cost(0) == 0.0
    for odd in ("free", False, -0.1, 1e300, 10**400, float("nan"), float("-inf")):
        assert plausible_cost(odd) is None, odd
    assert clean_usage({"total_tokens": 10**30, "x": [1], "cost": 0.5}) == {
        "total_tokens": None,
        "x": None,
        "cost": 0.5,
    }
    assert clean_usage("lots") == {}


def test_an_exception_escaping_the_run_still_ends_the_log(
    tmp_path: Path, many_images, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever raises while the run ends (here the quality verdict, standing in for any bug),
    the log gets `extraction.failed` (internal_error) and run.json its final status."""
    with FakeApi() as api:
        p = Pipeline(api_config(many_images(2), tmp_path / "runs", api.base_url))

        def broken() -> tuple[str, str]:
            raise TypeError("Integer exceeds 64-bit range")

        monkeypatch.setattr(p.rules, "verdict", broken)
        outcome = p.run()
    assert (outcome.status, outcome.reason) == ("failed", "internal_error")
    assert "Integer exceeds 64-bit range" in outcome.message
    evs = events_of(p.run_dir)
    assert evs[-1].event_type == EventType.EXTRACTION_FAILED
    assert evs[-1].data["reason"] == "internal_error"
    assert [e.seq for e in evs] == list(range(1, len(evs) + 1))
    info = runfiles.read_run_json(p.run_dir)
    assert info["status"] == "failed" and info["reason"] == "internal_error"
    state, _ = load_state(p.run_dir)
    assert state.summary()["status"] == "failed"


def test_the_desktop_worker_ends_the_log_if_the_run_raises(
    qtbot, tmp_path: Path, many_images, monkeypatch: pytest.MonkeyPatch
) -> None:
    from herbdesk.ui.worker import RunWorker

    with FakeApi() as api:
        worker = RunWorker(api_config(many_images(2), tmp_path / "runs", api.base_url))

        def broken() -> None:
            raise RuntimeError("a bug outside the run loop")

        monkeypatch.setattr(worker.pipeline, "run", broken)
        with qtbot.waitSignal(worker.run_finished, timeout=30_000) as finished:
            worker.start()
        worker.wait()
    outcome = finished.args[0]
    assert outcome is not None and (outcome.status, outcome.reason) == ("failed", "internal_error")
    evs = events_of(worker.run_dir)
    assert evs[-1].event_type == EventType.EXTRACTION_FAILED
    assert runfiles.read_run_json(worker.run_dir)["status"] == "failed"
