"""PyInstaller entry point: the frozen `herbdesk` executable (desktop app and CLI in one)."""

from __future__ import annotations

import multiprocessing
import sys

from herbdesk.cli import main

if __name__ == "__main__":
    # herbdesk itself uses threads, but a library that spawns a process (pyqtgraph's
    # multiprocess helpers, a future engine) would re-run the app in the child without this.
    multiprocessing.freeze_support()
    sys.exit(main())
