"""`herbdesk --smoke-test`: one real run through the desktop app, checked against its files.

It exists for the frozen bundle: a PyInstaller build can start and still miss an ONNX model, a
Qt plugin or package metadata, and only a real run through the window shows that. The same
command runs from a source install, so the bundle and the checkout are held to one standard.

The window is driven by `herbdesk.ui.smoke`, the files checked by `herbdesk.ui.smoke_checks`.
It prints one marker line, `HERBDESK-SMOKE-OK …` on stdout or `HERBDESK-SMOKE-FAIL …` on
stderr, which scripts grep for.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from herbdesk.ui.smoke_checks import MARKER_FAIL, MARKER_OK, SmokeFailure, check_run

TIMEOUT_ENV = "HERBDESK_SMOKE_TIMEOUT"
# Five sheets take ~50 s on two cores; a loaded CI box or a cold one-file unpack can take
# several times that, and a hang must still end.
DEFAULT_TIMEOUT_S = 900.0


def run_smoke_test() -> int:
    """Run the bundled samples through the window offscreen; 0 and the OK marker if all agree."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists
    started = time.monotonic()
    timeout = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
    workdir = Path(tempfile.mkdtemp(prefix="herbdesk-smoke-"))
    try:
        from herbdesk.ui.smoke import run_in_window

        run = run_in_window(workdir, timeout)
        check_run(run)
    except SmokeFailure as exc:
        print(f"{MARKER_FAIL} {exc} (files kept in {workdir})", file=sys.stderr)
        return 1
    except Exception as exc:  # an import or Qt failure in a bundle is exactly what we look for
        traceback.print_exc()
        print(
            f"{MARKER_FAIL} {type(exc).__name__}: {exc} (files kept in {workdir})",
            file=sys.stderr,
        )
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - started
    from herbdesk.events import fastscan

    scan = "compiled log scanner" if fastscan.AVAILABLE else "log scanner not built (Python path)"
    print(
        f"{MARKER_OK} {run.live_summary['total']} specimens, {run.live_summary['events']} events, "
        f"{seconds:.1f}s, {scan}",
        flush=True,
    )
    return 0
