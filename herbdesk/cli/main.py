"""The `herbdesk` command: its parser and the dispatch to each subcommand's module.

Subcommands import their modules when chosen, so `herbdesk --help` and `tail` start fast and the
window's libraries load only for `app`/`open`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from herbdesk import __version__
from herbdesk.cli.app import launch_app
from herbdesk.cli.exitcodes import EXIT_BUDGET, EXIT_CODES_HELP, EXIT_USAGE
from herbdesk.cli.export import add_export_parser, cmd_export
from herbdesk.cli.review import add_review_parser, cmd_review
from herbdesk.common.apikeys import DEFAULT_KEY_ENV
from herbdesk.extraction.engines.base import DEFAULT_BASE_URL


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="herbdesk",
        description="Run and monitor Darwin Core extraction from herbarium specimen images. "
        "With no command, opens the desktop app.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"herbdesk {__version__}")
    # handled in main() before parsing (it takes no command); declared so --help lists it
    p.add_argument(
        "--smoke-test",
        action="store_true",
        help="self-test the install: run the sample sheets offscreen",
    )
    sub = p.add_subparsers(dest="command")
    sub.add_parser("app", help="open the desktop app (the default with no command); see app --help")
    sub.add_parser("open", help="open a run directory or events.jsonl in the app (--screenshot F)")

    r = sub.add_parser(
        "run",
        help="extract Darwin Core from images, headless, streaming events",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("images", nargs="*", type=Path, help="image files or folders (recursive)")
    r.add_argument("--sample", action="store_true", help="use the bundled sample sheets")
    r.add_argument(
        "--engine", help="ocr (offline, default) or openrouter (any OpenAI-compatible API)"
    )
    r.add_argument(
        "--model", help="model id for the API engine (default qwen/qwen2.5-vl-72b-instruct:free)"
    )
    r.add_argument("--base-url", help=f"API base URL (default {DEFAULT_BASE_URL})")
    r.add_argument(
        "--api-key-env",
        default=DEFAULT_KEY_ENV,
        help=f"environment variable holding the API key (default {DEFAULT_KEY_ENV}); "
        "the OS keyring is tried after it",
    )
    r.add_argument("--concurrency", type=int, help="specimens in flight (default 4; 1 for ocr)")
    r.add_argument("--out", type=Path, help="output folder for run directories (default ./runs)")
    r.add_argument("--run-id", help="name of the run directory (default run-<UTC time>-<hex>)")
    r.add_argument("--limit", type=int, help="process only the first N images")
    r.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a previous run")
    r.add_argument("--prompt", type=Path, metavar="FILE", help="prompt file for the API engine")
    r.add_argument("--max-side", type=int, help="downscale images to this long side (default 2048)")
    r.add_argument("--timeout", type=float, help="per-request timeout in seconds (default 120)")
    r.add_argument("--max-attempts", type=int, help="attempts per specimen on transient errors (4)")
    r.add_argument(
        "--requests-per-minute",
        type=float,
        metavar="N",
        help="start at most N API requests a minute across all workers (default: 18 for "
        "OpenRouter's ':free' models, whose cap is 20; otherwise unpaced; 0 = unpaced)",
    )
    r.add_argument(
        "--budget",
        type=float,
        metavar="USD",
        help="pause the run before its cost (over all its invocations) would go past USD: "
        "in-flight specimens finish, nothing new starts, and herbdesk run ends "
        f"(exit {EXIT_BUDGET}); "
        "go on with --resume RUN_DIR --budget HIGHER (and --broker URL for a run "
        "enqueued with it: workers share the one budget)",
    )
    r.add_argument("--config", type=Path, help="TOML file with [run] and [validation] tables")
    v = r.add_argument_group("validation")
    v.add_argument(
        "--checkpoint-after", type=int, help="finished specimens before the checkpoint (5)"
    )
    v.add_argument("--checkpoint-threshold", type=float, help="halt below this success rate (0.5)")
    v.add_argument("--warning-every", type=int, help="check the success rate every N (50)")
    v.add_argument("--warning-threshold", type=float, help="warn below this success rate (0.7)")
    v.add_argument(
        "--max-consecutive-failures", type=int, help="halt after N failures in a row (10; 0=off)"
    )
    q = r.add_argument_group("record quality (docs/quality.md)")
    q.add_argument(
        "--quality-threshold",
        type=float,
        help="halt at the checkpoint, and fail the end verdict, below this share of usable "
        "records (0.5)",
    )
    q.add_argument(
        "--no-degraded-halt",
        dest="degraded_halt",
        action="store_false",
        default=None,
        help="do not halt when the last 50 specimens fall below the thresholds",
    )
    q.add_argument(
        "--require",
        metavar="TERMS",
        help="terms a usable record needs: comma between groups, | between alternatives "
        "(default scientificName,eventDate|recordedBy|locality)",
    )
    q.add_argument("--catalog-pattern", metavar="REGEX", help="catalogNumber must match this")
    q.add_argument(
        "--gold",
        type=Path,
        metavar="FILE",
        help="known-answer sheets (CSV: image or catalogNumber, then expected terms; or JSON: "
        "{image stem: {term: value}}); "
        "queued first, a run whose answers are wrong halts",
    )
    q.add_argument(
        "--gold-threshold", type=float, help="halt below this share of right gold terms (0.7)"
    )
    q.add_argument(
        "--checklist",
        type=Path,
        metavar="FILE",
        help="names checklist (text, CSV with scientificName, DwC-A, COLDP) to match names",
    )
    r.add_argument("--quiet", action="store_true", help="no live progress, only the final line")
    from herbdesk.cli.alerts import add_alert_arguments

    add_alert_arguments(r)
    from herbdesk.cli.distributed import add_broker_arguments, add_worker_parser

    add_broker_arguments(r)
    add_worker_parser(sub)

    from herbdesk.cli.tail import add_tail_parser

    add_tail_parser(sub)

    s = sub.add_parser(
        "summary",
        help="print what a run did, from its events.jsonl or run dir",
        description="Print what a run did: status, counts, record quality, cost, the writer.",
    )
    s.add_argument(
        "path",
        type=Path,
        help="a run directory, its events.jsonl, a raw.jsonl (also the original scripts'), "
        "or a runs folder (lists the runs inside)",
    )
    s.add_argument("--json", action="store_true", help="machine-readable output")
    add_export_parser(sub)
    add_review_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--smoke-test":
        from herbdesk.cli.smoke import run_smoke_test

        return run_smoke_test()
    if not argv or argv[0] in ("app", "open"):
        # `open PATH` and `app …` go straight to the app's own argument parser
        return launch_app(argv[1:] if argv else [], f"herbdesk {argv[0] if argv else 'app'}")
    parser = _build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the subcommand's parser: its own usage, not the top level's
        _subparser(parser, args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.smoke_test:  # `--smoke-test` after another option
        if args.command is not None:
            parser.error("--smoke-test takes no command")
        from herbdesk.cli.smoke import run_smoke_test

        return run_smoke_test()
    from herbdesk.cli.distributed import maybe_run_distributed

    if (code := maybe_run_distributed(args)) is not None:
        return code
    if args.command == "run":
        from herbdesk.cli.run import cmd_run

        return cmd_run(args)
    if args.command == "tail":
        from herbdesk.cli.tail import cmd_tail

        return cmd_tail(args)
    if args.command == "summary":
        from herbdesk.cli.summary import cmd_summary

        return cmd_summary(args.path, as_json=args.json)
    if args.command == "export":
        return cmd_export(args)
    if args.command == "review":
        return cmd_review(args)
    parser.print_help()
    return EXIT_USAGE


def _subparser(parser: argparse.ArgumentParser, name: str | None) -> argparse.ArgumentParser:
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            sub: argparse.ArgumentParser = action.choices[name]
            return sub
    return parser
