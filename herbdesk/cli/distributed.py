"""CLI wiring for distributed runs: `herbdesk run --broker`, `herbdesk worker`.

Kept apart so main.py only registers and dispatches (a few lines there).
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from herbdesk.cli.exitcodes import (
    EXIT_CANCELLED,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_PREFLIGHT,
    EXIT_USAGE,
    exit_code_for,
)
from herbdesk.distributed.keys import MAX_DELIVERIES, is_broker_url, redact_url

BROKER_ENV = "HERBDESK_BROKER"
DRAIN_AFTER_END_S = 3.0  # after the terminal event: in-flight specimens still land in the mirror


def add_broker_arguments(run_parser: argparse.ArgumentParser) -> None:
    """`--broker`/`--detach` on `herbdesk run`."""
    g = run_parser.add_argument_group("distributed (Redis Streams; see docs/distributed.md)")
    g.add_argument(
        "--broker",
        metavar="URL",
        help="enqueue the run on a Redis broker (redis://[:password@]host:6379/0, rediss:// for "
        "TLS) for `herbdesk worker` processes, then follow it like a local run",
    )
    g.add_argument("--detach", action="store_true", help="with --broker: return after enqueueing")


def add_worker_parser(sub: Any) -> argparse.ArgumentParser:
    w: argparse.ArgumentParser = sub.add_parser(
        "worker",
        help="process specimens of runs enqueued on a Redis broker",
        description="Join the consumer group of runs on the broker and extract their specimens. "
        "The API key is read from this worker's environment (the variable the run names).",
    )
    w.add_argument(
        "--broker",
        default=os.environ.get(BROKER_ENV),
        help=f"redis:// or rediss:// URL (default ${BROKER_ENV})",
    )
    w.add_argument("--concurrency", type=int, default=1, help="specimens in flight (default 1)")
    w.add_argument("--run-id", help="serve only this run and exit when it ends")
    w.add_argument(
        "--claim-idle",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="claim specimens pending this long on another (dead) worker (default 60)",
    )
    w.add_argument(
        "--max-deliveries",
        type=int,
        default=None,
        metavar="N",
        help="fail a specimen (worker_crashed) instead of taking it again once workers have "
        f"taken it N times without finishing it (each one crashed or was killed; default "
        f"{MAX_DELIVERIES})",
    )
    w.add_argument("--name", help="consumer name (default host-pid)")
    w.add_argument("-v", "--verbose", action="store_true")
    return w


def maybe_run_distributed(args: argparse.Namespace) -> int | None:
    """Handle `worker` and `run --broker`; None when the command is not distributed."""
    if args.command == "worker":
        return cmd_worker(args)
    if args.command == "run" and getattr(args, "broker", None):
        return cmd_run_broker(args)
    return None


def _err(msg: str, code: int) -> int:
    from herbdesk.common.termtext import clean_text

    print(f"herbdesk: error: {clean_text(msg)}", file=sys.stderr)
    return code


def _client(url: str | None) -> Any:
    import redis

    from herbdesk.distributed.keys import connect

    if not url or not is_broker_url(url):
        raise ValueError(
            f"--broker must be a redis://, rediss:// or unix:// URL, "
            f"not {redact_url(url or '(none)')!r}"
        )
    client = connect(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ConnectionError(
            f"cannot reach the broker {redact_url(url)}: {redact_url(str(exc))}"
        ) from exc
    return client


def cmd_worker(args: argparse.Namespace) -> int:
    from herbdesk.distributed.worker import Worker

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    if args.concurrency < 1:
        return _err("--concurrency must be >= 1", EXIT_USAGE)
    max_deliveries = MAX_DELIVERIES if args.max_deliveries is None else args.max_deliveries
    if max_deliveries < 1:
        return _err("--max-deliveries must be >= 1", EXIT_USAGE)
    try:
        client = _client(args.broker)
    except ValueError as exc:
        return _err(str(exc), EXIT_USAGE)
    except ConnectionError as exc:
        return _err(str(exc), EXIT_PREFLIGHT)
    worker = Worker(
        client,
        concurrency=args.concurrency,
        run_id=args.run_id,
        claim_idle_s=args.claim_idle,
        name=args.name,
        max_deliveries=max_deliveries,
    )
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    print(
        f"herbdesk worker {worker.name}: serving "
        f"{args.run_id or 'every run'} on {redact_url(args.broker)}",
        file=sys.stderr,
    )
    try:
        return worker.run()
    except KeyboardInterrupt:
        worker.stop()
        return EXIT_CANCELLED


def cmd_run_broker(args: argparse.Namespace) -> int:
    from herbdesk.cli.runconfig import build_run_config
    from herbdesk.distributed.enqueue import Enqueuer
    from herbdesk.extraction import runfiles
    from herbdesk.extraction.engines import available_engines
    from herbdesk.extraction.images import has_images

    if args.resume is not None:
        return _err(
            "--resume is not supported with --broker (workers resume by themselves)", EXIT_USAGE
        )
    try:
        config = build_run_config(args)
    except SystemExit as exc:
        return int(exc.code or EXIT_USAGE)
    if config.budget_usd is not None:  # said, not silently ignored: no shared budget yet
        return _err(
            "--budget is not supported with --broker yet (the workers keep no shared cost); "
            "run it without --broker, or leave the budget out",
            EXIT_USAGE,
        )
    if config.engine.engine not in available_engines():
        return _err(f"unknown engine {config.engine.engine!r}", EXIT_USAGE)
    if not has_images(config.inputs):
        return _err("no images found under " + ", ".join(map(str, config.inputs)), EXIT_USAGE)
    try:
        client = _client(args.broker)
    except ValueError as exc:
        return _err(str(exc), EXIT_USAGE)
    except ConnectionError as exc:
        return _err(str(exc), EXIT_PREFLIGHT)
    try:
        enq = Enqueuer(client, config, args.broker, args.api_key_env)
        started = enq.start()  # a taken run id or a bad gold file: an error here, exit 2
    except (FileExistsError, ValueError) as exc:
        return _err(str(exc), EXIT_USAGE)
    run_dir = Path(config.out_dir) / started.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    target = f"{redact_url(args.broker).rstrip('/')}/{started.run_id}"
    print(
        f"herbdesk: enqueueing {started.total} images as {started.run_id} (workers start on "
        f"the first ones at once); follow with `herbdesk tail {target}`",
        file=sys.stderr,
    )
    if args.detach:
        m = started.manifest
        runfiles.write_run_json(
            run_dir,
            {
                "run_id": started.run_id,
                "status": "enqueued",
                "distributed": True,
                **{k: m[k] for k in ("broker", "total", "started_at", "config")},
            },
        )
        return _stream_detached(enq, args.broker, run_dir)
    streaming = threading.Thread(
        target=_stream, args=(enq, None), name="herbdesk-enqueue", daemon=True
    )
    streaming.start()
    return follow_run(args.broker, started.run_id, run_dir, quiet=args.quiet)


ENQUEUE_LOG = "enqueue.log"


def _stream(enq: Any, log_path: Path | None) -> None:
    """Enqueue the rest; a failure (the broker lost) is said, on stderr or in the log file."""
    try:
        n = enq.stream()
        if log_path is not None:
            log_path.write_text(f"enqueued {n} specimens\n", encoding="utf-8")
    except Exception as exc:
        msg = f"herbdesk: enqueueing stopped after {enq.queued} specimens: {exc}"
        if log_path is None:
            print(msg, file=sys.stderr)
        else:
            log_path.write_text(msg + "\n", encoding="utf-8")


def _stream_detached(enq: Any, broker_url: str, run_dir: Path) -> int:
    """`--detach`: the rest is enqueued by a child process of its own session, so this
    command returns while enqueueing is under way (how it ended: run_dir/enqueue.log).
    Where there is no fork (Windows) everything is enqueued before returning."""
    if not hasattr(os, "fork"):
        _stream(enq, run_dir / ENQUEUE_LOG)
        return EXIT_OK
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork():
        return EXIT_OK
    code = 1
    try:  # the child: no terminal, no shared connection with the parent
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        enq.rebind(_client(broker_url))
        _stream(enq, run_dir / ENQUEUE_LOG)
        code = 0
    finally:
        os._exit(code)


def follow_run(broker_url: str, run_id: str, run_dir: Path, *, quiet: bool = False) -> int:
    """Show a distributed run's progress, mirror it into run_dir; exit code as a local run."""
    from herbdesk.cli.progress import TerminalProgress
    from herbdesk.distributed.broker import RedisRun
    from herbdesk.distributed.follow import RedisFollower
    from herbdesk.events.types import TERMINAL_EVENT_TYPES, Event
    from herbdesk.extraction.config import RunOutcome

    control = RedisRun(_client(broker_url), run_id)  # made now: Ctrl-C must not wait on it
    q: queue.Queue[list[Event]] = queue.Queue()
    follower = RedisFollower(broker_url, run_id, q.put, mirror_dir=run_dir)
    progress = TerminalProgress(quiet=quiet)
    terminal: Event | None = None
    ended_at = 0.0
    interrupts = 0
    with progress:
        follower.start()
        try:
            while True:
                try:
                    try:
                        batch = q.get(timeout=0.2)
                    except queue.Empty:
                        batch = []
                    for ev in batch:
                        progress.on_event(ev)
                        if ev.event_type in TERMINAL_EVENT_TYPES and terminal is None:
                            terminal, ended_at = ev, time.monotonic()
                    if terminal is not None and (
                        time.monotonic() - ended_at > DRAIN_AFTER_END_S
                        or (follower.caught_up and not batch and _nothing_pending(follower))
                    ):
                        break
                    if follower.state == "stopped" and q.empty():
                        return EXIT_INTERNAL
                except KeyboardInterrupt:
                    interrupts += 1
                    if interrupts > 1:
                        return EXIT_CANCELLED
                    progress.note(
                        "stopping: workers finish in-flight specimens, take no more "
                        "(Ctrl-C again to stop following)"
                    )
                    control.cancel()
        except KeyboardInterrupt:  # a second Ctrl-C while the first is handled
            return EXIT_CANCELLED
        finally:
            follower.stop()
    assert terminal is not None
    d = terminal.data
    outcome = RunOutcome(
        run_id,
        run_dir,
        str(d.get("status") or "failed"),
        d.get("reason"),
        str(d.get("message") or ""),
        dict(terminal.metrics or {}),
    )
    progress.final(outcome)
    return exit_code_for(terminal)


def _nothing_pending(follower: Any) -> bool:
    """No specimen still in flight on a worker (so no more events are coming)."""
    from herbdesk.distributed.keys import GROUP, RunKeys

    client = follower._client
    if client is None:
        return True
    try:
        info = client.xpending(RunKeys(follower.run_id).specimens, GROUP)
    except Exception:
        return True
    return not int(info.get("pending") or 0)
