"""What opening a log costs before any folding: the parsing floor under the open ratio.

    python -m benchmarks.bench_floor LOG [--runs 3]

Times, on the same file and in one process (min of --runs):
  polars_full      polars.read_ndjson(LOG): the reference of the open figure (both cores, Rust)
  polars_flat      polars reading only the top-level scalar fields the fold needs
  polars_fields    the same plus the `data` fields the fold reads (a struct projection)
  split            reading the file in 4 MB blocks and splitting them into lines
  orjson_lines     orjson.loads of every line (what the general path parses)
  msgspec_lines    herbdesk's typed decode of every line (events/bulk.py, the Python path)
  scan             the compiled scanner over the file in 4 MB blocks (events/_scan.c), no fold
  fold_python      load_state(LOG) without the compiled scanner (the install without a compiler)
  fold             herbdesk.cli.summary.load_state(LOG): the whole fold, as the open figure times it
Prints one JSON line of seconds.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

from benchmarks.common import emit_json


def _lines(path: Path) -> list[bytes]:
    """The file's lines, split a 4 MB block at a time."""
    out: list[bytes] = []
    carry = b""
    with path.open("rb") as fh:
        while block := fh.read(4 << 20):
            lines = (carry + block).split(b"\n")
            carry = lines.pop()
            out.extend(lines)
    if carry:
        out.append(carry)
    return out


def _scan(path: Path) -> int:
    from herbdesk.events import fastscan

    scanner = fastscan.BlockScanner()
    n = 0
    carry = b""
    with path.open("rb") as fh:
        while block := fh.read(4 << 20):
            buf = carry + block
            cut = buf.rfind(b"\n") + 1
            n += len(scanner.scan(buf, cut))
            carry = buf[cut:]
    return n


def _fold_python(path: Path) -> None:
    from herbdesk.events import fastscan
    from herbdesk.runstate.load import load_state

    saved, fastscan.AVAILABLE = fastscan.AVAILABLE, False
    try:
        load_state(path)
    finally:
        fastscan.AVAILABLE = saved


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("log", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    import orjson
    import polars as pl

    from herbdesk.events.bulk import decode_bulk
    from herbdesk.runstate.load import load_state

    flat = {
        "seq": pl.Int64,
        "event_type": pl.Utf8,
        "timestamp": pl.Utf8,
        "specimen_id": pl.Utf8,
        "sequence": pl.Int64,
    }
    data = pl.Struct(
        {
            "image": pl.Utf8,
            "path": pl.Utf8,
            "success": pl.Boolean,
            "fields_extracted": pl.Int64,
            "confidence": pl.Float64,
            "processing_time_ms": pl.Float64,
            "attempts": pl.Int64,
            "tokens": pl.Int64,
            "cost_usd": pl.Float64,
        }
    )
    lines = _lines(a.log)

    def orjson_all() -> None:
        loads = orjson.loads
        for line in lines:
            loads(line)

    def msgspec_all() -> None:
        for line in lines:
            decode_bulk(line)

    cases = {
        "polars_full": lambda: pl.read_ndjson(a.log),
        "polars_flat": lambda: pl.scan_ndjson(a.log, schema=flat).collect(),
        "polars_fields": lambda: pl.scan_ndjson(a.log, schema={**flat, "data": data}).collect(),
        "split": lambda: _lines(a.log),
        "orjson_lines": orjson_all,
        "msgspec_lines": msgspec_all,
        "scan": lambda: _scan(a.log),
        "fold_python": lambda: _fold_python(a.log),
        "fold": lambda: load_state(a.log),
    }
    out: dict[str, float] = {}
    gc.disable()  # as the fold runs: no collector passes over what the cases build
    for name, fn in cases.items():
        best = float("inf")
        for _ in range(a.runs):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
            gc.collect()
        out[name] = best
    out["lines"] = len(lines)
    emit_json(out)


if __name__ == "__main__":
    main()
