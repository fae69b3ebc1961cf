"""Extraction throughput against a delayed fake chat-completions server, and event-path cost.

    python -m benchmarks.bench_extract scaling --specimens 200 --delay 0.2 --concurrency 4
    python -m benchmarks.bench_extract eventpath --events 20000

scaling: a real Pipeline (openrouter engine, real HTTP) over N generated images against
tests/fakeapi.FakeApi(delay_s=DELAY); prints wall seconds and specimens/s.
eventpath: the pipeline's own EventBus (JSONL append with flush, validation and metrics
consumers subscribed) emitting a realistic specimen.completed event N times; µs per event.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, emit_json

sys.path.insert(0, str(ROOT / "tests"))


def make_images(folder: Path, n: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = Image.new("RGB", (64, 48), (i % 256, (i * 7) % 256, (i * 13) % 256))
        img.putpixel((i % 64, (i // 64) % 48), ((i * 31) % 256, 0, 0))
        img.save(folder / f"sheet{i:05d}.png")


def scaling(specimens: int, delay: float, concurrency: int) -> dict:
    from fakeapi import FakeApi  # tests/fakeapi.py
    from helpers import api_config  # tests/helpers.py

    from herbdesk.extraction.pipeline import Pipeline

    with tempfile.TemporaryDirectory() as tmp, FakeApi(delay_s=delay) as api:
        images = Path(tmp) / "images"
        make_images(images, specimens)
        cfg = api_config(
            images, Path(tmp) / "runs", api.base_url, concurrency=concurrency, timeout_s=30.0
        )
        p = Pipeline(cfg)
        t0 = time.perf_counter()
        outcome = p.run()
        dt = time.perf_counter() - t0
    return {
        "seconds": dt,
        "per_s": specimens / dt,
        "status": str(getattr(outcome, "status", "")),
        "max_in_flight": api.state.max_in_flight,
    }


def eventpath(n: int) -> dict:
    from fakeapi import FakeApi
    from helpers import api_config

    from herbdesk.events.types import EventType
    from herbdesk.extraction.pipeline import Pipeline
    from herbdesk.monitor.metrics import MetricsAccumulator

    with tempfile.TemporaryDirectory() as tmp, FakeApi() as api:
        images = Path(tmp) / "images"
        make_images(images, 1)
        p = Pipeline(api_config(images, Path(tmp) / "runs", api.base_url))
        seen = []
        p.subscribe(seen.append, "gui")  # stands in for the desktop's signal hand-off
        bus = p.bus
        m = MetricsAccumulator(total=n)
        bus.emit(EventType.EXTRACTION_STARTED, data={"total": n})
        sid = "ab" * 32
        t0 = time.perf_counter()
        for i in range(n):
            m.add(True, 12000.0, 0.9, 1400, 0.0011)
            bus.emit(
                EventType.SPECIMEN_COMPLETED,
                specimen_id=sid,
                sequence=i + 1,
                data={
                    "image": f"DAO{i:07d}.jpg",
                    "success": True,
                    "fields_extracted": 12,
                    "confidence": 0.91,
                    "processing_time_ms": 12000.0,
                    "attempts": 1,
                    "tokens": 1400,
                    "cost_usd": 0.0011,
                },
                metrics=m.snapshot(i * 20.0 + 1),
            )
        dt = time.perf_counter() - t0
    return {"seconds": dt, "us_per_event": dt / n * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["scaling", "eventpath"])
    ap.add_argument("--specimens", type=int, default=200)
    ap.add_argument("--delay", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--events", type=int, default=20000)
    a = ap.parse_args()
    if a.mode == "scaling":
        emit_json(scaling(a.specimens, a.delay, a.concurrency))
    else:
        emit_json(eventpath(a.events))


if __name__ == "__main__":
    main()
