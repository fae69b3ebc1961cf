"""Start-up: from launching `python -m herbdesk` to its main window shown and painted.

    python -m benchmarks.bench_startup

The child is the real entry point (`herbdesk.cli.main`, no arguments: the desktop app),
with a hook that prints the wall-clock time once the window is exposed and has painted, then
quits; the parent measures from just before it spawns the process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks.common import PY, child_cwd, code_path, emit_json

CHILD = r"""
import sys, time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import PySide6.QtWidgets as W

def hook():
    app = QApplication.instance()
    for w in app.topLevelWidgets():
        if type(w).__name__ == "MainWindow" and w.isVisible():
            w.repaint()
            print("SHOWN", time.time(), flush=True)
            w.shutdown() if hasattr(w, "shutdown") else None
            app.quit()
            return
    QTimer.singleShot(5, hook)

_orig = W.QApplication.exec
def _exec(*a):
    QTimer.singleShot(0, hook)
    return _orig()
W.QApplication.exec = _exec
from herbdesk.cli import main
sys.argv = ["herbdesk"]
sys.exit(main())
"""


def once() -> float:
    env = dict(os.environ, PYTHONPATH=code_path())
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["XDG_CONFIG_HOME"] = "/tmp/herbdesk-bench-config"  # never the user's settings
    t0 = time.time()
    out = subprocess.run(
        [PY, "-c", CHILD],
        cwd=child_cwd(),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for line in out.stdout.splitlines():
        if line.startswith("SHOWN"):
            return float(line.split()[1]) - t0
    raise RuntimeError(f"window never shown:\n{out.stdout}\n{out.stderr[-2000:]}")


if __name__ == "__main__":
    emit_json({"seconds": once()})
    sys.exit(0)
