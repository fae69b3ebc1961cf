"""Memory a hostile or merely large input can take: a gzip reply is inflated no further than
the reply cap, and decoded sheet pixels in flight are bounded whatever the concurrency.

Behaviour only (the stream stopped at the cap, the budget never exceeded); the RSS numbers are
measured by benchmarks/bench_memory.py.
"""

from __future__ import annotations

import gzip
import threading
import time
import tracemalloc
import zlib
from pathlib import Path

import fakeapi
import pytest
from fakeapi import FakeApi
from helpers import api_config, events_of, raw_records, run
from PIL import Image
from reliability import assert_counts_agree

from herbdesk.events.types import EventType
from herbdesk.extraction import images
from herbdesk.extraction.engines import EngineSettings
from herbdesk.extraction.engines.base import EngineError, SpecimenInput
from herbdesk.extraction.engines.bounded import DecodeError, TooLarge, read_capped
from herbdesk.extraction.engines.openrouter import MAX_REPLY_BYTES, OpenRouterEngine
from herbdesk.extraction.pixels import PixelBudget

BOMB = 64 << 20  # decoded size of the bomb: 16 times the cap, from a ~64 KB download


def test_a_gzip_bomb_is_inflated_no_further_than_the_cap(tmp_path: Path) -> None:
    """Before, httpx inflated each network chunk whole: ~140 MiB were allocated for this
    64 KB reply before the 4 MiB cap could fire."""
    Image.new("RGB", (32, 32)).save(tmp_path / "a.jpg")
    sheet = SpecimenInput(tmp_path / "a.jpg", "a")
    bomb = fakeapi.gzip_bomb(BOMB)  # built before measuring: the server only sends it
    assert len(bomb) < 200_000
    with FakeApi(script=["gzip", f"gzip_bomb:{BOMB}"]) as api:
        engine = OpenRouterEngine(
            EngineSettings(
                engine="openrouter",
                model="test/vision-model",
                base_url=api.base_url,
                api_key="sk-test-good",
                prompt_text="Return Darwin Core JSON.",
            )
        )
        try:
            assert engine.extract(sheet).fields  # a gzip reply is read as any other
            tracemalloc.start()
            with pytest.raises(EngineError) as caught:
                engine.extract(sheet)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            engine.close()
    assert caught.value.kind == "bad_reply" and "larger than 4 MiB" in caught.value.message
    assert peak < MAX_REPLY_BYTES + (2 << 20), peak


def test_a_gzip_bomb_mid_run_fails_its_specimen_only(tmp_path: Path, many_images) -> None:
    with FakeApi(script=[f"gzip_bomb:{BOMB}", "gzip"]) as api:
        outcome, _ = run(api_config(many_images(6), tmp_path / "runs", api.base_url))
    assert outcome.status == "completed", outcome.message
    failed = [e for e in events_of(outcome.run_dir) if e.event_type == EventType.SPECIMEN_FAILED]
    assert len(failed) == 1 and "larger than" in failed[0].data["error"]["message"]
    bad = next(r for r in raw_records(outcome.run_dir) if not r["success"])
    assert len(bad["raw_text"]) <= 2000
    c = assert_counts_agree(outcome.run_dir)
    assert (c.completed, c.failed) == (5, 1)


def test_read_capped_stops_at_the_cap_for_every_encoding() -> None:
    body = b'{"a": 1}' + b" " * 5000
    cases = {
        "": body,
        "identity": body,
        "gzip": gzip.compress(body),
        "deflate": zlib.compress(body),
    }
    raw_deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    cases["Deflate"] = raw_deflate.compress(body) + raw_deflate.flush()  # raw, as some send
    for enc, data in cases.items():
        chunks = [data[i : i + 100] for i in range(0, len(data), 100)]
        assert read_capped(chunks, enc, len(body)) == body, enc
        with pytest.raises(TooLarge) as caught:
            read_capped(chunks, enc, len(body) - 1)
        assert caught.value.head.startswith(b'{"a": 1}')
    with pytest.raises(DecodeError):
        read_capped([b"not gzip at all"], "gzip", 1000)
    with pytest.raises(DecodeError):
        read_capped([b"x"], "br", 1000)  # not asked for: never decoded unbounded


def _png(path: Path, side: int, shade: int) -> None:
    Image.new("RGB", (side, side), (shade, 100, 200)).save(path)


def test_decoded_pixels_in_flight_stay_within_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four 1-Mpx sheets at concurrency 4 with a 2.5-Mpx budget: two decode side by side,
    never three. Each decode is held open a moment, so all four workers really compete."""
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(4):
        _png(folder / f"sheet_{i}.png", 1000, i * 40)
    budget = PixelBudget(2_500_000)
    monkeypatch.setattr(images, "DECODE_BUDGET", budget)
    real = images._decode
    lock = threading.Lock()
    now = {"pixels": 0, "images": 0}
    most = {"pixels": 0, "images": 0}

    def watched(opened: Image.Image, max_side: int | None) -> Image.Image:
        px = opened.size[0] * opened.size[1]
        with lock:
            now["pixels"] += px
            now["images"] += 1
            most.update({k: max(most[k], now[k]) for k in now})
        try:
            time.sleep(0.2)  # a slow decode: the others arrive meanwhile
            return real(opened, max_side)
        finally:
            with lock:
                now["pixels"] -= px
                now["images"] -= 1

    monkeypatch.setattr(images, "_decode", watched)
    with FakeApi() as api:
        outcome, _ = run(api_config(folder, tmp_path / "runs", api.base_url, concurrency=4))
    assert outcome.status == "completed", outcome.message
    assert assert_counts_agree(outcome.run_dir).completed == 4
    assert most["images"] == 2 and most["pixels"] <= budget.limit
    assert budget.peak <= budget.limit and budget.waits >= 1 and budget.in_use == 0


def test_a_sheet_larger_than_the_budget_decodes_alone() -> None:
    budget = PixelBudget(100)
    with budget.hold(10**6):  # larger than the whole budget: runs, alone
        assert budget.in_use == 100
        got: list[int] = []

        def small() -> None:
            with budget.hold(1):
                got.append(budget.in_use)

        t = threading.Thread(target=small)
        t.start()
        t.join(0.2)
        assert t.is_alive() and budget.waits == 1 and not got  # a small one waits for it
    t.join(5)
    assert got == [1] and budget.in_use == 0 and budget.peak == 100
