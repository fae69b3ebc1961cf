"""Offline engine quality: per-term accuracy against a truth file, calibration, seconds a sheet.

    python -m benchmarks.ocr_quality --truth ../shared/data/specimens/truth.json [IMAGES...]
    python -m benchmarks.ocr_quality --truth truth.json --run RUN_DIR   # score a run's raw.jsonl
    python -m benchmarks.ocr_quality --truth truth.json --checklist names.txt IMAGES...

The truth file is JSON: {"<image stem>": {"<term>": "<value>", ..., "_handwritten": [terms]}}
(keys starting with "_" are notes). Values are compared as the gold comparison does
(herbdesk.quality.gold.compare: case, accents and punctuation ignored, dates by value, names by
genus and epithet). Each term is counted over the sheets that carry it, split into printed
and handwritten; an extracted term the truth does not list is not counted (truth lists what
is legible, not all a label may hold).

The calibration table puts every extracted value that the truth can judge (its term is in the
truth for that sheet) into a confidence band and says how often it was right: a band of 0.9
should be right about 9 times in 10. Without --run, the engine is run here with one thread
per core and each sheet is timed (wall seconds, after a warm-up read that loads the models).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT

BANDS = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 1.01)


def load_truth(path: Path) -> dict[str, dict[str, Any]]:
    """Sheet stem -> expected terms (with "_handwritten" kept as a list): the reader `--gold`
    uses for the same file."""
    from herbdesk.quality.gold import read_truth

    return read_truth(path)


def read_run(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Image stem -> the dwc object of its last raw.jsonl record."""
    out: dict[str, dict[str, Any]] = {}
    with (run_dir / "raw.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                out[Path(str(rec.get("image", ""))).stem] = rec.get("dwc") or {}
    return out


def run_engine(
    images: list[Path], checklist: Path | None
) -> tuple[dict[str, Any], list[float], list[float]]:
    """Runs the offline engine on each image: (stem -> dwc object, wall and CPU seconds per
    sheet). CPU seconds (all threads) over the cores is what a sheet costs on an idle machine:
    on a shared one, wall time also counts the other workers' load."""
    from herbdesk.extraction.engines.base import EngineError, EngineSettings, SpecimenInput
    from herbdesk.extraction.engines.ocr import OcrEngine

    extra: dict[str, Any] = {}
    if checklist:
        extra["checklist"] = str(checklist)
    engine = OcrEngine(EngineSettings(engine="ocr", extra=extra))
    engine.preflight()  # loads the models, so the first sheet is not charged for it
    out: dict[str, Any] = {}
    seconds: list[float] = []
    cpu: list[float] = []
    for path in images:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            res = engine.extract(SpecimenInput(path, path.stem))
            out[path.stem] = {
                t: {"value": f.value, "confidence": f.confidence} for t, f in res.fields.items()
            }
        except EngineError as exc:
            print(f"{path.name}: {exc.kind}: {exc.message}", file=sys.stderr)
            out[path.stem] = {}
        seconds.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    engine.close()
    return out, seconds, cpu


def score(
    truth: Mapping[str, Mapping[str, Any]], got: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, dict[str, list[int]]], list[tuple[float, bool]], list[str]]:
    """Per term {"print": [right, of], "hand": [right, of]}, (confidence, right) pairs, misses."""
    from herbdesk.quality.gold import compare

    table: dict[str, dict[str, list[int]]] = {}
    pairs: list[tuple[float, bool]] = []
    misses: list[str] = []
    for stem, expected in truth.items():
        hand = set(expected.get("_handwritten", []))
        want = {t: str(v) for t, v in expected.items() if not t.startswith("_")}
        values = got.get(stem, {})
        for term, verdict in compare(want, values).items():
            cell = table.setdefault(term, {"print": [0, 0], "hand": [0, 0]})
            kind = "hand" if term in hand else "print"
            cell[kind][1] += 1
            cell[kind][0] += verdict == "correct"
            v = values.get(term)
            if isinstance(v, Mapping) and v.get("confidence") is not None:
                pairs.append((float(v["confidence"]), verdict == "correct"))
            if verdict != "correct":
                shown = v.get("value") if isinstance(v, Mapping) else v
                misses.append(f"{stem} {term} [{kind}]: want {want[term]!r}, got {shown!r}")
    return table, pairs, misses


def _frac(cell: list[int]) -> str:
    return f"{cell[0]}/{cell[1]}" if cell[1] else "-"


def print_tables(
    table: Mapping[str, Mapping[str, list[int]]], pairs: list[tuple[float, bool]]
) -> None:
    print("| term | printed | handwritten | all | % |")
    print("|---|--:|--:|--:|--:|")
    total = [0, 0]
    for term in sorted(table):
        p, h = table[term]["print"], table[term]["hand"]
        a = [p[0] + h[0], p[1] + h[1]]
        total = [total[0] + a[0], total[1] + a[1]]
        print(f"| {term} | {_frac(p)} | {_frac(h)} | {_frac(a)} | {100 * a[0] / a[1]:.0f} |")
    pr = [sum(c["print"][0] for c in table.values()), sum(c["print"][1] for c in table.values())]
    print(f"| **all** | {_frac(pr)} | | {_frac(total)} | {100 * total[0] / max(1, total[1]):.0f} |")
    print()
    print("| confidence | values | right | % right |")
    print("|---|--:|--:|--:|")
    for lo, hi in itertools.pairwise(BANDS):
        band = [ok for c, ok in pairs if lo <= c < hi]
        if band:
            pct = 100 * sum(band) / len(band)
            print(f"| {lo:.1f}–{min(hi, 1.0):.1f} | {len(band)} | {sum(band)} | {pct:.0f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images", nargs="*", type=Path, help="sheets (default: resources/specimens)")
    ap.add_argument("--truth", type=Path, required=True, help="truth JSON (see the docstring)")
    ap.add_argument("--run", type=Path, help="score this run directory's raw.jsonl instead")
    ap.add_argument("--checklist", type=Path, help="names checklist for the engine")
    ap.add_argument("--misses", action="store_true", help="list every wrong or missing value")
    args = ap.parse_args(argv)
    truth = load_truth(args.truth)
    if args.run:
        got = read_run(args.run)
        seconds: list[float] = []
        cpu: list[float] = []
    else:
        images = args.images or sorted((ROOT / "resources" / "specimens").glob("*.jpg"))
        got, seconds, cpu = run_engine(images, args.checklist)
    table, pairs, misses = score(truth, got)
    print_tables(table, pairs)
    if seconds:
        cores = os.cpu_count() or 1
        print(f"\nper sheet, {cores} cores, load average {os.getloadavg()[0]:.1f} at the end:")
        print("  wall s: " + ", ".join(f"{s:.2f}" for s in seconds) + f"; max {max(seconds):.2f}")
        per_core = [c / cores for c in cpu]
        print(
            "  CPU s / cores: "
            + ", ".join(f"{c:.2f}" for c in per_core)
            + f"; max {max(per_core):.2f}"
        )
    if args.misses:
        print("\n" + "\n".join(misses))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
