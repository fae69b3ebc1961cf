"""Every figure of issue 6, as min/median/max of several runs, with its ratio to a reference.

    python benchmarks/run.py [--quick] [--only open,live,tail,extract,table,startup]
                             [--log EVENTS.jsonl] [--out results.md]

Needs the `bench` extra (polars, the reference reader): pip install -e '.[bench]'.
Each sample runs in a fresh process (peak RSS is that sample's own); GUI figures use the real
MainWindow on Qt's offscreen platform. --quick shrinks every workload (~2 minutes) to check that
the scripts work; the figures in docs/performance.md come from a full run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PY, ROOT, Figure, child_cwd, code_path, print_table, run_child


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), "
        f"{mem:.0f} GiB RAM, Python {platform.python_version()}"
    )


def scanner_state() -> str:
    """Which log scanner the measured code has: the open figures depend on it."""
    probe = "from herbdesk.events import fastscan; print(fastscan.AVAILABLE)"
    env = dict(os.environ, PYTHONPATH=code_path() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(
        [PY, "-c", probe], cwd=child_cwd(), env=env, capture_output=True, text=True, check=False
    ).stdout.strip()
    if out == "True":
        return "compiled log scanner"
    return (
        "log scanner NOT built: the open figures measure the Python path "
        "(pip install -e '.[bench]' in this checkout builds it)"
    )


def ensure_log(path: Path | None, specimens: int) -> Path:
    if path is not None:
        return path
    out = Path(os.environ.get("TMPDIR", "/tmp")) / "herbdesk-bench" / f"events_{specimens}.jsonl"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        print(f"writing {out} ({specimens:,} specimens, 3 events each)…", flush=True)
        subprocess.run(
            [PY, str(ROOT / "benchmarks" / "make_log.py"), str(out), "--specimens", str(specimens)],
            check=True,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
    return out


def bench_open(log: Path, runs: int) -> list[Figure]:
    size_mb = log.stat().st_size / 1e6
    pol, fold, fold_rss, pol_rss, win = [], [], [], [], []
    for _ in range(runs):  # interleaved, so all three see the same machine load
        r = run_child("bench_open", "polars", str(log))
        pol.append(r["seconds"])
        pol_rss.append(r["rss_mb"])
        r = run_child("bench_open", "fold", str(log))
        fold.append(r["seconds"])
        fold_rss.append(r["rss_mb"])
        events = r["events"]
        win.append(run_child("bench_open", "window", str(log)))
    f_fold = Figure(
        f"open: fold {events:,} events ({size_mb:.0f} MB) into RunState, headless",
        "s",
        fold,
        "ratio <= 1.0",
        reference=pol,
    )
    f_fold.ok = (f_fold.ratio or 99) <= 1.0
    figs = [
        Figure("open: polars.read_ndjson (reference)", "s", pol, "reference"),
        f_fold,
        Figure(
            "open: fold peak RSS",
            "MB",
            fold_rss,
            "<= 400",
            reference=pol_rss,
            ok=max(fold_rss) <= 400,
        ),
        Figure(
            "open: offscreen window, fully loaded",
            "s",
            [w["seconds"] for w in win],
            "ratio <= 1.0",
            reference=pol,
        ),
        Figure(
            "open: offscreen window peak RSS",
            "MB",
            [w["rss_mb"] for w in win],
            "<= 400",
            ok=max(w["rss_mb"] for w in win) <= 400,
        ),
        Figure(
            "open: first rows and plots shown",
            "s",
            [w["first_rows_s"] for w in win],
            "<= 0.5",
            ok=max(w["first_rows_s"] for w in win) <= 0.5,
        ),
    ]
    figs[3].ok = (figs[3].ratio or 99) <= 1.0
    return figs


def bench_live(seconds: float, runs: int) -> list[Figure]:
    res = [
        run_child("bench_live", "gui", "--rate", "10000", "--seconds", str(seconds))
        for _ in range(runs)
    ]
    lag = [r["lag_s"] for r in res]
    stall = [r["stall_p99_ms"] for r in res]
    p50 = [r["lat_p50_ms"] for r in res]
    p99 = [r["lat_p99_ms"] for r in res]
    mode = res[0]["mode"]
    return [
        Figure(
            f"live: 10k events/s for {seconds:g} s, lag at the end",
            "s",
            lag,
            "< 1",
            ok=max(lag) < 1,
        ),
        Figure(
            "live: event-loop stall p99 (10 ms heartbeat)",
            "ms",
            stall,
            "<= 50",
            ok=max(stall) <= 50,
        ),
        Figure("live: stall max", "ms", [r["stall_max_ms"] for r in res], "-"),
        Figure(f"tail latency p50 at 10k/s ({mode})", "ms", p50, "<= 20", ok=max(p50) <= 20),
        Figure(f"tail latency p99 at 10k/s ({mode})", "ms", p99, "<= 100", ok=max(p99) <= 100),
    ]


def bench_tail(seconds: float, runs: int) -> list[Figure]:
    figs = []
    for label, extra, lim50, lim99 in (
        ("local (auto)", [], 20, 100),
        ("polling 0.5 s", ["--poll", "0.5"], None, 600),
    ):
        res = [
            run_child("bench_live", "gui", "--rate", "200", "--seconds", str(seconds), *extra)
            for _ in range(runs)
        ]
        p50 = [r["lat_p50_ms"] for r in res]
        p99 = [r["lat_p99_ms"] for r in res]
        figs.append(
            Figure(
                f"tail latency p50, 200 events/s, {label}",
                "ms",
                p50,
                f"<= {lim50}" if lim50 else "-",
                ok=(max(p50) <= lim50) if lim50 else None,
            )
        )
        figs.append(
            Figure(
                f"tail latency p99, 200 events/s, {label}",
                "ms",
                p99,
                f"<= {lim99}",
                ok=max(p99) <= lim99,
            )
        )
    return figs


def bench_extract(specimens: int, delay: float, runs: int) -> list[Figure]:
    figs = []
    base: list[float] = []
    for c in (1, 4, 16):
        secs = [
            run_child(
                "bench_extract",
                "scaling",
                "--specimens",
                str(specimens),
                "--delay",
                str(delay),
                "--concurrency",
                str(c),
            )["seconds"]
            for _ in range(runs)
        ]
        if c == 1:
            base = secs
        f = Figure(
            f"extract: {specimens} specimens, {delay:g} s API delay, concurrency {c}",
            "s",
            secs,
            f"speed-up >= {0.9 * c:g}" if c > 1 else "reference",
        )
        if c > 1:
            speedup = statistics.median(base) / f.median
            f.note = f"(speed-up {speedup:.2f})"
            f.ok = speedup >= 0.9 * c
        figs.append(f)
    ev = [
        run_child("bench_extract", "eventpath", "--events", "20000")["us_per_event"]
        for _ in range(runs)
    ]
    figs.append(
        Figure(
            "event path: emit + JSONL append/flush + consumers",
            "µs/event",
            ev,
            "< 100",
            ok=max(ev) < 100,
        )
    )
    return figs


def bench_table(rows: int, runs: int) -> list[Figure]:
    res = [run_child("bench_table", "--rows", str(rows)) for _ in range(runs)]
    names = {
        "sort_confidence_s": "sort by confidence (number)",
        "sort_confidence_desc_s": "sort by confidence, descending",
        "sort_file_s": "sort by file (text)",
        "sort_status_s": "sort by status",
        "filter_status_s": "filter: status = failed",
        "filter_text_s": "filter: text",
        "filter_clear_s": "filter: clear both",
    }
    figs = [
        Figure(
            f"table {rows:,} rows: {label}",
            "s",
            [r[k] for r in res],
            "< 1",
            ok=max(r[k] for r in res) < 1,
        )
        for k, label in names.items()
    ]
    figs.append(
        Figure(
            f"table {rows:,} rows: scroll one page + repaint",
            "ms",
            [r["scroll_page_ms"] for r in res],
            "smooth (< 33)",
            ok=max(r["scroll_page_ms"] for r in res) < 33,
        )
    )
    return figs


def bench_startup(runs: int) -> list[Figure]:
    secs = [run_child("bench_startup")["seconds"] for _ in range(runs)]
    return [Figure("start-up: `herbdesk` to window shown", "s", secs, "< 2", ok=max(secs) < 2)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small workloads, to check the scripts")
    ap.add_argument("--only", default="open,live,tail,extract,table,startup")
    ap.add_argument("--log", type=Path, help="an existing events.jsonl for the open figures")
    ap.add_argument("--out", type=Path, help="also write the tables (Markdown) to this file")
    a = ap.parse_args()
    q = a.quick
    only = set(a.only.split(","))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    text = [
        f"Machine: {machine()}\n",
        f"herbdesk: {scanner_state()}\n",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f"{' (--quick)' if q else ''}\n\n",
    ]
    if q:
        text.append(
            "--quick shrinks every workload: the figures check the scripts; the met "
            "column does not apply (200 specimens at concurrency 16 become 40).\n\n"
        )
    print("".join(text))
    if "open" in only:
        log = ensure_log(a.log, 33_334 if q else 333_333)
        text.append(print_table("Opening a log", bench_open(log, 2 if q else 5)))
    if "live" in only:
        text.append(print_table("Live ingest", bench_live(5 if q else 60, 1 if q else 2)))
    if "tail" in only:
        text.append(print_table("Tail latency", bench_tail(3 if q else 10, 1 if q else 3)))
    if "extract" in only:
        text.append(
            print_table(
                "Extraction throughput and the event path",
                bench_extract(40 if q else 200, 0.1 if q else 0.25, 2 if q else 3),
            )
        )
    if "table" in only:
        text.append(
            print_table(
                "The specimen table", bench_table(100_000 if q else 1_000_000, 1 if q else 3)
            )
        )
    if "startup" in only:
        text.append(print_table("Start-up", bench_startup(3 if q else 5)))
    if a.out:
        a.out.write_text("\n".join(text))


if __name__ == "__main__":
    main()
