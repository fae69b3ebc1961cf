"""`herbdesk app` and `herbdesk open`: the desktop app, imported only when asked for."""

from __future__ import annotations

import sys

from herbdesk.cli.exitcodes import EXIT_USAGE


def launch_app(argv: list[str], prog: str = "herbdesk app") -> int:
    try:
        from herbdesk.ui.app import run_app
    except ImportError as exc:
        print(
            f"herbdesk: the desktop app is not available ({exc}); try `herbdesk run --help`",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return run_app(argv, prog)
