"""Soak: thousands of specimens, 10% random faults, concurrency 16.

The run completes; queued = completed + failed + skipped exactly, in every file; memory stays
flat (RSS printed at start, through the run, and at the end). The full 10,000-specimen version
is opt-in (`pytest -m soak`); a short one runs in the normal suite, plus a short one over real
HTTP against the fault-injecting server.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fakeapi import FakeApi
from fastengine import FastEngine
from helpers import api_config
from reliability import assert_counts_agree, make_fake_jpegs, raw_lines, rss_bytes

from herbdesk.events.types import Event, EventType
from herbdesk.extraction.config import RunConfig
from herbdesk.extraction.engines import EngineSettings
from herbdesk.extraction.pipeline import Pipeline

MIB = 1 << 20


class RssSampler:
    """Samples RSS at every 10% of finished specimens (from the bus, on the worker threads)."""

    def __init__(self, total: int) -> None:
        self.every = max(1, total // 10)
        self.finished = 0
        self.samples: list[tuple[int, int]] = []

    def __call__(self, ev: Event) -> None:
        if ev.event_type in (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED):
            self.finished += 1
            if self.finished % self.every == 0:
                self.samples.append((self.finished, rss_bytes()))


def _report(capsys: pytest.CaptureFixture[str], label: str, start: int, end: int,
            sampler: RssSampler, seconds: float, n: int) -> None:  # fmt: skip
    curve = " ".join(f"{k}:{v / MIB:.0f}" for k, v in sampler.samples)
    with capsys.disabled():
        print(
            f"\n[soak {label}] {n} specimens in {seconds:.1f}s; RSS start {start / MIB:.1f} MiB,"
            f" end {end / MIB:.1f} MiB; by finished count (MiB): {curve}"
        )


@pytest.mark.parametrize(
    "n", [pytest.param(500, id="short"), pytest.param(10_000, id="full", marks=pytest.mark.soak)]
)
def test_soak_fast_engine_with_random_faults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], n: int
) -> None:
    images = make_fake_jpegs(tmp_path / "images", n)
    extra = {"fault_rate": 0.10, "seed": 2026, "delay_s": 0.001}
    settings = EngineSettings(engine="fast", extra=extra)
    engine = FastEngine(settings)
    config = RunConfig(
        inputs=[images],
        out_dir=tmp_path / "runs",
        engine=settings,
        concurrency=16,
        backoff_base_s=0.001,
        backoff_max_s=0.005,
    )
    pipeline = Pipeline(config, engine=engine)
    sampler = RssSampler(n)
    pipeline.subscribe(sampler, "rss")
    start = rss_bytes()
    t0 = time.monotonic()
    outcome = pipeline.run()
    seconds = time.monotonic() - t0
    end = rss_bytes()
    _report(capsys, "fast engine", start, end, sampler, seconds, n)

    assert outcome.status == "completed", outcome.message
    c = assert_counts_agree(outcome.run_dir)
    assert c.queued == n == c.completed + c.failed + c.skipped
    assert c.skipped == 0 and c.failed > 0 and sum(engine.faults.values()) > 0
    assert engine.calls == sum(r["attempts"] for r in raw_lines(outcome.run_dir))
    assert outcome.metrics["total_processed"] == n
    # flat: growth bounded by a constant, not by the number of specimens (generous for CI)
    assert end - start < 64 * MIB
    if len(sampler.samples) >= 4:
        first_quarter = sampler.samples[1][1]
        assert end - first_quarter < 32 * MIB


@pytest.mark.parametrize(
    "n", [pytest.param(300, id="short"), pytest.param(3_000, id="full", marks=pytest.mark.soak)]
)
def test_soak_over_http_with_random_faults(
    tmp_path: Path, many_images, capsys: pytest.CaptureFixture[str], n: int
) -> None:
    images = make_fake_jpegs(tmp_path / "images", n)
    actions = ("500", "502", "503", "429:0", "reset", "malformed", "empty_choices",
               "wrong_terms", "fenced", "partial_terms")  # fmt: skip
    with FakeApi(fault_rate=0.10, fault_actions=actions, seed=16, delay_s=0.02) as api:
        pipeline = Pipeline(api_config(images, tmp_path / "runs", api.base_url, concurrency=16))
        sampler = RssSampler(n)
        pipeline.subscribe(sampler, "rss")
        start = rss_bytes()
        t0 = time.monotonic()
        outcome = pipeline.run()
        seconds = time.monotonic() - t0
        end = rss_bytes()
        served = len(api.state.served)
        peak = api.state.max_in_flight
    _report(capsys, "http", start, end, sampler, seconds, n)
    assert outcome.status == "completed", outcome.message
    c = assert_counts_agree(outcome.run_dir)
    assert c.queued == n == c.completed + c.failed + c.skipped
    assert served == sum(r["attempts"] for r in raw_lines(outcome.run_dir))
    assert peak > 8  # the concurrency was real
    assert end - start < 96 * MIB
