"""Time to the first verdict: from launching `herbdesk run` to its first `specimen.processing`.

    python -m benchmarks.bench_start [--size-kb 1024] [--big 10000] [--work DIR] [--skip X]

Prints one line per figure (and JSON at the end). Figures (issue 17):
  start_N      launch -> first specimen.processing, N = 100 and N = --big images of --size-kb
               (cold page cache when `echo 3 > /proc/sys/vm/drop_caches` is allowed; the line
               says whether it was)
  resume       a --big run with all but 10 done, resumed: launch -> first processing
  scan         scan_images over 100,000 paths in 100 folders (warm, in-process), and the
               memory the ImageList holds
  rss          peak RSS (VmHWM) of the first --rss-s seconds of a 100,000-image run minus a
               100-image run's
  resume_point resume_point() on a raw.jsonl of 1,000,000 records with ~2 KB of model text,
               and a whole-record parse of the same file for reference
The runs use the tests' fast fake engine (tests/herbdesk_runner.py), whose own time is ~0, so
what is measured is herbdesk's start. Every file is made under --work and deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import PY, ROOT

RUNNER = str(ROOT / "tests" / "herbdesk_runner.py")


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def make_images(folder: Path, n: int, size: int) -> Path:
    """n distinct files of `size` bytes (a JPEG start, random bytes, a distinct tail), in
    folders of 1,000, older than the image index's racy window."""
    block = b"\xff\xd8\xff\xe0" + os.urandom(size - 12)
    old = time.time() - 3600
    for i in range(n):
        d = folder / f"box{i // 1000:03d}"
        d.mkdir(parents=True, exist_ok=True)
        f = d / f"sheet_{i:07d}.jpg"
        f.write_bytes(block + i.to_bytes(8, "big"))
        os.utime(f, (old, old))
    return folder


def env(delay: float = 0.0) -> dict[str, str]:
    e = {**os.environ, "PYTHONPATH": str(ROOT), "HERBDESK_FAST_DELAY": str(delay)}
    e.pop("HERBDESK_NO_SCAN", None)
    return e


