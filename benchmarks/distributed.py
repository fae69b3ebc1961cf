"""Throughput of a distributed run with 1, 2 and 4 worker processes (delayed fake API).

    python benchmarks/distributed.py [--specimens 120] [--delay 0.1] [--concurrency 4]
                                     [--budget USD]

Starts its own redis-server (Debian package redis-server) on a free port and the tests' fake
chat-completions server with a fixed per-request delay, enqueues the same images once per
worker count and prints specimens/second from the first processing event to the terminal
event. Each worker process runs `--concurrency` specimens in flight, so the fake API's delay
is the bottleneck and throughput should scale close to linearly with the number of processes.
`--budget` (high enough never to pause) measures what the shared budget's admission costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from herbdesk.distributed.broker import RedisRun, event_from_entry  # noqa: E402
from herbdesk.distributed.enqueue import enqueue_run  # noqa: E402
from herbdesk.distributed.keys import connect  # noqa: E402
from herbdesk.events.types import TERMINAL_EVENT_TYPES, EventType  # noqa: E402
from tests.fakeapi import FakeApi  # noqa: E402
from tests.helpers import api_config  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str, object]:
    """A throwaway redis-server on a free loopback port: (process, URL, a connected client)."""
    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        sys.exit("redis-server not found (apt-get install redis-server)")
    port = _free_port()
    server = subprocess.Popen(
        [redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--daemonize", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = connect(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except Exception:
            time.sleep(0.05)
    return server, url, client


def _images(d: Path, n: int) -> Path:
    from PIL import Image

    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = Image.new("RGB", (64, 48), (i % 256, (i * 7) % 256, (i * 13) % 256))
        img.putpixel((i % 64, (i // 64) % 48), (255, 255, 255))
        img.save(d / f"sheet_{i:04d}.jpg", quality=95)
    return d


def _ts(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--specimens", type=int, default=120)
    ap.add_argument("--delay", type=float, default=0.1, help="fake API delay per request (s)")
    ap.add_argument("--concurrency", type=int, default=4, help="in flight per worker process")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--budget", type=float, default=None, help="the run's --budget (USD)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="herbdesk-bench-"))
    server, url, client = start_redis(tmp)
    imgs = _images(tmp / "imgs", args.specimens)
    env = {**os.environ, "OPENROUTER_API_KEY": "sk-test-good", "PYTHONPATH": str(ROOT)}
    print(
        f"{args.specimens} specimens, fake API delay {args.delay}s, "
        f"{args.concurrency} in flight per worker process, budget {args.budget}"
    )
    print(f"{'workers':>7}  {'seconds':>8}  {'spec/s':>7}  {'speedup':>7}")
    base = None
    try:
        with FakeApi(delay_s=args.delay) as api:
            for n in (int(x) for x in args.workers.split(",")):
                run_id = f"bench-{n}"
                cfg = api_config(imgs, tmp, api.base_url, run_id=run_id, budget_usd=args.budget)
                enqueue_run(client, cfg, url)
                procs = [
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "herbdesk",
                            "worker",
                            "--broker",
                            url,
                            "--run-id",
                            run_id,
                            "--concurrency",
                            str(args.concurrency),
                        ],
                        env=env,
                        stderr=subprocess.DEVNULL,
                    )
                    for _ in range(n)
                ]
                for p in procs:
                    p.wait(600)
                run = RedisRun(client, run_id)
                events = [event_from_entry(f) for _, f in client.xrange(run.keys.events)]
                first = min(
                    _ts(e.timestamp)
                    for e in events
                    if e.event_type == EventType.SPECIMEN_PROCESSING
                )
                last = max(_ts(e.timestamp) for e in events if e.event_type in TERMINAL_EVENT_TYPES)
                done = sum(1 for e in events if e.event_type == EventType.SPECIMEN_COMPLETED)
                assert done == args.specimens, done
                secs = last - first
                rate = done / secs
                base = base or rate
                print(f"{n:>7}  {secs:>8.2f}  {rate:>7.1f}  {rate / base:>6.2f}x", flush=True)
    finally:
        server.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
