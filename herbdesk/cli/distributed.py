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
    EXIT_BUDGET,
    EXIT_CANCELLED,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_PREFLIGHT,
    EXIT_USAGE,
    exit_code_for,
)
from herbdesk.distributed.keys import MAX_DELIVERIES, is_broker_url, redact_url

BROKER_ENV = "HERBDESK_BROKER"


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


def _client_or_exit(url: str | None) -> Any:
    """`_client`, or the exit code its error means (said on stderr): a bad URL is a usage
    error, an unreachable broker a failed preflight."""
    try:
        return _client(url)
    except ValueError as exc:
        return _err(str(exc), EXIT_USAGE)
    except ConnectionError as exc:
        return _err(str(exc), EXIT_PREFLIGHT)


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
    client = _client_or_exit(args.broker)
    if isinstance(client, int):
        return client
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


def _alerts(args: argparse.Namespace) -> Any:
    """The run's alerts from the flags and the config file, as for a local run (None: no
    channel); raises ValueError for a bad channel, SystemExit for a bad config file."""
    from herbdesk.cli.alerts import build_alerts
    from herbdesk.cli.runconfig import load_config_or_exit

    return build_alerts(args, load_config_or_exit(args.config))


def cmd_run_broker(args: argparse.Namespace) -> int:
    from herbdesk.cli.runconfig import build_run_config
    from herbdesk.distributed.enqueue import Enqueuer
    from herbdesk.extraction import runfiles
    from herbdesk.extraction.engines import available_engines
    from herbdesk.extraction.images import has_images, no_images_message

    if args.resume is not None:
        return _resume_broker(args)
    try:
        config = build_run_config(args)
        alerts = _alerts(args)
    except SystemExit as exc:
        return int(exc.code or EXIT_USAGE)
    except ValueError as exc:
        return _err(str(exc), EXIT_USAGE)
    if config.engine.engine not in available_engines():
        return _err(f"unknown engine {config.engine.engine!r}", EXIT_USAGE)
    if not has_images(config.inputs):
        return _err(no_images_message(config.inputs), EXIT_USAGE)
    client = _client_or_exit(args.broker)
    if isinstance(client, int):
        return client
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
        if alerts is not None:  # said, not silently dropped
            print(
                "herbdesk: with --detach no alerts are sent (the process that follows the "
                "run sends them: leave --detach out to have them)",
                file=sys.stderr,
            )
        m = started.manifest
        runfiles.record_run(
            run_dir,
            started.run_id,
            "enqueued",
            m["started_at"],
            m["config"],
            distributed=True,
            broker=m["broker"],
            total=m["total"],
        )
        return _stream_detached(enq, args.broker, run_dir)
    streaming = threading.Thread(
        target=_stream, args=(enq, None), name="herbdesk-enqueue", daemon=True
    )
    streaming.start()
    code = follow_run(args.broker, started.run_id, run_dir, quiet=args.quiet, alerts=alerts)
    if code == EXIT_BUDGET and streaming.is_alive():
        # a budget pause does not stop enqueueing: the run goes on later with all of them
        print(
            "herbdesk: enqueueing the rest, so that the run can go on with a higher budget",
            file=sys.stderr,
        )
        streaming.join()
    return code


def _resume_broker(args: argparse.Namespace) -> int:
    """`run --resume RUN_DIR --broker URL --budget USD`: a distributed run paused at its
    budget goes on with a higher one (RedisRun.reopen), followed as when it was enqueued.
    Only a budget pause reopens: workers take up other halted runs by no such step."""
    from herbdesk.cli.runconfig import parse_budget
    from herbdesk.distributed.broker import RedisRun
    from herbdesk.extraction import runfiles

    try:
        budget = parse_budget(args.budget)
        alerts = _alerts(args)
    except SystemExit as exc:
        return int(exc.code or EXIT_USAGE)
    except ValueError as exc:
        return _err(str(exc), EXIT_USAGE)
    if budget is None:
        return _err(
            "--resume with --broker goes on with a run paused at its budget: give the new "
            "--budget USD (a distributed run halted for another reason cannot be resumed)",
            EXIT_USAGE,
        )
    run_dir = Path(args.resume)
    run_id = str(runfiles.read_run_json(run_dir).get("run_id") or run_dir.name)
    client = _client_or_exit(args.broker)
    if isinstance(client, int):
        return client
    try:
        started = RedisRun(client, run_id).reopen(budget)
    except ValueError as exc:
        return _err(str(exc), EXIT_USAGE)
    print(
        f"herbdesk: {run_id} goes on with a budget of ${budget:.4f} (its cost so far "
        f"${float(started.data.get('cost_before_usd') or 0):.4f}); workers serving every run "
        "take it up again, start any that served only this run",
        file=sys.stderr,
    )
    return follow_run(
        args.broker, run_id, run_dir, quiet=args.quiet, since_seq=started.seq, alerts=alerts
    )


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


