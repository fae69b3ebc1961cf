"""Offline engine cost that other sessions' load cannot blur: pixels through each model.

    python -m benchmarks.ocr_work [IMAGES...]      # default: resources/specimens

Wall and CPU seconds (benchmarks/ocr_quality.py) swing with whatever else the machine runs;
the megapixels fed to the detector, the recogniser and the angle classifier do not, and with
the seconds per megapixel of each (timed here once, one thread) they say what a sheet costs.
"""

from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from benchmarks.common import ROOT


def _model(path: Any) -> str:
    name = Path(str(path)).name
    return "det" if "_det_" in name else "rec" if "_rec_" in name else "cls"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images", nargs="*", type=Path)
    args = ap.parse_args(argv)
    images = args.images or sorted((ROOT / "resources" / "specimens").glob("*.jpg"))
    work: collections.Counter[str] = collections.Counter()
    seconds: collections.Counter[str] = collections.Counter()
    init, run = ort.InferenceSession.__init__, ort.InferenceSession.run

    def counting_init(self: Any, path: Any, *a: Any, **k: Any) -> None:
        init(self, path, *a, **k)
        self._herbdesk_model = _model(path)

    def counting_run(self: Any, out: Any, feed: dict[str, np.ndarray], *a: Any, **k: Any) -> Any:
        t0 = time.process_time()
        res = run(self, out, feed, *a, **k)
        tag = getattr(self, "_herbdesk_model", "?")
        work[tag] += next(iter(feed.values())).size / 3e6  # 3 channels
        seconds[tag] += time.process_time() - t0
        return res

    ort.InferenceSession.__init__ = counting_init  # type: ignore[method-assign]
    ort.InferenceSession.run = counting_run  # type: ignore[method-assign]
    from herbdesk.extraction.engines.base import EngineSettings, SpecimenInput
    from herbdesk.extraction.engines.ocr import OcrEngine

    engine = OcrEngine(EngineSettings(engine="ocr", extra={"ocr_threads": 1}))
    engine.preflight()
    print("| sheet | det MP | rec MP | cls MP |")
    print("|---|--:|--:|--:|")
    total: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    for path in images:
        work.clear()
        seconds.clear()
        engine.extract(SpecimenInput(path, path.stem))
        total.update(work)
        calls.update(seconds)  # CPU seconds per model, summed over sheets
        print(f"| {path.stem} | {work['det']:.2f} | {work['rec']:.2f} | {work['cls']:.2f} |")
    engine.close()
    rate = {m: calls[m] / total[m] for m in total if total[m]}
    print(
        "\nCPU s per MP, one thread: " + ", ".join(f"{m} {r:.2f}" for m, r in sorted(rate.items()))
    )
    est = sum(total[m] * rate[m] for m in rate) / len(images)
    print(f"model CPU s per sheet, one thread: {est:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
