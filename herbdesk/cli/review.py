"""`herbdesk review`: the accuracy estimate from a run's recorded review verdicts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson

from herbdesk.cli.exitcodes import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, usage_error
from herbdesk.quality.review import DEFAULT_SAMPLE

REVIEW_EXIT_HELP = f"""exit codes:
  {EXIT_OK:<4} printed (also when no verdict is recorded yet: it says so)
  {EXIT_INTERNAL:<4} internal error
  {EXIT_USAGE:<4} usage error: not a run directory or event log, a run without raw.jsonl, or a file
       holding no result records (a CSV, an image)
"""


def add_review_parser(sub: Any) -> None:
    r = sub.add_parser(
        "review",
        help="print the per-term accuracy estimate from a run's review verdicts (docs/review.md)",
        description="Print, per Darwin Core term, the share of correct values estimated "
        "from the spot-check review's verdicts on the random audit sample, with a 95 % "
        "Wilson interval, and the wrong records expected among the unreviewed. Verdicts are "
        "recorded by the window's review mode (View > Review...).",
        epilog=REVIEW_EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("path", type=Path, help="a run directory or its events.jsonl")
    r.add_argument(
        "--sample",
        type=int,
        default=DEFAULT_SAMPLE,
        metavar="N",
        help=f"size of the random audit sample (default {DEFAULT_SAMPLE}): how many of "
        "its records are reviewed is reported",
    )
    r.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_review(args: argparse.Namespace) -> int:
    from herbdesk.common.termtext import clean_text
    from herbdesk.export.reviewsession import ExportError, ReviewSession

    if args.sample < 1:
        return usage_error("--sample must be at least 1")
    try:
        session = ReviewSession.load(args.path, args.sample)  # read only: no appender
    except ExportError as exc:
        return usage_error(str(exc))
    summary = session.summary()
    if args.json:
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        return EXIT_OK
    s = summary["sample"]
    print(
        clean_text(
            f"{summary['run_id']}: {summary['records']:,} record(s); random sample "
            f"{s['reviewed']:,} of {s['drawn']:,} reviewed (sample size {s['size']:,}); "
            f"{summary['risk_reviewed']:,} risk-queue record(s) reviewed; "
            f"{summary['verdicts']:,} verdict(s)"
        )
    )
    lines = session.estimate_lines()
    if not lines:
        print("no verdicts on the random sample yet: no estimate (review in the window: "
              "View > Review...)")  # fmt: skip
    for line in lines:
        print(clean_text(line))
    return EXIT_OK