class _BrokerSink:
    """An EventBus sink that puts events on the run's stream (alert outcomes of a followed
    run: every viewer and the mirror see them, with the run's own seq)."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.last_seq = 0

    def write_event(self, event: Any) -> None:
        ev = self.run.emit(
            event.event_type,
            specimen_id=event.specimen_id,
            sequence=event.sequence,
            data=event.data,
            metrics=event.metrics,
        )
        self.last_seq = max(self.last_seq, ev.seq)


def follow_run(
    broker_url: str,
    run_id: str,
    run_dir: Path,
    *,
    quiet: bool = False,
    since_seq: int = 0,
    alerts: Any = None,
) -> int:
    """Show a distributed run's progress, mirror it into run_dir; exit code as a local run.

    `since_seq`: the run's stretch to follow begins there (a reopened run: its earlier end
    is mirrored, not taken for this one's). `alerts`: an AlertsConsumer that hears the run's
    events as a local run's would; what it sends is recorded on the run's stream."""
    from herbdesk.cli.progress import TerminalProgress
    from herbdesk.distributed.broker import RedisRun
    from herbdesk.distributed.follow import RedisFollower
    from herbdesk.events.bus import EventBus
    from herbdesk.events.types import TERMINAL_EVENT_TYPES, Event
    from herbdesk.extraction.config import RunOutcome

    control = RedisRun(_client(broker_url), run_id)  # made now: Ctrl-C must not wait on it
    q: queue.Queue[list[Event]] = queue.Queue()
    follower = RedisFollower(broker_url, run_id, q.put, mirror_dir=run_dir)
    progress = TerminalProgress(quiet=quiet)
    sink = _BrokerSink(control)
    if alerts is not None:
        alerts.attach(EventBus(run_id, sink), run_dir, log_outlives_end=True)
    terminal: Event | None = None
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
                        if ev.seq < since_seq:
                            continue  # an earlier stretch of a reopened run: mirrored only
                        progress.on_event(ev)
                        if alerts is not None:
                            alerts(ev)
                        if ev.event_type in TERMINAL_EVENT_TYPES and terminal is None:
                            terminal = ev
                    # after the end, in-flight specimens finish: wait for their events
                    if (
                        terminal is not None
                        and follower.caught_up
                        and not batch
                        and _settled(control)
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
            if alerts is not None:
                alerts.close()  # flush what the end raised (bounded wait), then mirror it
                _await_seq(follower, sink.last_seq)
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
    from herbdesk.distributed.keys import redact_url
    from herbdesk.monitor.ending import budget_go_on

    progress.final(outcome, go_on=budget_go_on(run_dir, redact_url(broker_url)))
    return exit_code_for(terminal)


MIRROR_WAIT_S = 3.0  # for the alert outcomes put on the stream at exit to reach the mirror


def _await_seq(follower: Any, seq: int) -> None:
    deadline = time.monotonic() + MIRROR_WAIT_S
    while follower.offset < seq and follower.state != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)


def _settled(run: Any) -> bool:
    """No specimen in flight on a live worker, and every recorded one announced: no more
    specimen events are coming (a killed worker's lease lapses, so this does not wait on it
    for long). True when the broker cannot say."""
    import redis

    try:
        k = run.keys
        return run.in_flight() == 0 and run.r.scard(k.key("emitted")) >= run.r.hlen(k.results)
    except redis.RedisError:
        return True
