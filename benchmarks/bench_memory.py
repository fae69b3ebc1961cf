"""Peak RSS of the two memory bounds, before and after (one fresh process per figure).

    python -m benchmarks.bench_memory            # prints the table
    python -m benchmarks.bench_memory child gzip {httpx|capped}
    python -m benchmarks.bench_memory child pixels {unbounded|budget} FOLDER

gzip: one ~280 KB gzip reply that inflates to 280 MiB, from the fake API on 127.0.0.1, read
as the engine did before (httpx inflating each chunk whole, the cap checked after) and as it
does now (read_capped). pixels: four 20-Mpx PNGs decoded and downscaled by four threads (the
workers of a concurrency-4 run) with no budget, and with the budget sized to one such sheet
(the real one is sized to the 300-Mpx limit; these sheets stand in for sheets just under it).
Each child prints {"rss_mb", "baseline_mb"}: peak RSS, and the peak before the measured step.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import threading
from pathlib import Path

from benchmarks.common import ROOT, emit_json, peak_rss_mb, run_child

BOMB = 280 << 20
SIDE = (5000, 4000)  # 20 Mpx


def child_gzip(mode: str) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    import httpx
    from fakeapi import FakeApi, gzip_bomb

    from herbdesk.extraction.engines.base import EngineError
    from herbdesk.extraction.engines.bounded import TooLarge, read_capped
    from herbdesk.extraction.engines.openrouter import MAX_REPLY_BYTES

    gzip_bomb(BOMB)
    with FakeApi(default=f"gzip_bomb:{BOMB}") as api, httpx.Client() as client:
        base = peak_rss_mb()
        payload = {"model": "test/vision-model", "messages": []}
        headers = {"Authorization": "Bearer sk-test-good"}
        url = f"{api.base_url}/chat/completions"
        with client.stream("POST", url, json=payload, headers=headers) as resp:
            if mode == "httpx":  # the engine's loop before: inflate a chunk, then count it
                size = 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > MAX_REPLY_BYTES:
                        break
            else:
                with contextlib.suppress(TooLarge, EngineError):
                    read_capped(resp.iter_raw(), resp.headers["content-encoding"], MAX_REPLY_BYTES)
    return {"rss_mb": peak_rss_mb(), "baseline_mb": base}


def child_pixels(mode: str, folder: Path) -> dict:
    from herbdesk.extraction import images
    from herbdesk.extraction.pixels import PixelBudget

    sheets = sorted(folder.glob("*.png"))
    limit = SIDE[0] * SIDE[1] if mode == "budget" else 10**12
    images.DECODE_BUDGET = PixelBudget(limit)
    base = peak_rss_mb()
    threads = [threading.Thread(target=images.load_image, args=(p, 2048)) for p in sheets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"rss_mb": peak_rss_mb(), "baseline_mb": base, "sheets": len(sheets)}


def make_sheets(folder: Path) -> None:
    from PIL import Image

    for i in range(4):
        im = Image.new("RGB", SIDE, (40 * i, 120, 200))
        im.putpixel((i, i), (255, 255, 255))
        im.save(folder / f"sheet_{i}.png")


def main() -> None:
    rows = []
    for mode in ("httpx", "capped"):
        r = run_child("bench_memory", "child", "gzip", mode)
        rows.append((f"280 MiB gzip bomb, {mode}", r))
    with tempfile.TemporaryDirectory() as tmp:
        make_sheets(Path(tmp))
        for mode in ("unbounded", "budget"):
            r = run_child("bench_memory", "child", "pixels", mode, tmp)
            rows.append((f"4 x 20-Mpx PNG at concurrency 4, {mode}", r))
    print(f"{'case':48} {'peak RSS MB':>12} {'step adds MB':>13}")
    for name, r in rows:
        print(f"{name:48} {r['rss_mb']:12.0f} {r['rss_mb'] - r['baseline_mb']:13.0f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        kind, mode = sys.argv[2], sys.argv[3]
        if kind == "gzip":
            emit_json(child_gzip(mode))
        else:
            emit_json(child_pixels(mode, Path(sys.argv[4])))
    else:
        main()
