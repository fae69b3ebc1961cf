"""Starting the desktop app: `herbdesk`, `herbdesk app …`, `herbdesk open PATH …`."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from herbdesk.common.termtext import clean_text

if TYPE_CHECKING:  # Qt is imported late: `--screenshot` may set the platform first
    from herbdesk.ui.mainwindow import MainWindow


def _parse(argv: list[str], prog: str = "herbdesk app") -> argparse.Namespace:
    opening = prog.endswith("open")
    description = (
        "Open a past or running run in the desktop app: a run directory, its events.jsonl, "
        "a raw.jsonl alone (also the original extraction scripts'), or a runs folder (pick one "
        "of its runs). `--screenshot` renders the window offscreen and exits."
        if opening
        else "The herbdesk desktop app: set up and start a run, or open, tail and replay one."
    )
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument(
        "path",
        nargs="?",
        type=Path,
        help="a run directory, events.jsonl, raw.jsonl or runs folder to open",
    )
    p.add_argument("--images", type=Path, help="preselect this image folder")
    p.add_argument("--sample", action="store_true", help="preselect the bundled sample sheets")
    p.add_argument("--engine", choices=["ocr", "openrouter"], help="preselect the engine")
    p.add_argument("--out", type=Path, help="runs folder")
    p.add_argument("--start", action="store_true", help="start the run at once")
    p.add_argument("--tail", metavar="PATH_OR_REMOTE", help="follow a log another process writes")
    p.add_argument("--poll", type=float, metavar="SECONDS", help="tail by polling (network mounts)")
    p.add_argument("--from-end", action="store_true", help="tail only what is appended from now")
    p.add_argument("--identity", help="ssh identity file for a remote tail")
    p.add_argument(
        "--stale-minutes",
        type=float,
        help="warn when a live run is silent this long (default 10; this session only)",
    )
    p.add_argument("--screenshot", type=Path, help="write a PNG of the window, then exit")
    p.add_argument(
        "--screenshot-after",
        type=float,
        default=0.0,
        help="seconds to wait (e.g. mid-run) before the screenshot",
    )
    p.add_argument("--size", default="1440x900", help="window size for --screenshot (WxH)")
    return p.parse_args(argv)


def _quit_on_signals(app, win) -> list[int]:
    """Ctrl-C / SIGTERM / SIGHUP close the window gracefully: a live run is stopped (in-flight
    specimens finish and are recorded, the terminal event is written), then the app exits."""
    import signal

    from PySide6.QtCore import QTimer

    exit_code: list[int] = []  # the shell convention, 128 + signal, whatever Qt returns

    def handler(signum: int, _frame: object) -> None:
        print(f"herbdesk: {signal.Signals(signum).name}: stopping gracefully", file=sys.stderr)
        exit_code.append(128 + signum)
        win.shutdown(reason=f"stopped by {signal.Signals(signum).name}")
        win.force_close()
        app.exit(exit_code[0])

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
    # Python runs signal handlers only between bytecodes: wake it while Qt's loop idles.
    tick = QTimer(app)
    tick.timeout.connect(lambda: None)
    tick.start(200)
    return exit_code


def apply_arguments(win: MainWindow, args: argparse.Namespace) -> None:
    """The command line's choices, for this session only: a flag never becomes a saved
    default (a test's `--out` once became the folder of the next real run). The setup form
    saves a field only once the user changes it; the staleness limit is never saved."""
    from herbdesk.common.assets import sample_specimens_dir

    if args.stale_minutes is not None:
        win.stale_after_s = max(1.0, args.stale_minutes * 60.0)
    if args.images:
        win.setup.set_for_session("images", str(args.images))
    if args.sample:
        win.setup.set_for_session("images", str(sample_specimens_dir()))
    if args.engine:
        win.setup.set_for_session("engine", args.engine)
    if args.out:
        win.setup.set_for_session("out_dir", str(args.out))


# what a run started with --start says stopped it when --screenshot ends the app
SCREENSHOT_STOP = "stopped when the screenshot was taken (--screenshot ends the app)"


def run_app(argv: list[str], prog: str = "herbdesk app") -> int:
    args = _parse(argv, prog)
    if args.screenshot and "QT_QPA_PLATFORM" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if args.path is not None:  # a CSV or an image is refused before any window opens
        from herbdesk.runstate.load import log_refusal

        if (refusal := log_refusal(Path(args.path))) is not None:
            print(f"herbdesk: error: {clean_text(refusal)}", file=sys.stderr)
            return 2
    from herbdesk.ui.display import display_problem

    if (problem := display_problem()) is not None:  # before Qt aborts with its own hint
        print(problem, file=sys.stderr)
        return 2
    from PySide6.QtCore import QSettings, QSize, QTimer
    from PySide6.QtWidgets import QApplication

    from herbdesk.ui.icons import app_icon
    from herbdesk.ui.mainwindow import MainWindow, drop_source_cache
    from herbdesk.ui.qtnoise import quiet_library_noise

    quiet_library_noise()

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0]])
    app.setOrganizationName("herbdesk")
    app.setApplicationName("herbdesk")
    app.setDesktopFileName("herbdesk")
    app.setWindowIcon(app_icon())
    settings: QSettings | None = None
    if args.screenshot:  # a scripted render must not read or change the user's layout
        settings = QSettings(
            str(Path(tempfile.mkdtemp(prefix="herbdesk-")) / "settings.ini"),
            QSettings.Format.IniFormat,
        )
    win = MainWindow(settings)
    win.non_interactive = bool(args.screenshot)
    apply_arguments(win, args)
    w, _, h = args.size.partition("x")
    size = QSize(int(w), int(h))
    if args.screenshot:
        win.resize(size)
    win.show()
    drop_source_cache()  # the imports are done
    rc = 0
    if args.path is not None and not win.open_path(args.path):
        from herbdesk.runstate.load import log_refusal

        why = log_refusal(Path(args.path)) or f"cannot open {args.path}"
        print(f"herbdesk: error: {clean_text(why)}", file=sys.stderr)
        return 2
    if args.tail and not win.tail(
        args.tail, poll_interval=args.poll, from_end=args.from_end, identity_file=args.identity
    ):
        print(f"herbdesk: error: cannot tail {clean_text(args.tail)}", file=sys.stderr)
        return 2
    if args.start and not win.start_run():
        print(f"herbdesk: error: {clean_text(win.setup.message.text())}", file=sys.stderr)
        return 2
    if args.screenshot:

        def shoot() -> None:
            nonlocal rc
            if win.is_loading():  # an opened log is still streaming in
                QTimer.singleShot(100, shoot)
                return
            ok = win.save_screenshot(args.screenshot, size)
            if not ok:
                print(f"herbdesk: error: cannot write {args.screenshot}", file=sys.stderr)
                rc = 1
            win.shutdown(reason=SCREENSHOT_STOP)
            win.close()
            app.quit()

        QTimer.singleShot(int(args.screenshot_after * 1000) + 200, shoot)
    signalled = _quit_on_signals(app, win)
    code = app.exec()
    if signalled:
        return signalled[0]
    return rc or code
