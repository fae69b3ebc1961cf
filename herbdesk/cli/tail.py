"""`herbdesk tail`: follow a growing events.jsonl (local, network mount or ssh) in a terminal.

With neither --print nor --jsonl it opens the desktop app in tail mode instead. With
--until-done it exits when the run ends, with the same exit code `herbdesk run` would have
given, so a script can wait on a run started elsewhere.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson

from herbdesk.cli.exitcodes import (
    EXIT_BELOW_THRESHOLD,
    EXIT_BUDGET,
    EXIT_CANCELLED,
    EXIT_DEAD,
    EXIT_FATAL,
    EXIT_HALTED,
    EXIT_INTERNAL,
    EXIT_MEANINGS,
    EXIT_OK,
    EXIT_PREFLIGHT,
    EXIT_USAGE,
    exit_code_for,
)
from herbdesk.common.termtext import clean_text, json_safe
from herbdesk.events.layout import EVENTS
from herbdesk.events.types import TERMINAL_EVENT_TYPES, Event, EventType
from herbdesk.monitor.ending import paused_at_budget


def _code_list(codes: Sequence[int], width: int = 90) -> str:
    """'0 completed, 3 preflight failed, …' from EXIT_MEANINGS, wrapped between codes."""
    lines, line = [], " "
    for code in codes:
        item = f" {code} {EXIT_MEANINGS[code]},"
        if len(line) + len(item) > width:
            lines.append(line)
            line = " "
        line += item
    return "\n".join([*lines, line])


_RUN_ENDS = _code_list(
    (
        EXIT_OK,
        EXIT_PREFLIGHT,
        EXIT_HALTED,
        EXIT_FATAL,
        EXIT_BELOW_THRESHOLD,
        EXIT_BUDGET,
        EXIT_CANCELLED,
    )
)
TAIL_EPILOG = f"""targets:
  PATH                   an events.jsonl or a run directory; either is waited for if it does
                         not exist yet (a missing PATH not ending in .jsonl is a run directory)
  user@host:/abs/path    over ssh (also host:/abs/path and ssh://user@host:port/abs/path)
  redis://host:6379/0/RUN_ID  a distributed run on a Redis broker (mirrored to ./runs/RUN_ID)

exit codes with --until-done (as `herbdesk run`):
{_RUN_ENDS}
  {EXIT_DEAD} the run never ended: its writer on this host is gone (known at once), or nothing was
    written for --stale-minutes (a writer elsewhere; measured from the log's last write),
  {EXIT_INTERNAL} any other end; {EXIT_USAGE} usage error. Ctrl-C exits with {EXIT_CANCELLED}.
"""

_NL = orjson.OPT_APPEND_NEWLINE


class _Follower(Protocol):
    state: str

    @property
    def caught_up(self) -> bool: ...
    def start(self) -> None: ...
    def stop(self, timeout: float = 5.0) -> None: ...


def add_tail_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `tail` on the `herbdesk` subparsers; dispatch with `cmd_tail(args)`."""
    t: argparse.ArgumentParser = subparsers.add_parser(
        "tail",
        help="follow a growing events.jsonl: local, network mount, or user@host:/path over ssh",
        description="Follow a run's events.jsonl as it grows. Without --print/--jsonl, opens "
        "the desktop app following it.",
        epilog=TAIL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument(
        "target", metavar="PATH_OR_REMOTE", help="events.jsonl, run directory or user@host:/path"
    )
    out = t.add_mutually_exclusive_group()
    out.add_argument(
        "--print",
        dest="print_events",
        action="store_true",
        help="print one readable line per event",
    )
    out.add_argument("--jsonl", action="store_true", help="print normalized events as JSON lines")
    t.add_argument(
        "--until-done",
        action="store_true",
        help="exit when the run ends (completed, failed or cancelled)",
    )
    t.add_argument(
        "--poll",
        nargs="?",
        type=float,
        const=1.0,
        default=None,
        metavar="SECONDS",
        help="poll with stat every SECONDS (default 1) instead of file notifications; "
        "chosen automatically on network mounts",
    )
    start = t.add_mutually_exclusive_group()
    start.add_argument(
        "--from-start",
        dest="from_end",
        action="store_false",
        help="show the whole log first (default)",
    )
    start.add_argument(
        "--from-end",
        dest="from_end",
        action="store_true",
        help="show only events appended from now on",
    )
    t.add_argument(
        "--stale-minutes",
        type=float,
        metavar="N",
        help="report an unfinished run silent this long as stalled (default 10); with "
        f"--until-done exit {EXIT_DEAD}. A dead writer on this host is reported at once",
    )
    t.add_argument("-i", "--identity", type=Path, help="ssh identity file")
    t.add_argument(
        "-o",
        "--ssh-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra ssh option, e.g. -o StrictHostKeyChecking=accept-new",
    )
    t.set_defaults(from_end=False, func=cmd_tail)
    return t


def _clean(value: Any, limit: int = 200) -> str:
    """Log data must not drive the terminal (escape-sequence injection): see termtext."""
    return clean_text(value, limit=limit)


def _pct(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "?"


def format_event(ev: Event) -> str:
    """One readable line: time, type, specimen short id, the data that matters for the type."""
    ts = ev.timestamp[11:23] if len(ev.timestamp) >= 23 else ev.timestamp or "-"
    sid = (ev.specimen_id or "-")[:8]
    d = ev.data
    t = ev.event_type
    if t == EventType.EXTRACTION_STARTED:
        info = f"total={d.get('total')}" + (" resumed" if d.get("resumed") else "")
    elif t == EventType.PREFLIGHT_COMPLETED:
        checks = [c for c in d.get("checks") or [] if isinstance(c, dict)]
        bad = [c.get("name") for c in checks if not c.get("ok")]
        info = "ok" if d.get("ok") else "FAILED " + ", ".join(map(str, bad))
    elif t == EventType.SPECIMEN_RETRYING:
        if d.get("reason") == "quota":
            info = f"waits for the quota reset ({d.get('delay_s')}s): {d.get('error')}"
        else:
            info = f"attempt {d.get('attempt')} in {d.get('delay_s')}s: {d.get('error')}"
    elif t in (EventType.SPECIMEN_COMPLETED, EventType.SPECIMEN_FAILED):
        info = f"#{ev.sequence} {d.get('image', '')}"
        if t == EventType.SPECIMEN_COMPLETED:
            conf = d.get("confidence")
            info += f" fields={d.get('fields_extracted')}"
            info += f" conf={conf:.2f}" if isinstance(conf, int | float) else ""
            ms = d.get("processing_time_ms")
            info += f" {ms:.0f}ms" if isinstance(ms, int | float) else ""
        else:
            err = d.get("error")
            err = err if isinstance(err, dict) else {"message": err or ""}
            info += f" {err.get('kind', 'error')}: {err.get('message', '')}"
    elif t == EventType.VALIDATION_CHECKPOINT:
        info = (
            f"checkpoint {d.get('checkpoint')} {str(d.get('status', '?')).upper()}: "
            f"success {_pct(d.get('success_rate'))} ({d.get('succeeded')} ok, "
            f"{d.get('failed')} failed), threshold {_pct(d.get('threshold'))}"
        )
    elif t == EventType.VALIDATION_WARNING:
        info = str(d.get("message") or f"success {_pct(d.get('success_rate'))}")
    elif t == EventType.CONSUMER_ERROR:
        info = f"{d.get('consumer')}: {d.get('error')}"
    elif t in TERMINAL_EVENT_TYPES:
        reason = f" ({d.get('reason')})" if d.get("reason") else ""
        message = f": {d['message']}" if d.get("message") else ""
        processed, ok, failed = d.get("processed"), d.get("succeeded"), d.get("failed")
        if failed is None and isinstance(processed, int) and isinstance(ok, int):
            failed = processed - ok  # a writer that left it out (older or other tools)
        counts = (
            f" [{processed} processed: {ok} ok, {failed} failed]" if processed is not None else ""
        )
        status = d.get("status", t.split(".")[-1])
        if paused_at_budget(status, d.get("reason")):  # resumable: no failure
            status, reason = "PAUSED AT BUDGET", ""
        info = f"{status}{reason}{message}{counts}"
    else:
        info = " ".join(str(d[k]) for k in ("image", "reason") if d.get(k))
    return f"{ts}  {_clean(t, 24):<22}  {sid:<8}  {_clean(info)}".rstrip()


def _make_follower(args: argparse.Namespace, q: queue.Queue[tuple[str, Any]]) -> _Follower:
    from herbdesk.events.reader import not_regular_reason
    from herbdesk.events.ssh_tail import SshTailFollower, parse_remote_target
    from herbdesk.events.tail import TailFollower

    target: str = args.target
    is_redis = target.startswith(("redis://", "rediss://", "unix://"))
    remote = None if os.path.exists(target) or is_redis else parse_remote_target(target)
    on_events = lambda evs: q.put(("events", evs))  # noqa: E731
    on_status = lambda st: q.put(("status", st))  # noqa: E731
    from herbdesk.distributed.follow import follower_for_target

    rf = follower_for_target(target, on_events, on_status, from_end=args.from_end)
    if rf is not None:
        return rf
    if remote is not None:
        return SshTailFollower(
            remote,
            on_events,
            on_status=on_status,
            identity_file=args.identity,
            ssh_options=args.ssh_option,
            from_end=args.from_end,
        )
    path = Path(target)
    if path.is_dir() or (not path.exists() and path.suffix != ".jsonl"):
        path = path / EVENTS  # a run directory, perhaps one a run is about to create
    if (reason := not_regular_reason(path)) is not None:  # a FIFO would hang, /dev/zero spin
        raise ValueError(reason)
    return TailFollower(
        path,
        on_events,
        on_status=on_status,
        from_end=args.from_end,
        mode="poll" if args.poll is not None else "auto",
        poll_interval=args.poll or 1.0,
    )


def cmd_tail(args: argparse.Namespace) -> int:
    """Run `herbdesk tail`; returns the process exit code."""
    if not (args.print_events or args.jsonl):
        from herbdesk.cli.app import launch_app

        argv = ["--tail", args.target]
        if args.poll is not None:
            argv += ["--poll", str(args.poll)]
        if args.from_end:
            argv.append("--from-end")
        if args.identity is not None:
            argv += ["--identity", str(args.identity)]
        if args.stale_minutes is not None:
            argv += ["--stale-minutes", str(args.stale_minutes)]
        return launch_app(argv)
    q: queue.Queue[tuple[str, Any]] = queue.Queue()
    try:
        follower = _make_follower(args, q)
    except ValueError as exc:
        print(f"herbdesk tail: error: {_clean(exc, 2000)}", file=sys.stderr)
        return EXIT_USAGE
    done: Event | None = None
    last_state = ""
    out = sys.stdout
    from herbdesk.extraction.liveness import (  # not at import: state needs numpy
        DEFAULT_STALE_S,
        RunWatch,
    )

    minutes = args.stale_minutes
    stale_s = DEFAULT_STALE_S if minutes is None else max(1.0, float(minutes) * 60.0)
    from herbdesk.events.tail import TailFollower

    # a local log's directory holds run.json and run.lock, which name the writer
    local_dir = follower.path.parent if isinstance(follower, TailFollower) else None
    watch = RunWatch(local_dir, stale_s)
    reported = ""
    follower.start()
    try:
        while True:
            try:
                kind, item = q.get(timeout=0.2)
            except queue.Empty:
                kind, item = "", None
            if kind == "events":
                for ev in item:
                    if args.jsonl:
                        out.buffer.write(json_safe(orjson.dumps(ev.to_dict(), option=_NL)))
                    else:
                        out.write(format_event(ev) + "\n")
                    watch.saw(ev)
                    if ev.event_type in TERMINAL_EVENT_TYPES:
                        done = ev
                    elif ev.event_type == EventType.EXTRACTION_STARTED:
                        done = None  # a resumed run continues the same log
                        reported = ""
                out.flush()
            elif kind == "status" and (item.state != last_state or item.change):
                last_state = item.state
                print(f"herbdesk tail [{item.state}]: {_clean(item.message)}", file=sys.stderr)
            if args.until_done and done is not None and follower.caught_up and q.empty():
                return exit_code_for(done)
            if done is None and kind == "" and follower.caught_up:
                verdict = watch.check()  # at most every 0.2 s, and only once caught up
                if verdict is not None and verdict.state != reported:
                    reported = verdict.state
                    msg = _clean(verdict.message, 1000)
                    print(f"herbdesk tail [{verdict.state}]: {msg}", file=sys.stderr)
                if verdict is not None and args.until_done:
                    return EXIT_DEAD
                if verdict is None:
                    reported = ""
            if follower.state == "stopped" and q.empty():
                return EXIT_INTERNAL
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    except BrokenPipeError:  # `herbdesk tail --print … | head`
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
        return EXIT_OK
    finally:
        follower.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """`herbdesk tail` on its own: argv holds the tail arguments (without the word `tail`)."""
    parser = argparse.ArgumentParser(prog="herbdesk")
    add_tail_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["tail", *(sys.argv[1:] if argv is None else argv)])
    return cmd_tail(args)


if __name__ == "__main__":
    sys.exit(main())