def time_to_processing(args: list[str], events: Path, timeout: float = 600) -> float:
    """Launch `herbdesk run args`; seconds until events.jsonl holds a specimen.processing."""
    offset0 = events.stat().st_size if events.exists() else 0
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [PY, RUNNER, "run", *args, "--quiet"],
        env=env(delay=0.5),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen_at = float("nan")
    offset = offset0  # a resume: only the events written after the launch
    try:
        while time.monotonic() - t0 < timeout and proc.poll() is None:
            if events.exists():
                with open(events, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
                if b'"specimen.processing"' in chunk:
                    seen_at = time.monotonic() - t0
                    break
                offset += chunk.rfind(b"\n") + 1
            time.sleep(0.005)
    finally:
        proc.terminate()
        proc.wait(60)
    return seen_at


def bench_start(work: Path, big: int, size: int, out: dict[str, object]) -> None:
    for n in (100, big):
        imgs = make_images(work / f"imgs{n}", n, size)
        cold = drop_caches()
        run_dir = work / "runs" / f"s{n}"
        t = time_to_processing(
            [str(imgs), "--engine", "fast", "--out", str(work / "runs"), "--run-id", f"s{n}"],
            run_dir / "events.jsonl",
        )
        out[f"start_{n}"] = t
        print(
            f"start_{n}: {t:.3f} s launch -> first specimen.processing "
            f"({n} x {size // 1024} KB, {'cold' if cold else 'WARM'} cache)",
            flush=True,
        )


def bench_resume(work: Path, big: int, out: dict[str, object]) -> None:
    imgs = work / f"imgs{big}"
    runs = work / "runs"
    subprocess.run(
        [PY, RUNNER, "run", str(imgs), "--engine", "fast", "--out", str(runs), "--run-id", "r",
         "--concurrency", "8", "--quiet"],
        env=env(), check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    raw = runs / "r" / "raw.jsonl"
    lines = raw.read_bytes().splitlines(keepends=True)
    raw.write_bytes(b"".join(lines[:-10]))  # all but ten done
    cold = drop_caches()
    t = time_to_processing(["--resume", str(runs / "r")], runs / "r" / "events.jsonl")
    out["resume"] = t
    print(
        f"resume: {t:.3f} s launch -> first processing, {len(lines) - 10} of {len(lines)} "
        f"done ({'cold' if cold else 'WARM'} cache)",
        flush=True,
    )


def bench_scan(work: Path, out: dict[str, object]) -> Path:
    import tracemalloc

    from herbdesk.extraction.images import scan_images

    root = work / "scan"
    for b in range(100):
        d = root / f"box{b:03d}"
        d.mkdir(parents=True)
        for i in range(1000):
            (d / f"sheet_{i:05d}.jpg").write_bytes(b"\xff\xd8" + os.urandom(8))
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        found = scan_images([root])
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    found = scan_images([root])
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    out["scan_s"], out["scan_mb"] = best, held / 1e6
    print(
        f"scan: {best:.3f} s for {len(found):,} paths (best of 3, warm); the list holds "
        f"{held / 1e6:.1f} MB",
        flush=True,
    )
    return root


def peak_rss(folder: Path, work: Path, name: str, seconds: float) -> int:
    proc = subprocess.Popen(
        [PY, RUNNER, "run", str(folder), "--engine", "fast", "--out", str(work / "runs"),
         "--run-id", name, "--quiet", "--concurrency", "4"],
        env=env(delay=0.01), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    hwm = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds and proc.poll() is None:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    hwm = max(hwm, int(line.split()[1]) * 1024)
        except OSError:
            break
        time.sleep(0.1)
    proc.terminate()
    proc.wait(60)
    return hwm


def bench_rss(work: Path, scan_root: Path, seconds: float, out: dict[str, object]) -> None:
    small = work / "small"
    small.mkdir()
    for f in sorted((scan_root / "box000").iterdir())[:100]:
        shutil.copy(f, small / f.name)
    a = peak_rss(small, work, "rss100", seconds)
    b = peak_rss(scan_root, work, "rss100k", seconds)
    out["rss_diff_mb"] = (b - a) / 1e6
    print(
        f"rss: peak {b / 1e6:.0f} MB (100,000 images) vs {a / 1e6:.0f} MB (100): "
        f"+{(b - a) / 1e6:.0f} MB over the first {seconds:.0f} s",
        flush=True,
    )


def bench_resume_point(work: Path, records: int, out: dict[str, object]) -> None:
    import orjson

    from herbdesk.common.dwc import DWC_TERMS
    from herbdesk.extraction import results

    raw = work / "big_raw.jsonl"
    text = "Herbarium of the University; collected by the expedition. " * 24  # + dwc: ~2 KB
    with open(raw, "wb") as fh:
        for i in range(records):
            rec = {
                "run_id": "run-x", "specimen_id": f"{i:064x}", "sequence": i + 1,
                "image": f"sheet_{i:07d}.jpg", "image_path": f"/data/box/sheet_{i:07d}.jpg",
                "timestamp": "2026-11-27T10:00:00.000Z", "engine": "openrouter",
                "model": "qwen/qwen2.5-vl-72b-instruct:free", "success": i % 10 != 3,
                "dwc": {t: {"value": f"{t} {i}", "confidence": 0.9} for t in DWC_TERMS[:15]},
                "raw_text": text, "usage": {"total_tokens": 1234}, "cost_usd": None,
                "attempts": 1, "processing_time_ms": 812.4,
                "error": None if i % 10 != 3 else {"kind": "bad_reply", "message": "no json"},
            }  # fmt: skip
            fh.write(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
    size = raw.stat().st_size
    results.resume_point(raw)  # warm the page cache: the figure is herbdesk's, not the disk's
    t0 = time.perf_counter()
    done, last, _ = results.resume_point(raw)
    t = time.perf_counter() - t0
    t0 = time.perf_counter()
    with open(raw, "rb") as fh:
        whole = sum(1 for line in fh if orjson.loads(line).get("success"))
    t_whole = time.perf_counter() - t0
    assert whole == len(done) and last == records
    out["resume_point_s"], out["whole_parse_s"] = t, t_whole
    print(
        f"resume_point: {t:.2f} s for {records:,} records ({size / 1e9:.1f} GB, warm; 10% "
        f"failures parsed whole); parsing every record whole: {t_whole:.2f} s",
        flush=True,
    )
    raw.unlink()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-kb", type=int, default=1024)
    ap.add_argument("--big", type=int, default=10_000)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--rss-s", type=float, default=60.0)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--skip", action="append", default=[], help="start|resume|scan|rss|point")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_start_", dir=a.work))
    out: dict[str, object] = {"cores": os.cpu_count(), "load": os.getloadavg()[0]}
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} (shared)", flush=True)
    try:
        if "start" not in a.skip:
            bench_start(work, a.big, a.size_kb * 1024, out)
        if "resume" not in a.skip and "start" not in a.skip:
            bench_resume(work, a.big, out)
        if "scan" not in a.skip:
            root = bench_scan(work, out)
            if "rss" not in a.skip:
                bench_rss(work, root, a.rss_s, out)
        if "point" not in a.skip:
            bench_resume_point(work, a.records, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
