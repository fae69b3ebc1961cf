"""`herbdesk export`: a run's records as CSV or a Darwin Core Archive."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from herbdesk.cli.exitcodes import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, usage_error

EXPORT_EXIT_HELP = f"""exit codes:
  {EXIT_OK:<4} written
  {EXIT_INTERNAL:<4} internal error
  {EXIT_USAGE:<4} usage error: not a run or log, no raw.jsonl, --out exists (without --force), its
       folder missing, or the file could not be written; nothing is left behind
"""


def add_export_parser(sub: Any) -> None:
    e = sub.add_parser(
        "export",
        help="write a run's records as CSV or a Darwin Core Archive (docs/export.md)",
        description="Write a run's records (per specimen its newest successful one) as an "
        "occurrences CSV or a Darwin Core Archive, with the run's provenance.",
        epilog=EXPORT_EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument(
        "path",
        type=Path,
        help="a run directory, its events.jsonl, or a raw.jsonl (also the original scripts')",
    )
    e.add_argument(
        "--format", dest="fmt", choices=("csv", "dwca"), required=True, help="csv or dwca (zip)"
    )
    e.add_argument(
        "--only",
        choices=("usable",),
        help="'usable': only records the quality checks judge usable (docs/quality.md)",
    )
    e.add_argument(
        "--reviewed",
        action="store_true",
        help="only records with a spot-check review verdict (docs/review.md)",
    )
    e.add_argument("--out", type=Path, required=True, help="the file to write")
    e.add_argument("--force", action="store_true", help="replace --out if it exists")


def cmd_export(args: argparse.Namespace) -> int:
    from herbdesk.common.termtext import clean_text
    from herbdesk.export import ExportError, ExportOptions, export

    options = ExportOptions(
        source=args.path,
        out=args.out,
        fmt=args.fmt,
        only_usable=args.only == "usable",
        only_reviewed=args.reviewed,
        force=args.force,
    )
    try:
        result = export(options)
    except ExportError as exc:
        return usage_error(str(exc))
    except OSError as exc:  # a full disk, a refused folder: the temporary file is gone
        return usage_error(f"cannot write {args.out}: {exc}")
    for note in result.notes:
        print(f"herbdesk: note: {clean_text(note)}", file=sys.stderr)
    print(f"herbdesk: {clean_text(result.message())}")
    return EXIT_OK
