"""Distributed start: from `herbdesk run --broker` to the first worker's first specimen.

    python benchmarks/bench_broker_start.py [--images 10000] [--size-kb 1024]

Starts its own redis-server on a free port, the tests' fake chat-completions server, and one
`herbdesk worker` process that waits for runs. Then launches `herbdesk run IMAGES --broker URL`
and prints the seconds from that launch to the first `specimen.processing` event in the run's
stream (wall clock on one machine; cold page cache where /proc/sys/vm/drop_caches allows).
The issue's target: at most 2 s on 10,000 images.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_start import drop_caches, make_images  # noqa: E402
from benchmarks.distributed import start_redis  # noqa: E402
from herbdesk.distributed.broker import RedisRun, event_from_entry  # noqa: E402
from herbdesk.events.types import EventType  # noqa: E402
from tests.fakeapi import FakeApi  # noqa: E402


def _ts(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--size-kb", type=int, default=1024)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="herbdesk-broker-start-"))
    server, url, client = start_redis(tmp)
    env = {**os.environ, "OPENROUTER_API_KEY": "sk-test-good", "PYTHONPATH": str(ROOT)}
    env["HOME"] = str(tmp / "home")  # nothing of the user's settings is read or written
    worker = None
    try:
        imgs = make_images(tmp / "imgs", args.images, args.size_kb * 1024)
        with FakeApi(delay_s=0.5) as api:
            worker = subprocess.Popen(
                [sys.executable, "-m", "herbdesk", "worker", "--broker", url],
                env=env,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(2.0)  # the worker is up and polling for runs
            cold = drop_caches()
            t0 = time.time()
            run = subprocess.Popen(
                [
                    sys.executable, "-m", "herbdesk", "run", str(imgs), "--broker", url,
                    "--engine", "openrouter", "--base-url", api.base_url,
                    "--model", "test/vision-model", "--run-id", "b", "--detach",
                    "--out", str(tmp / "runs"),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            stream = RedisRun(client, "b").keys.events
            first = None
            deadline = time.monotonic() + 600
            while first is None and time.monotonic() < deadline:
                for _, f in client.xrange(stream):
                    ev = event_from_entry(f)
                    if ev.event_type == EventType.SPECIMEN_PROCESSING:
                        first = _ts(ev.timestamp)
                        break
                time.sleep(0.01)
            run.wait(600)
            cache = "cold" if cold else "WARM"
            shown = f"{first - t0:.3f} s" if first is not None else "never (600 s)"
            print(
                f"distributed start: {shown} from `run --broker` to the first worker's first "
                f"specimen.processing ({args.images:,} x {args.size_kb} KB, {cache} cache)"
            )
    finally:
        if worker is not None:
            worker.kill()
            worker.wait(30)
        server.kill()
        server.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
