"""Live ingest and tail latency: a writer process appends to a log that a window tails.

    python -m benchmarks.bench_live gui --rate 10000 --seconds 60 [--poll S]
    (the gui mode starts `python -m benchmarks.bench_live writer ...` itself)

The writer appends realistic event lines (the make_log mix: queued, processing, completed
with the quality object of a judged record and the pipeline's metrics snapshot, made before
the clock starts) at RATE lines/s in 10 ms bursts, each flushed, and stamps every line with
its write time (data.t_write, wall clock). The GUI process is the real MainWindow
(offscreen) following the file with `MainWindow.tail`. It reports:
  lag_s        time from the writer's last line to the run state holding every line
  stall_p99_ms p99 (and max) of how late a 10 ms heartbeat QTimer fired: event-loop stalls
  latency p50/p99 ms  append -> arrival in the run state, per line
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from benchmarks.common import PY, ROOT, emit_json, peak_rss_mb


def completions(n: int) -> list[tuple[dict, dict]]:  # type: ignore[type-arg]
    """(data, metrics) of n completed specimens as a run writes them: make_log's judged
    records (benchmarks/records.py) and MetricsAccumulator snapshots counting usable ones."""
    from benchmarks.records import RecordMaker
    from herbdesk.monitor.metrics import MetricsAccumulator

    records, m, rng = RecordMaker(7), MetricsAccumulator(total=n), random.Random(7)
    out = []
    for i in range(n):
        rec = records.record(i)
        quality = records.quality(rec)
        t_ms, conf = rng.uniform(8000, 40000), rng.uniform(0.4, 0.98)
        m.add(True, t_ms, conf, 1400, 0.0011, usable=quality["usable"])
        data = {
            "image": f"DAO{i:07d}.jpg",
            "success": True,
            "fields_extracted": len(rec),
            "confidence": round(conf, 4),
            "processing_time_ms": round(t_ms, 1),
            "attempts": 1,
            "tokens": 1400,
            "cost_usd": 0.0011,
            "quality": quality,
        }
        out.append((data, m.snapshot(i * 20.0 + 1)))
    return out


def writer(path: Path, rate: int, seconds: float) -> None:
    n_total = int(rate * seconds)
    done = completions(n_total // 3 + 1)
    print("ready", flush=True)  # the GUI starts its heartbeat now
    seq = 0
    with open(path, "ab", buffering=0) as fh:
        start = time.perf_counter()
        written = 0
        while written < n_total:
            due = min(n_total, int((time.perf_counter() - start) * rate) + 1)
            lines = []
            now = time.time()
            while written < due:
                i = written // 3
                kind = written % 3
                seq += 1
                sid = hashlib.sha256(str(i).encode()).hexdigest()
                img = f"DAO{i:07d}.jpg"
                if kind == 0:
                    et, data, m = "specimen.queued", {"image": img, "path": f"/data/{img}"}, None
                elif kind == 1:
                    et, data, m = "specimen.processing", {"image": img}, None
                else:
                    et = "specimen.completed"
                    data, m = done[i]
                data["t_write"] = now
                obj = {
                    "schema_version": 1,
                    "seq": seq,
                    "event_type": et,
                    "timestamp": "2026-11-26T22:00:00.000Z",
                    "run_id": "live-bench",
                    "specimen_id": sid,
                    "data": data,
                }
                if m is not None:
                    obj["metrics"] = m
                lines.append(orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE))
                written += 1
            fh.write(b"".join(lines))
            time.sleep(0.01)
    print(orjson.dumps({"written": written, "end": time.time()}).decode(), flush=True)
    os._exit(0)  # the GUI waits for this process: tearing down its records is no lag of the tail


def gui(rate: int, seconds: float, poll: float | None) -> dict:
    import statistics

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from herbdesk.ui.mainwindow import MainWindow

    tmp = Path(tempfile.mkdtemp(prefix="herbdesk-live-"))
    log = tmp / "events.jsonl"
    log.write_bytes(b"")
    app = QApplication([sys.argv[0]])
    win = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    win.resize(1400, 900)
    win.show()
    latencies: list[float] = []
    gaps: list[float] = []

    def on_batch(batch: list) -> None:  # type: ignore[type-arg]
        now = time.time()
        for ev in batch:
            t = ev.data.get("t_write") if hasattr(ev, "data") else None
            if isinstance(t, float):
                latencies.append(now - t)

    win.tail(str(log), poll_interval=poll)
    win.document.events_applied.connect(on_batch)
    last = [time.perf_counter()]

    def beat() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    warm = time.perf_counter() + 1.0  # the window's first layout and paint are not a stall
    while time.perf_counter() < warm:
        app.processEvents()
        time.sleep(0.005)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "benchmarks.bench_live",
            "writer",
            str(log),
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    while proc.stdout.readline().strip() != "ready":  # its lines are made before the clock
        if proc.poll() is not None:
            raise SystemExit("the writer ended before it was ready")
    hb = QTimer()
    hb.setInterval(10)
    hb.timeout.connect(beat)
    last[0] = time.perf_counter()
    hb.start()
    while proc.poll() is None:
        app.processEvents()
        time.sleep(0.001)
    info = orjson.loads(proc.stdout.read().strip().splitlines()[-1]) if proc.stdout else {}
    written, end = int(info["written"]), float(info["end"])
    deadline = time.time() + 120
    while win.document.state.events < written and time.time() < deadline:
        app.processEvents()
        time.sleep(0.001)
    lag = time.time() - end
    hb.stop()
    got = win.document.state.events
    mode = win.tail_source.mode if win.tail_source else "?"
    win.shutdown()
    stalls = sorted(max(0.0, g - 0.010) for g in gaps[1:]) or [0.0]
    lat = sorted(latencies) or [float("nan")]

    def pct(xs: list[float], q: float) -> float:
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    return {
        "written": written,
        "folded": got,
        "lag_s": lag if got >= written else float("inf"),
        "stall_p99_ms": pct(stalls, 0.99) * 1000,
        "stall_max_ms": stalls[-1] * 1000,
        "lat_p50_ms": pct(lat, 0.5) * 1000,
        "lat_p99_ms": pct(lat, 0.99) * 1000,
        "lat_mean_ms": statistics.fmean(lat) * 1000,
        "rss_mb": peak_rss_mb(),
        "mode": mode,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["gui", "writer"])
    ap.add_argument("path", nargs="?", type=Path)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--poll", type=float, default=None)
    a = ap.parse_args()
    if a.mode == "writer":
        assert a.path is not None
        writer(a.path, a.rate, a.seconds)
    else:
        emit_json(gui(a.rate, a.seconds, a.poll))


if __name__ == "__main__":
    main()
